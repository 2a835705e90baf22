// The mutant kill matrix as a specification: every mutant of the `fixed` design is killed, fast-check
// finds a violation within a bounded number of runs, and the shrunk counterexample reads as a few
// kernel calls. Split over two test files (the page-table and the CPU/KVM mutants), so that vitest
// runs the halves on both cores.

import { expect, test } from 'vitest';
import { MUTANT_INFO, type MutantName } from '../src/model/mutants.ts';
import { hunt } from '../src/check/hunt.ts';
import { mutantConfig, mutantWeights } from '../src/check/findings.ts';
import { runOps } from '../src/check/run.ts';
import { formatOp } from '../src/model/ops.ts';
import { GEOMETRIES } from '../src/model/mm/geometry.ts';

const RUN_BOUND = 3000;

/** Every mutant, in catalogue order: the first `half` ones, or the rest. */
export function mutantsOf(half: 'first' | 'second'): MutantName[] {
  const all = Object.keys(MUTANT_INFO) as MutantName[];
  const mid = Math.ceil(all.length / 2);
  return half === 'first' ? all.slice(0, mid) : all.slice(mid);
}

export function killMatrix(names: readonly MutantName[]): void {
  for (const m of names) {
    test(`mutant ${m} is killed by ${MUTANT_INFO[m].expect} within ${RUN_BOUND} runs`, () => {
      const config = mutantConfig(m);
      const found = hunt(config, { seed: 42, numRuns: RUN_BOUND, weights: mutantWeights(m) });
      expect(found, `mutant ${m} survived`).toBeDefined();
      const f = found!;
      const lines = f.ops.map((op) => formatOp(GEOMETRIES.small, op));
      console.log(`${m}: killed by ${f.violation.invariant} after ${f.runsToFailure} runs; shrunk to ${f.ops.length} ops:\n  ${lines.join('\n  ')}`);
      expect(lines.every((l) => l.length > 0 && !l.includes('undefined') && !l.includes('[object'))).toBe(true);
      expect(f.ops.length).toBeLessThanOrEqual(6);
      const replay = runOps(config, f.ops).failure!.violations.map((v) => v.invariant);
      expect(replay).toContain(MUTANT_INFO[m].expect);
      // The same ops are harmless without the mutant.
      expect(runOps({ ...config, mutant: undefined }, f.ops).failure).toBeUndefined();
    });
  }
}
