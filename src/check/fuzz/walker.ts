// The loop a fuzz worker runs: seeded walks one after another, counting op kinds and outcomes,
// shrinking each violation before reporting it. Free of worker_threads, so tests can call it.

import { ERRNO_NAMES } from '../../model/kernel.ts';
import type { Op } from '../../model/ops.ts';
import type { Config, System } from '../../model/system.ts';
import { type StepRecord, runChoices, runOps } from '../run.ts';
import { runSeededWalk, walkSeed } from '../seeded.ts';
import { ddmin, ddminBy } from '../shrink.ts';
import { seededChoices } from '../../generators/walk.ts';
import type { Choice } from '../../generators/choose.ts';
import { shrinkArgs } from '../argshrink.ts';
import type { Coverage, FoundViolation, WalkStats, WalkTask, WorkerEvent } from './protocol.ts';

export function outcomeName(ret: number): string {
  return ret < 0 ? (ERRNO_NAMES[ret] ?? String(ret)) : 'ok';
}


/**
 * The walk's choices first: a choice says "some vmalloc area", not "area #13", so removing an
 * earlier allocation does not break a later free the way it does in the concrete ops (whose ids
 * and addresses shift). Then ddmin over the concrete ops and simpler arguments; simpler arguments
 * can make more ops removable, so ddmin once more.
 */
export function minimize(config: Config, seed: string, failed: readonly Op[], invariant: string): { ops: Op[]; argsSimplified: number } {
  const next = seededChoices(seed);
  const choices = Array.from({ length: failed.length }, () => next());
  // The choices are drawn again from the seed; if that ever stops matching the walk, use its ops as they are.
  const run = (c: readonly Choice[]) => runChoices(config, c, undefined, { stopOn: invariant });
  const fromChoices = run(choices).failure ? run(ddminBy(choices, (c) => run(c).failure !== undefined)).ops : failed;
  const args = shrinkArgs(config, ddmin(config, fromChoices, invariant), invariant);
  return { ops: args.simplified ? ddmin(config, args.ops, invariant) : args.ops, argsSimplified: args.simplified };
}

/**
 * Violations shrunk per worker for one (invariant, op kind of the failing step). A mutant that
 * fails most walks would otherwise spend the run shrinking the same bug; later hits of the pair
 * are counted as repeats. A count, not a time share, so a run with a fixed seed stays reproducible.
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
  const stats = (): WalkStats => ({ walks, steps, repeats, cutShort, seconds: seconds(), coverage });
  // A long walk (--steps 5000) would overrun --seconds by many seconds if only walks were timed.
  const deadline = task.seconds === undefined ? Infinity : t0 + task.seconds * 1000;
  const onStep = (_: System, rec: StepRecord) => {
    const byOutcome = (coverage[rec.op.op] ??= {});
    const name = outcomeName(rec.outcome.ret);
    byOutcome[name] = (byOutcome[name] ?? 0) + 1;
    steps++;
    if (performance.now() >= deadline) throw new BudgetSpent();
  };
  let lastStats = 0;
  for (let index = 0; task.walks === undefined || index < task.walks; index++) {
    if (shouldStop() || (task.seconds !== undefined && seconds() >= task.seconds)) break;
    const seed = walkSeed(task.base, task.shard, task.worker, index);
    let found: FoundViolation | undefined;
    try {
      const res = runSeededWalk(task.config, seed, task.steps, undefined, { onStep });
      walks++;
      if (res.failure) {
        const invariant = res.failure.violations[0].invariant;
        const key = `${invariant}|${res.ops[res.ops.length - 1].op}`;
        const shrunk = shrinks.get(key) ?? 0;
        if (shrunk >= MAX_SHRINKS_PER_KIND) repeats++;
        else {
          shrinks.set(key, shrunk + 1);
          const at = seconds();
          const small = minimize(task.config, seed, res.ops, invariant);
          const message = runOps(task.config, small.ops, { stopOn: invariant }).failure!.violations.find((v) => v.invariant === invariant)!.message;
          found = { walkIndex: index, walkSeed: seed, invariant, message, ops: small.ops, rawLength: res.ops.length, argsSimplified: small.argsSimplified, walks, seconds: at };
        }
      }
    } catch (e) {
      if (e instanceof BudgetSpent) {
        cutShort++;
        break;
      }
      emit({ type: 'crash', walkSeed: seed, message: e instanceof Error ? (e.stack ?? e.message) : String(e) });
      return;
    }
    if (found) {
      emit({ type: 'violation', violation: found });
      if (task.firstViolationOnly) break;
    }
    if (performance.now() - lastStats >= task.statsEveryMs) {
      lastStats = performance.now();
      emit({ type: 'stats', stats: stats() });
    }
  }
  emit({ type: 'done', stats: stats() });
}
