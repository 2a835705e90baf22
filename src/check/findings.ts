// The findings ladder: the checker run on `rfc-v2`, and after each finding its fix turned on and the
// search run again. Each rung's configuration is where the finding was made; `npm run findings`
// re-runs the ladder and saves each shrunk counterexample in counterexamples/.

import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import type { DesignOptions } from '../model/options.ts';
import type { Config } from '../model/system.ts';
import { formatOp } from '../model/ops.ts';
import { GEOMETRIES } from '../model/geometry.ts';
import { hunt } from './hunt.ts';
import { MUTANT_INFO, type MutantName } from '../model/mutants.ts';
import { makeCounterexample, saveCounterexample } from './counterexample.ts';

export interface Rung {
  readonly title: string;
  /** The design option that fixes it; the rungs after this one run with it on. */
  readonly fix: Partial<DesignOptions>;
  readonly numRuns: number;
}

/** In the order the checker found them (seed 42, small geometry, 2 CPUs). */
export const LADDER: readonly Rung[] = [
  { title: 'a PTE-level asi_map of a direct-map page copies the whole 1G/2M kernel page', fix: { splitLargePages: true }, numRuns: 200 },
  { title: 'mapping a percpu variable maps its page, and the CSPRNG state beside it', fix: { percpuSecretsOwnPage: true }, numRuns: 300 },
  { title: 'asi_unmap of a PTE-level range clears nothing: asi_clear_pmd_range skips present PMDs', fix: { clearPresentPmd: true }, numRuns: 300 },
  { title: 'asi_map_range rounds the range out to its level and maps what the rounding reaches', fix: { exactExtent: true }, numRuns: 500 },
  { title: 'memory freed by the kernel stays mapped in the ASI', fix: { freeUnmapsAsi: true }, numRuns: 1000 },
  { title: 'asi_clear_pte_range from an unaligned start misses the last page', fix: { clearAlignedStart: true }, numRuns: 1000 },
  { title: 'overlap counts and "implicitly mapped" use the old ranges\' rounded extents, not what is mapped', fix: { overlapPolicy: 'refcount-entries' }, numRuns: 1000 },
  { title: 'a failed asi_map_range leaves what it copied mapped but untracked', fix: { rollbackOnError: true }, numRuns: 2000 },
  { title: "a large entry whose frame is one of the ASI's own tables passes asi_valid_offset", fix: { offsetChecksLevel: true }, numRuns: 2000 },
];

export const LADDER_SEED = 42;

/** The configuration rung i ran in: rfc-v2 with the fixes of the rungs before it. */
export function rungConfig(i: number): Config {
  const options = Object.assign({}, ...LADDER.slice(0, i).map((r) => r.fix)) as Partial<DesignOptions>;
  return { geometry: 'small', cpus: 2, profile: 'rfc-v2', options };
}

function main(): void {
  const dir = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'counterexamples');
  LADDER.forEach((rung, i) => {
    const config = rungConfig(i);
    const t0 = performance.now();
    const f = hunt(config, { seed: LADDER_SEED, numRuns: rung.numRuns });
    const ms = (performance.now() - t0).toFixed(0);
    if (!f) {
      console.log(`F${i + 1} ${rung.title}: not found in ${rung.numRuns} runs (${ms} ms)`);
      return;
    }
    const c = makeCounterexample(config, f.ops, f.violation.invariant, f.violation.message, `F${i + 1}: ${rung.title}`, { by: 'findings ladder (fast-check)', seed: f.seed, path: f.path, runs: f.runsToFailure });
    const path = saveCounterexample(dir, c);
    console.log(`F${i + 1} ${f.violation.invariant} after ${f.runsToFailure} runs, ${f.ops.length} ops (${ms} ms) -> ${path}`);
    for (const op of f.ops) console.log(`     ${formatOp(GEOMETRIES.small, op)}`);
    console.log(`     ${f.violation.message}`);
  });
  mutantCorpus(dir);
}

export function mutantConfig(m: MutantName): Config {
  return { geometry: 'small', cpus: 2, profile: 'fixed', mutant: m, ...(MUTANT_INFO[m].options ? { options: MUTANT_INFO[m].options } : {}) };
}

function mutantCorpus(dir: string): void {
  for (const m of Object.keys(MUTANT_INFO) as MutantName[]) {
    const config = mutantConfig(m);
    const f = hunt(config, { seed: LADDER_SEED, numRuns: 2000 });
    if (!f) {
      console.log(`mutant ${m}: survived 2000 runs`);
      continue;
    }
    const c = makeCounterexample(config, f.ops, f.violation.invariant, f.violation.message, `mutant ${m}: ${MUTANT_INFO[m].where}`, { by: 'mutant kill (fast-check)', seed: f.seed, path: f.path, runs: f.runsToFailure });
    console.log(`mutant ${m}: ${f.violation.invariant} after ${f.runsToFailure} runs, ${f.ops.length} ops -> ${saveCounterexample(dir, c)}`);
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) main();
