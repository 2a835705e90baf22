// Hunting for a counterexample with fast-check: random choice lists, fast-check's shrinking, then
// the concrete ops shrunk (shrinkOps: ddmin, memory exhaustion replaced by fail_alloc, arguments).
// Used by the tests (mutants, the fixed profile) and by findings.ts.

import fc from 'fast-check';
import { choicesArb } from '../generators/arbitraries.ts';
import type { Choice, Weights } from '../generators/choose.ts';
import type { Op } from '../model/ops.ts';
import type { Config } from '../model/system.ts';
import type { Invariant, Violation } from '../invariants/index.ts';
import { type RunResult, runChoices, runOps } from './run.ts';
import { violates } from './shrink.ts';
import { type OptionName, withFixes } from './triage.ts';
import { shrinkOps } from './minimize.ts';

export interface HuntOptions {
  readonly seed: number;
  readonly numRuns: number;
  readonly maxLength?: number;
  readonly invariants?: readonly Invariant[];
  readonly weights?: Weights;
  /**
   * Only a violation this fix option explains counts (turning it on stops the invariant firing):
   * the findings ladder hunts for one root cause at a time, past violations of others.
   */
  readonly explainedBy?: OptionName;
}

export interface Found {
  /** Runs fast-check needed before the first failure. */
  readonly runsToFailure: number;
  readonly ops: readonly Op[];
  readonly violation: Violation;
  readonly path: string;
  readonly seed: number;
}

export function hunt(config: Config, o: HuntOptions): Found | undefined {
  const opts = o.invariants ? { invariants: o.invariants } : {};
  const explained = (ops: readonly Op[], invariant: string) => !o.explainedBy || !violates(withFixes(config, [o.explainedBy]), ops, invariant);
  const fails = (r: RunResult) => r.failure !== undefined && explained(r.ops, r.failure.violations[0].invariant);
  const result = fc.check(
    fc.property(choicesArb(o.maxLength ?? 25), (choices: Choice[]) => !fails(runChoices(config, choices, o.weights, opts))),
    { seed: o.seed, numRuns: o.numRuns },
  );
  if (!result.failed || !result.counterexample) return undefined;
  const [choices] = result.counterexample;
  const first = runChoices(config, choices, o.weights, opts);
  const invariant = first.failure!.violations[0].invariant;
  const still = (ops: readonly Op[]) => violates(config, ops, invariant) && explained(ops, invariant);
  const { ops } = shrinkOps(config, first.ops, invariant, still);
  const violation = runOps(config, ops, { stopOn: invariant }).failure!.violations.find((v) => v.invariant === invariant)!;
  return { runsToFailure: result.numRuns, ops, violation, path: result.counterexamplePath ?? '', seed: o.seed };
}
