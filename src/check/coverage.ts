// Coverage of interleavings: which (path, micro-step, event kind) triples a set of runs reached.
// A triple is delivered (the event ran its handler there), held off (it arrived there but the CPU
// could not take it: IRQs off, NMIs blocked, not preemptible), or never tried.

import { INTR_KINDS } from '../model/x86/entry.ts';
import type { Config } from '../model/system.ts';
import type { RunOptions, RunResult } from './run.ts';

export interface InterruptCoverage {
  /** "path@point" of every micro-step passed. */
  readonly points: Set<string>;
  /** "path@point:kind" of every event that ran its handler there. */
  readonly delivered: Set<string>;
  readonly heldOff: Set<string>;
}

function newCoverage(): InterruptCoverage {
  return { points: new Set(), delivered: new Set(), heldOff: new Set() };
}

/** The onStep hook that records a step's ghost coverage. */
function recordCoverage(c: InterruptCoverage): NonNullable<RunOptions['onStep']> {
  return (sys) => {
    for (const p of sys.ghost.visited) c.points.add(p);
    for (const d of sys.ghost.landed) c.delivered.add(d);
    for (const h of sys.ghost.heldOff) c.heldOff.add(h);
  };
}

export interface CoverageRow {
  readonly path: string;
  readonly points: number;
  /** Per event kind: delivered, held off only, never tried. */
  readonly kinds: Record<string, { delivered: number; heldOffOnly: number; never: string[] }>;
}

/** One row per path, in first-seen order. */
export function coverageRows(c: InterruptCoverage): CoverageRow[] {
  const byPath = new Map<string, string[]>();
  for (const p of c.points) {
    const path = p.slice(0, p.indexOf('@'));
    byPath.set(path, [...(byPath.get(path) ?? []), p]);
  }
  return [...byPath].map(([path, points]) => {
    const kinds: CoverageRow['kinds'] = {};
    for (const kind of INTR_KINDS) {
      const delivered = points.filter((p) => c.delivered.has(`${p}:${kind}`));
      const heldOffOnly = points.filter((p) => !c.delivered.has(`${p}:${kind}`) && c.heldOff.has(`${p}:${kind}`));
      const never = points.filter((p) => !c.delivered.has(`${p}:${kind}`) && !c.heldOff.has(`${p}:${kind}`));
      kinds[kind] = { delivered: delivered.length, heldOffOnly: heldOffOnly.length, never };
    }
    return { path, points: points.length, kinds };
  });
}

/** Runs `run` once per input with the coverage hook. */
export function measure<T>(config: Config, inputs: Iterable<T>, run: (config: Config, input: T, opts: RunOptions) => RunResult): InterruptCoverage {
  const c = newCoverage();
  const onStep = recordCoverage(c);
  for (const x of inputs) run(config, x, { onStep });
  return c;
}
