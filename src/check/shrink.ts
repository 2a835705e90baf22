// Delta debugging (Zeller's ddmin) over a concrete op list: the smallest list, by removal of
// chunks then single ops, that still violates the same invariant.

import type { Op } from '../model/ops.ts';
import type { Config } from '../model/system.ts';
import { runOps } from './run.ts';

export function violates(config: Config, ops: readonly Op[], invariant: string): boolean {
  return runOps(config, ops).failure?.violations.some((v) => v.invariant === invariant) ?? false;
}

export function ddmin(config: Config, ops: readonly Op[], invariant: string): Op[] {
  let cur = [...ops];
  let n = 2;
  while (cur.length >= 2) {
    const chunk = Math.ceil(cur.length / n);
    let reduced = false;
    for (let start = 0; start < cur.length; start += chunk) {
      const candidate = [...cur.slice(0, start), ...cur.slice(start + chunk)];
      if (candidate.length && violates(config, candidate, invariant)) {
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
