// One mutant's kills by the npm-test matrix's search (test/kill-search.ts), for the kill-rate table
// of `npm run bench -- mutants` (bench/run.ts), in a process of its own so that mutants run side by
// side on the cores: node --import tsx bench/kill-rate.ts MUTANT SEED[,SEED...]
// Prints one JSON object per seed: whether the search killed the mutant as the matrix requires,
// why not, the runs to the first failure, the shrunk length and the CPU-seconds of the search.

import { type MutantName, MUTANT_INFO } from '../src/model/mutants.ts';
import { killSearch } from '../test/kill-search.ts';
import { cpuSeconds } from './cpu.ts';

export interface SeedKill {
  readonly seed: number;
  readonly killed: boolean;
  readonly problem?: string;
  readonly runs?: number;
  readonly ops?: number;
  readonly seconds: number;
}

const [m, list] = process.argv.slice(2);
if (!Object.hasOwn(MUTANT_INFO, m) || !list) {
  console.error('usage: kill-rate.ts MUTANT SEED[,SEED...]');
  process.exit(2);
}
for (const seed of list.split(',').map(Number)) {
  const t0 = cpuSeconds();
  let out: Omit<SeedKill, 'seconds'>;
  try {
    const k = killSearch(m as MutantName, seed);
    out = { seed, killed: !k.problem, ...(k.problem ? { problem: k.problem } : {}), ...(k.found ? { runs: k.found.runsToFailure, ops: k.found.ops.length } : {}) };
  } catch (e) {
    out = { seed, killed: false, problem: `the model threw: ${e instanceof Error ? e.message : String(e)}` };
  }
  console.log(JSON.stringify({ ...out, seconds: cpuSeconds() - t0 }));
}
