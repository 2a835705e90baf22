// Delta debugging (Zeller's ddmin) over a concrete op list: the smallest list, by removal of
// chunks then single ops, that still violates the same invariant.

import type { Op } from '../model/ops.ts';
import type { Config } from '../model/system.ts';
import { type RunOptions, runOps } from './run.ts';

/** `run` adds to the run's options (an onStep for progress). */
export function violates(config: Config, ops: readonly Op[], invariant: string, run: RunOptions = {}): boolean {
  return runOps(config, ops, { ...run, stopOn: invariant }).failure !== undefined;
}

export function ddmin(config: Config, ops: readonly Op[], invariant: string): Op[] {
  return ddminBy(ops, (candidate) => violates(config, candidate, invariant));
}

/** ddmin over any list: `fails` says whether a (non-empty) sublist still shows the failure. */
export function ddminBy<T>(items: readonly T[], fails: (candidate: T[]) => boolean): T[] {
  let cur = [...items];
  let n = 2;
  while (cur.length >= 2) {
    const chunk = Math.ceil(cur.length / n);
    let reduced = false;
    for (let start = 0; start < cur.length; start += chunk) {
      const candidate = [...cur.slice(0, start), ...cur.slice(start + chunk)];
      if (candidate.length && fails(candidate)) {
        cur = candidate;
        n = Math.max(n - 1, 2);
        reduced = true;
        break;
      }
    }
    if (!reduced) {
      if (chunk === 1) break;
      n = Math.min(n * 2, cur.length);
    }
  }
  return cur;
}
