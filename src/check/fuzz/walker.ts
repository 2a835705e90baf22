// The loop a fuzz worker runs: seeded walks one after another, counting op kinds and outcomes,
// shrinking each violation before reporting it. Free of worker_threads, so tests can call it.

import { EINVAL, ENOENT, ERRNO_NAMES, ESRCH } from '../../model/mm/kernel.ts';
import type { Op } from '../../model/ops.ts';
import type { Config, System } from '../../model/system.ts';
import { type StepRecord, failingFunction, runChoices } from '../run.ts';
import { runSeededWalk, walkSeed } from '../seeded.ts';
import { ddminBy } from '../shrink.ts';
import { shrinkOps } from '../minimize.ts';
import { seededChoices } from '../../generators/walk.ts';
import { type Choice, WALK_WEIGHTS } from '../../generators/choose.ts';
import { type OptionName, causeFixes, causeKey, knownCause, primaryCause, triageOps, withFixes } from '../triage.ts';
import type { Coverage, FoundViolation, WalkStats, WalkTask, WorkerEvent } from './protocol.ts';

/**
 * A call refused because the object it names does not exist: -ENOENT, -ESRCH, or the -EINVAL of an
 * asi id that names no ASI. Such ops test only the lookup, so the generators keep them rare.
 */
export const MISSING_OBJECT = 'no such object';

export function outcomeName(rec: StepRecord): string {
  const { ret, log } = rec.outcome;
  if (ret === ENOENT || ret === ESRCH || (ret === EINVAL && log.some((e) => e.text.endsWith('does not exist')))) return `${ERRNO_NAMES[ret]} ${MISSING_OBJECT}`;
  return ret < 0 ? (ERRNO_NAMES[ret] ?? String(ret)) : 'ok';
}

/** Counts a step in a coverage table: its op kind, by outcome. */
export function countOutcome(c: Coverage, rec: StepRecord): void {
  const byOutcome = (c[rec.op.op] ??= {});
  const name = outcomeName(rec);
  byOutcome[name] = (byOutcome[name] ?? 0) + 1;
}

/** Ops rejected for a missing object, and their share of all ops, from a coverage count. */
export function missingObjects(c: Coverage): { readonly ops: number; readonly share: number } {
  let ops = 0;
  let all = 0;
  for (const outcomes of Object.values(c)) {
    for (const [o, n] of Object.entries(outcomes)) {
      all += n;
      if (o.endsWith(MISSING_OBJECT)) ops += n;
    }
  }
  return { ops, share: all ? ops / all : 0 };
}

/**
 * The walk's choices first: a choice says "some vmalloc area", not "area #13", so removing an
 * earlier allocation does not break a later free the way it does in the concrete ops (whose ids
 * and addresses shift). Then the concrete ops are shrunk (shrinkOps: ddmin, memory exhaustion
 * replaced by fail_alloc, simpler arguments).
 */
export function minimize(config: Config, seed: string, failed: readonly Op[], invariant: string): { ops: Op[]; argsSimplified: number } {
  const next = seededChoices(seed);
  const choices = Array.from({ length: failed.length }, () => next());
  // The choices are drawn again from the seed; if that ever stops matching the walk, use its ops as they are.
  const run = (c: readonly Choice[]) => runChoices(config, c, WALK_WEIGHTS, { stopOn: invariant });
  const fromChoices = run(choices).failure ? run(ddminBy(choices, (c) => run(c).failure !== undefined)).ops : failed;
  return shrinkOps(config, fromChoices, invariant);
}

/**
 * Violations shrunk per worker for one (invariant, root cause), or for one (invariant, op kind of
 * the failing step) when nothing explains it. A mutant that fails most walks would otherwise spend
 * the run shrinking the same bug; later hits are counted as repeats. A count, not a time share, so
 * a run with a fixed seed stays reproducible.
 */
export const MAX_SHRINKS_PER_KIND = 2;

/** Thrown between two steps of a walk when the time budget has run out. */
class BudgetSpent extends Error {}

