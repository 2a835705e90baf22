// Seeded walks: the unit of a fuzz run. A walk is named by a seed string; `asi-check replay --seed`
// re-runs exactly the walk that `asi-check fuzz` printed or saved.

import { seededChoices } from '../generators/walk.ts';
import { type Weights, WALK_WEIGHTS, resolveOp } from '../generators/choose.ts';
import type { Config } from '../model/system.ts';
import { type RunOptions, type RunResult, runWith } from './run.ts';

/** Ops per walk unless told otherwise: long enough for enter/interrupt/exit interleavings, short enough to shrink fast. */
export const DEFAULT_WALK_STEPS = 60;

/**
 * The seed of walk `index` of `worker` in `shard`: walks of different shards or workers never share
 * a seed, and the whole run is reproducible from its base seed.
 */
export function walkSeed(base: string, shard: number, worker: number, index: number): string {
  return `${base}/s${shard}/w${worker}/${index}`;
}

export function runSeededWalk(config: Config, seed: string, steps = DEFAULT_WALK_STEPS, weights: Weights = WALK_WEIGHTS, opts: RunOptions = {}): RunResult {
  const next = seededChoices(seed);
  return runWith(config, steps, (sys) => resolveOp(sys, next(), weights), opts);
}
