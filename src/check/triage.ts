// Triage: the root cause of a counterexample, named by the design options of `fixed` that make it
// pass. A file found on the posted code, or on a later rung of the findings ladder, replays with
// one fix option at a time turned on; an option whose fix stops the recorded invariant from firing
// explains the finding on its own. Fuzzing groups findings by (invariant, root cause), so one bug
// reached by many op shapes is one finding, and a violation no option explains is a new bug.

import { type DesignOptions, FIXED_OPTIONS, OPTION_NAMES, RFC_V2_OPTIONS, optionOfDesign } from '../model/options.ts';
import type { MutantName } from '../model/mutants.ts';
import type { Op } from '../model/ops.ts';
import { type Config, designOf, resolveOptions } from '../model/system.ts';
import type { Failure, RunOptions } from './run.ts';
import { ddminBy, violates, violation } from './shrink.ts';

export type OptionName = (typeof OPTION_NAMES)[number];

/** One explanation of a finding: a mutant, or design options that fix it together (usually one). */
export type RootCause = { readonly mutant: MutantName } | { readonly options: readonly OptionName[] };

export interface Triage {
  readonly invariant: string;
  /** False when the ops no longer violate the invariant under their own configuration: nothing to explain. */
  readonly reproduces: boolean;
  /** Each cause on its own makes the ops pass; empty when nothing in `fixed` explains them. */
  readonly causes: readonly RootCause[];
  /** The violation under the ops' own configuration, when they reproduce. */
  readonly failure?: Failure;
}

/**
 * Where the fixes lead from a configuration: every option `fixed` sets differently from the posted
 * code takes its `fixed` value; an option both set alike (interruptResumes) is a design choice, not
 * a fix, and keeps the configuration's value, so a v3 file is judged against v3 with its own fixes.
 */
export function fixTarget(c: Config): DesignOptions {
  const have = resolveOptions(c);
  return Object.fromEntries(OPTION_NAMES.map((o) => [o, FIXED_OPTIONS[o] === RFC_V2_OPTIONS[o] ? have[o] : FIXED_OPTIONS[o]])) as unknown as DesignOptions;
}

/** The fix options of the configuration's design not yet on in it, in OPTION_NAMES order. */
export function fixCandidates(c: Config): OptionName[] {
  const have = resolveOptions(c);
  const target = fixTarget(c);
  const design = designOf(c);
  return OPTION_NAMES.filter((o) => have[o] !== target[o] && optionOfDesign(o, design));
}

/** The configuration with these fixes turned on (written into its options, so a file saved from it replays). */
export function withFixes(c: Config, fixes: readonly OptionName[]): Config {
  const target = fixTarget(c);
  return { ...c, options: { ...(c.options ?? {}), ...Object.fromEntries(fixes.map((o) => [o, target[o]])) } };
}

/**
 * Single options first; when none suffices alone, the smallest set found by dropping options one
 * chunk at a time from "all fixes on" while the ops still pass (ddmin), reported as one combined cause.
 */
export function triageOps(config: Config, ops: readonly Op[], invariant: string, run: RunOptions = {}): Triage {
  const failure = violation(config, ops, invariant, run);
  if (!failure) return { invariant, reproduces: false, causes: [] };
  const found = { invariant, reproduces: true, failure };
  if (config.mutant) return { ...found, causes: [{ mutant: config.mutant }] };
  const passes = (fixes: readonly OptionName[]) => fixedBy(config, ops, invariant, fixes, run);
  const candidates = fixCandidates(config);
  const single = candidates.filter((o) => passes([o]));
  if (single.length) return { ...found, causes: single.map((o) => ({ options: [o] })) };
  if (candidates.length === 0 || !passes(candidates)) return { ...found, causes: [] };
  return { ...found, causes: [{ options: ddminBy(candidates, passes) }] };
}

function fixedBy(config: Config, ops: readonly Op[], invariant: string, fixes: readonly OptionName[], run: RunOptions = {}): boolean {
  return !violates(withFixes(config, fixes), ops, invariant, run);
}

/**
 * The first single option whose (invariant, option) is known that fixes the ops: a fuzz walk that
 * meets a known bug over and over needs a replay or two, not a full triage.
 */
export function knownCause(config: Config, ops: readonly Op[], invariant: string, known: (key: string) => boolean): RootCause | undefined {
  if (config.mutant) return undefined;
  return fixCandidates(config)
    .map((o): RootCause => ({ options: [o] }))
    .find((c) => known(causeKey(invariant, c)) && fixedBy(config, ops, invariant, causeFixes(c)));
}

export function causeLabel(c: RootCause): string {
  return 'mutant' in c ? `mutant ${c.mutant}` : c.options.join('+');
}

/** The options a cause turns on; none for a mutant, which no option fixes. */
export function causeFixes(c: RootCause): readonly OptionName[] {
  return 'mutant' in c ? [] : c.options;
}

/** What fuzzing deduplicates by: the invariant and one root cause. */
export function causeKey(invariant: string, c: RootCause): string {
  return `${invariant} ${causeLabel(c)}`;
}

/**
 * The cause a finding is filed under: the first of its causes already known, so a finding that two
 * options each explain matches a known file that was attributed to either; else the first cause.
 * Undefined for a finding nothing explains.
 */
export function primaryCause(t: Triage, known: (key: string) => boolean): RootCause | undefined {
  return t.causes.find((c) => known(causeKey(t.invariant, c))) ?? t.causes[0];
}