export function runWalks(task: WalkTask, shouldStop: () => boolean, emit: (e: WorkerEvent) => void): void {
  const t0 = performance.now();
  const seconds = () => (performance.now() - t0) / 1000;
  const coverage: Coverage = {};
  let walks = 0;
  let steps = 0;
  let repeats = 0;
  let cutShort = 0;
  const shrinks = new Map<string, number>();
  // Causes a walk files a violation under when several explain it: the known corpus's, then this worker's.
  const reached = new Set(task.keepGoing?.known ?? []);
  // --keep-going: the fixes of the causes this worker has met, in the order it met them. A walk
  // starts with them on, so it spends its rounds on what earlier walks did not get past; each file
  // still carries every option its walk had on.
  const learned: OptionName[] = [];
  const stats = (): WalkStats => ({ walks, steps, repeats, cutShort, seconds: seconds(), coverage });
  // A long walk (--steps 5000) would overrun --seconds by many seconds if only walks were timed.
  const deadline = task.seconds === undefined ? Infinity : t0 + task.seconds * 1000;
  const onStep = (_: System, rec: StepRecord) => {
    countOutcome(coverage, rec);
    steps++;
    if (performance.now() >= deadline) throw new BudgetSpent();
  };
  let lastStats = 0;
  for (let index = 0; task.walks === undefined || index < task.walks; index++) {
    if (shouldStop() || (task.seconds !== undefined && seconds() >= task.seconds)) break;
    const seed = walkSeed(task.base, task.shard, task.worker, index);
    const found: FoundViolation[] = [];
    try {
      walks++;
      // --keep-going: the walk is re-run from its seed with each explained violation's fix turned on;
      // choices resolve against the live state, so seed + fixes reproduce it. Every round turns on
      // at least one fix not yet on, so the rounds end. A walk starts with one learned fix left off,
      // in turn (and, one walk in so many, with none): a fix met early can hide another cause's
      // violations for good (protectInternalRanges refuses the unmap F3 needs).
      const leftOff = learned[index % (learned.length + 1)];
      let fixes: OptionName[] = learned.filter((o) => o !== leftOff);
      for (;;) {
        const config = withFixes(task.config, fixes);
        const res = runSeededWalk(config, seed, task.steps, undefined, { onStep, ...(task.check ? { check: task.check } : {}) });
        if (!res.failure) break;
        const invariant = res.failure.violations[0].invariant;
        // The unshrunk prefix is triaged to decide quickly; what gets reported is triaged again once shrunk.
        const known = (k: string) => reached.has(k);
        const cause = knownCause(config, res.ops, invariant, known) ?? primaryCause(triageOps(config, res.ops, invariant), known);
        // Each shape of a cause (the function it fails in) gets shrinks of its own.
        const key = `${cause ? causeKey(invariant, cause) : invariant} in ${failingFunction(res.ops, res.failure)}`;
        const shrunk = shrinks.get(key) ?? 0;
        if (shrunk >= MAX_SHRINKS_PER_KIND) repeats++;
        else {
          shrinks.set(key, shrunk + 1);
          const at = seconds();
          const small = minimize(config, seed, res.ops, invariant);
          const { causes, failure } = triageOps(config, small.ops, invariant);
          const message = failure!.violations.find((v) => v.invariant === invariant)!.message;
          found.push({ walkIndex: index, walkSeed: seed, invariant, message, ops: small.ops, rawLength: res.ops.length, argsSimplified: small.argsSimplified, walks, seconds: at, fixes, causes, fn: failingFunction(small.ops, failure!) });
        }
        if (cause) reached.add(causeKey(invariant, cause));
        if (!task.keepGoing || !cause || causeFixes(cause).length === 0) break;
        fixes = [...fixes, ...causeFixes(cause)];
        for (const o of causeFixes(cause)) if (!learned.includes(o)) learned.push(o);
      }
    } catch (e) {
      if (e instanceof BudgetSpent) {
        // What earlier --keep-going rounds of this walk found is shrunk already: keep it.
        for (const violation of found) emit({ type: 'violation', violation });
        // Counted as cut short, not as a walk run.
        walks--;
        cutShort++;
        break;
      }
      emit({ type: 'crash', walkSeed: seed, message: e instanceof Error ? (e.stack ?? e.message) : String(e) });
      return;
    }
    for (const violation of found) emit({ type: 'violation', violation });
    if (found.length && task.firstViolationOnly) break;
    if (performance.now() - lastStats >= task.statsEveryMs) {
      lastStats = performance.now();
      emit({ type: 'stats', stats: stats() });
    }
  }
  emit({ type: 'done', stats: stats() });
}
