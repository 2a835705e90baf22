// The findings ladders: the checker run on a profile (`rfc-v2`, then the `v3` design), and after
// each finding its fix turned on and the search run again. Each rung's configuration is where the
// finding was made; `npm run findings` re-runs the ladders and saves each shrunk counterexample in
// counterexamples/.

import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import type { DesignOptions } from '../model/options.ts';
import type { Config } from '../model/system.ts';
import { type Op, formatOp } from '../model/ops.ts';
import { runOps } from './run.ts';
import { GEOMETRIES } from '../model/geometry.ts';
import { hunt } from './hunt.ts';
import { FOUNDATION_INVARIANTS } from '../invariants/index.ts';
import { FOUNDATION_WEIGHTS } from '../generators/choose.ts';
import { MUTANT_INFO, type MutantName } from '../model/mutants.ts';
import { makeCounterexample, saveCounterexample } from './counterexample.ts';

export interface Rung {
  readonly title: string;
  /** The design option that fixes it; the rungs after this one run with it on. */
  readonly fix: Partial<DesignOptions>;
  readonly numRuns: number;
  /** Findings F1-F9 were made before CPUs existed: with the foundation's invariants and op weights. */
  readonly foundation?: true;
}

/** In the order the checker found them (seed 42, small geometry, 2 CPUs). */
export const LADDER: readonly Rung[] = [
  { title: 'a PTE-level asi_map of a direct-map page copies the whole 1G/2M kernel page', fix: { splitLargePages: true }, numRuns: 200, foundation: true },
  { title: 'mapping a percpu variable maps its page, and the CSPRNG state beside it', fix: { percpuSecretsOwnPage: true }, numRuns: 300, foundation: true },
  { title: 'asi_unmap of a PTE-level range clears nothing: asi_clear_pmd_range skips present PMDs', fix: { clearPresentPmd: true }, numRuns: 300, foundation: true },
  { title: 'asi_map_range rounds the range out to its level and maps what the rounding reaches', fix: { exactExtent: true }, numRuns: 500, foundation: true },
  { title: 'memory freed by the kernel stays mapped in the ASI', fix: { freeUnmapsAsi: true }, numRuns: 1000, foundation: true },
  { title: 'asi_clear_pte_range from an unaligned start misses the last page', fix: { clearAlignedStart: true }, numRuns: 1000, foundation: true },
  { title: 'overlap counts and "implicitly mapped" use the old ranges\' rounded extents, not what is mapped', fix: { overlapPolicy: 'refcount-entries' }, numRuns: 1000, foundation: true },
  { title: 'a failed asi_map_range leaves what it copied mapped but untracked', fix: { rollbackOnError: true }, numRuns: 2000, foundation: true },
  { title: "a large entry whose frame is one of the ASI's own tables passes asi_valid_offset", fix: { offsetChecksLevel: true }, numRuns: 2000, foundation: true },
  // CPUs (issue 4): every invariant, every op kind.
  { title: 'with exact extents the read-only IDT below CPU_ENTRY_AREA_PER_CPU is no longer mapped: any interrupt while isolated double-faults', fix: { initMapsIdt: true }, numRuns: 3000 },
  { title: 'asi_map_range allocates page tables and its range_mapping with GFP_KERNEL under spin_lock_irqsave(&asi->lock)', fix: { atomicAllocs: true }, numRuns: 3000 },
  { title: 'asi_unmap can remove the core mappings (cpu_asi_session) and the stack asi_enter mapped: the entry path double-faults', fix: { protectInternalRanges: true }, numRuns: 3000 },
  { title: 'a fault in a handler that aborted isolation is reported handled by asi_fault and retried forever', fix: { faultChecksDepth: true }, numRuns: 3000 },
  { title: 'Global TLB entries survive the CR3 write of asi_enter: what the kernel touched stays reachable while isolated', fix: { flushGlobalOnEnter: true }, numRuns: 3000 },
  { title: 'asi_destroy frees an ASI that a CPU is still isolated in', fix: { destroyChecksSessions: true }, numRuns: 3000 },
  { title: 'asi_fault (and asi_enter, asi_exit) take get_cpu_var() and never put it: schedule() while atomic', fix: { putCpuVar: true }, numRuns: 3000 },
  { title: 'an NMI inside asi_start_abort, between state = ABORTED and abort_depth++, exits the session; abort_depth is left at 1', fix: { startAbortCountsFirst: true }, numRuns: 3000 },
  { title: 'an interrupt between asi_barrier_end clearing retry_abort and its state check runs its handler on the ASI page table', fix: { barrierEndChecksFirst: true }, numRuns: 3000 },
  { title: "asi_exit(asi) with another ASI than the session's unmaps the stack from the wrong ASI", fix: { exitChecksAsi: true }, numRuns: 3000 },
];

