// The mutant kill matrix as a specification: every mutant of the `fixed` design is killed, fast-check
// finds a violation of the invariant the mutant is meant to break, and the shrunk counterexample
// reads as a few kernel calls that break nothing without the mutant (test/kill-search.ts: the search
// and the verdict). Split over two test files (the page-table and the CPU/KVM mutants), so that
// vitest runs the halves on both cores.
//
// No seed is picked per mutant: every mutant is searched from KILL_SEEDS, in order, until one kills
// it. What that rests on is measured by `npm run bench -- mutants`: the share of 20 random seeds
// whose search kills each mutant within KILL_RUNS runs. On memory as 5.2 lays it out (one run of
// the bench, 20 seeds): 30 of the 33 mutants killed from every seed, global-flush-too-early and
// kvm-barrier-begin-skipped from 18, shootdown-skips-last-page from 11 (55%: the flush it cuts
// short runs at the lazy vfree list's purge, not at every vfree), every kill within 2,921 runs;
// none below 50%. Seeds are interchangeable, so a mutant killed from 55% of them survives six
// seeds with probability 0.45^6 = 0.008; a kill costs 0.03-1 CPU-seconds (median), the matrix
// about 10. After a model change, re-run `npm run bench -- mutants`: it prints the table, the
// mutants below 50% and the chance the weakest survives KILL_SEEDS; raise KILL_RUNS or add seeds
// if that chance is no longer small.

import { expect, test } from 'vitest';
import { MUTANT_INFO, type MutantName } from '../src/model/mutants.ts';
import { GEOMETRIES } from '../src/model/mm/geometry.ts';
import { formatOp } from '../src/model/ops.ts';
import { KILL_RUNS, KILL_SEEDS, type Kill, killSearch } from './kill-search.ts';

/**
 * The mutants `bench -- mutants` kills from barely half of random seeds (above): a search from a
 * seed that misses runs all KILL_RUNS before the next seed, so these two took a sixth of the
 * matrix's CPU (asi25-unmap-skips-flush 6.5 s: seed 1 misses it; shootdown-skips-last-page 3.6 s).
 */
const WEAKLY_KILLED: readonly MutantName[] = ['shootdown-skips-last-page', 'asi25-unmap-skips-flush'];

/**
 * The 2019 design's KVM mutants, whose searches run KVM_RUN, the costliest op (a fifth of the
 * matrix's CPU), and WEAKLY_KILLED: `npm run test:nightly` kills them
 * (test/nightly/mutants-slow.test.ts), as the nightly's `mutants` job does through the fuzzer;
 * `npm test` kills one KVM mutant through the CLI.
 */
export function nightlyMutants(): MutantName[] {
  return (Object.keys(MUTANT_INFO) as MutantName[]).filter((m) => (MUTANT_INFO[m].kvm && !MUTANT_INFO[m].profile) || WEAKLY_KILLED.includes(m));
}

/** Every other mutant, in catalogue order: the first `half` ones, or the rest. */
export function mutantsOf(half: 'first' | 'second'): MutantName[] {
  const nightly = new Set(nightlyMutants());
  const all = (Object.keys(MUTANT_INFO) as MutantName[]).filter((m) => !nightly.has(m));
  const mid = Math.ceil(all.length / 2);
  return half === 'first' ? all.slice(0, mid) : all.slice(mid);
}

export function killMatrix(names: readonly MutantName[]): void {
  for (const m of names) {
    test(`mutant ${m} is killed by ${MUTANT_INFO[m].expect} within ${KILL_RUNS} runs from seed ${KILL_SEEDS.join(' or ')}`, () => {
      const tried: Kill[] = [];
      for (const seed of KILL_SEEDS) {
        tried.push(killSearch(m, seed));
        if (!tried.at(-1)!.problem) break;
      }
      const kill = tried.at(-1)!;
      expect(kill.problem, tried.map((k) => `seed ${k.seed}: ${k.problem}`).join('\n')).toBeUndefined();
      const f = kill.found!;
      console.log(`${m}: killed by ${f.violation.invariant} after ${f.runsToFailure} runs from seed ${f.seed}; shrunk to ${f.ops.length} ops:\n  ${f.ops.map((op) => formatOp(GEOMETRIES.small, op)).join('\n  ')}`);
    });
  }
}