/** The v3 design (interrupts resume isolation), found in this order after the rfc-v2 ladder. */
export const V3_LADDER: readonly Rung[] = [
  { title: 'v3: ASI_RESUME reloads the isolation CR3 with NOFLUSH, and Global entries the handler filled stay reachable', fix: { resumeFlushesGlobal: true }, numRuns: 3000 },
  { title: 'v3: an interrupt between asi_exit restoring CR3 and leaving ACTIVE resumes isolation, and the exit leaves the CPU on the ASI', fix: { exitDeactivatesFirst: true }, numRuns: 3000 },
];

export const LADDERS = [
  { profile: 'rfc-v2', prefix: 'F', rungs: LADDER },
  { profile: 'v3', prefix: 'V', rungs: V3_LADDER },
] as const;

export const LADDER_SEED = 42;

/**
 * Findings the random search does not reach within the ladder's budget (they need five or more
 * specific ops), written down as op lists, each in the configuration after the whole rfc-v2 ladder.
 */
export const DIRECTED: readonly { readonly title: string; readonly fix: Partial<DesignOptions>; readonly ops: readonly Op[] }[] = [
  {
    title: "asi_unmap clears the entries but flushes no TLB: a CPU isolated in the ASI keeps reaching the unmapped object through a Global entry",
    fix: { asiUnmapFlushesTlb: true },
    // 0x24a000 is the kmalloc object's direct-map address in the small geometry (0xffffffffff24a000).
    ops: [
      { op: 'asi_create', flags: 0 },
      { op: 'kmalloc', size: 0x40, sensitive: true },
      { op: 'asi_map', asi: 1, ptr: 0x24a000, size: 0x40, level: 0 },
      { op: 'asi_enter', cpu: 0, asi: 1, intr: [] },
      { op: 'access', cpu: 0, va: 0x24a000, access: 'read', intr: [] },
      { op: 'asi_unmap', asi: 1, ptr: 0x24a000 },
    ],
  },
];

/** The configuration rung i of a ladder ran in: its profile with the fixes of the rungs before it. */
export function rungConfig(i: number, ladder: (typeof LADDERS)[number] = LADDERS[0]): Config {
  const options = Object.assign({}, ...ladder.rungs.slice(0, i).map((r) => r.fix)) as Partial<DesignOptions>;
  return { geometry: 'small', cpus: 2, profile: ladder.profile, options };
}

function main(): void {
  const dir = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'counterexamples');
  for (const ladder of LADDERS) {
    ladder.rungs.forEach((rung: Rung, i) => {
      const config = rungConfig(i, ladder);
      const name = `${ladder.prefix}${i + 1}`;
      const t0 = performance.now();
      const f = hunt(config, { seed: LADDER_SEED, numRuns: rung.numRuns, ...(rung.foundation ? { invariants: FOUNDATION_INVARIANTS, weights: FOUNDATION_WEIGHTS } : {}) });
      const ms = (performance.now() - t0).toFixed(0);
      if (!f) {
        console.log(`${name} ${rung.title}: not found in ${rung.numRuns} runs (${ms} ms)`);
        return;
      }
      const c = makeCounterexample(config, f.ops, f.violation.invariant, f.violation.message, `${name}: ${rung.title}`, { by: 'findings ladder (fast-check)', seed: f.seed, path: f.path, runs: f.runsToFailure });
      const path = saveCounterexample(dir, c);
      console.log(`${name} ${f.violation.invariant} after ${f.runsToFailure} runs, ${f.ops.length} ops (${ms} ms) -> ${path}`);
      for (const op of f.ops) console.log(`     ${formatOp(GEOMETRIES.small, op)}`);
      console.log(`     ${f.violation.message}`);
    });
  }
  DIRECTED.forEach((d, i) => {
    const name = `F${LADDER.length + i + 1}`;
    const config = rungConfig(LADDER.length);
    const failure = runOps(config, d.ops).failure;
    if (!failure) {
      console.log(`${name} ${d.title}: no longer reproduces`);
      return;
    }
    const v = failure.violations[0];
    const path = saveCounterexample(dir, makeCounterexample(config, d.ops, v.invariant, v.message, `${name}: ${d.title}`, { by: 'directed scenario' }));
    console.log(`${name} ${v.invariant}, ${d.ops.length} ops (directed) -> ${path}`);
    console.log(`     ${v.message}`);
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
