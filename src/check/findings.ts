// The findings ladders: the checker run on a profile (`rfc-v2`, then the `v3` design), and after
// each finding its fix turned on and the search run again. Each rung's configuration is where the
// finding was made; `npm run findings` re-runs the ladders and saves each shrunk counterexample in
// counterexamples/.

import { fileURLToPath } from 'node:url';
import { basename, dirname, join } from 'node:path';
import type { DesignOptions } from '../model/options.ts';
import { type Config, type KernelConfig, type System, cloneSystem, designOf } from '../model/system.ts';
import { type Op, formatOp } from '../model/ops.ts';
import { runOps } from './run.ts';
import { shorten } from './explore/shrink-quality.ts';
import { GEOMETRIES, PAGE_SIZE, PGT_LEVEL_P4D, PGT_LEVEL_PGD, PGT_LEVEL_PMD, levelSize } from '../model/mm/geometry.ts';
import { hunt } from './hunt.ts';
import { FOUNDATION_INVARIANTS } from '../invariants/index.ts';
import { DEFAULT_WEIGHTS, FOUNDATION_WEIGHTS, KVM_WEIGHTS, WALK_KERNEL_WEIGHTS, WALK_WEIGHTS, type Weights } from '../generators/choose.ts';
import { MUTANT_INFO, type MutantName } from '../model/mutants.ts';
import { type Counterexample, configLabel, makeCounterexample, saveCounterexample } from './counterexample.ts';
import { type OptionName, causeLabel, fixCandidates, triageOps, withFixes } from './triage.ts';
import { violates } from './shrink.ts';
import { createSystem, step } from '../model/step.ts';
import { directMapVa } from '../model/mm/kernel.ts';

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
  { title: "asi_exit(asi) with another ASI than the session's unmaps the stack from the wrong ASI", fix: { exitChecksAsi: true }, numRuns: 8000 },
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

/** A directed scenario: ops built against a live system of the configuration, so addresses are real. */
export type Scenario = (run: (op: Op) => number, sys: System) => void;

/** The ops a scenario makes, run in `config` as they are made. */
export function scenarioOps(config: Config, scenario: Scenario): Op[] {
  const sys = createSystem(config);
  const ops: Op[] = [];
  scenario((op) => {
    ops.push(op);
    return step(sys, op).ret;
  }, sys);
  return ops;
}

/** The direct-map address of the object a kmalloc op just returned. */
function kmallocVa(sys: System, id: number): number {
  return sys.kernel.kmallocs.get(id)!.va;
}

/**
 * Findings the random search does not reach within the ladder's budget (they need several specific
 * ops, or a second caller of the API), written down as scenarios. Each is made in the configuration
 * with every other fix on, then reduced to the fewest options it needs (provenance()).
 */
export interface Directed {
  readonly title: string;
  readonly fix: OptionName;
  readonly expect: string;
  readonly scenario: Scenario;
  /** Where it is made, when not with every other fix on: these options on the posted code, and the kernel it needs. */
  readonly start?: Partial<DesignOptions>;
  readonly kernel?: KernelConfig;
}

const POSTED: Config = { geometry: 'small', cpus: 2, profile: 'rfc-v2' };

/** The configuration a directed finding is made in. */
export function directedConfig(d: Directed): Config {
  const base: Config = d.kernel ? { ...POSTED, kernel: d.kernel } : POSTED;
  return d.start ? { ...base, options: d.start } : withFixes(base, fixCandidates(base).filter((o) => o !== d.fix));
}

export const DIRECTED: readonly Directed[] = [
  {
    title: 'asi_unmap clears the entries but flushes no TLB: a CPU isolated in the ASI keeps reaching the unmapped object through a Global entry',
    fix: 'asiUnmapFlushesTlb',
    expect: 'ISOLATION',
    scenario: (run, sys) => {
      run({ op: 'asi_create', flags: 0 });
      // A page-sized object: a kmalloc-4k slot is its page, which mapRefusesSharedSlabPages lets asi_map map.
      const va = kmallocVa(sys, run({ op: 'kmalloc', size: PAGE_SIZE, sensitive: true }));
      run({ op: 'asi_map', asi: 1, ptr: va, size: PAGE_SIZE, level: 0 });
      run({ op: 'asi_enter', cpu: 0, asi: 1, intr: [] });
      run({ op: 'access', cpu: 0, va, access: 'read', intr: [] });
      run({ op: 'asi_unmap', asi: 1, ptr: va });
    },
  },
  {
    title: "a whole-entry asi_map_range copies the kernel's pointer to its lower table: what the kernel maps under it later (a new task's stack) appears in the ASI",
    fix: 'privateLowerTables',
    expect: 'ISOLATION',
    scenario: (run, sys) => {
      run({ op: 'asi_create', flags: 0 });
      const pmd = levelSize(sys.g, PGT_LEVEL_PMD);
      const end = Math.max(...[...sys.kernel.vmAreas.values()].map((v) => v.va + v.span * PAGE_SIZE));
      run({ op: 'asi_map', asi: 1, ptr: end - (end % pmd), size: pmd, level: PGT_LEVEL_PMD });
      run({ op: 'vmalloc', pages: 1, sensitive: true });
    },
  },
  {
    title: 'asi_map of the direct-map page of a free frame succeeds: the data allocated there next (another owner\'s) is exposed',
    fix: 'mapRequiresLiveMemory',
    expect: 'ISOLATION',
    scenario: (run, sys) => {
      run({ op: 'asi_create', flags: 0 });
      // The frame that is still the lowest free one once asi_map has taken its own tables.
      for (let f = 0; f < sys.mem.frameAlloc.length; f++) {
        if (sys.mem.frameAlloc[f] !== -1) continue;
        const probe = cloneSystem(sys);
        const map: Op = { op: 'asi_map', asi: 1, ptr: directMapVa(sys, f), size: PAGE_SIZE, level: 0 };
        if (step(probe, map).ret !== 0 || probe.mem.frameAlloc.indexOf(-1) !== f) continue;
        run(map);
        // vmalloc takes the lowest free frames, so another owner's data lands on that frame.
        run({ op: 'vmalloc', pages: 1, sensitive: true });
        return;
      }
    },
  },
  {
    title: "asi_unmap finds a range by its start alone: one caller of the API removes another caller's mapping",
    fix: 'unmapMatchesCaller',
    expect: 'CALLER-CONTRACT',
    scenario: (run, sys) => {
      run({ op: 'asi_create', flags: 0 });
      const va = kmallocVa(sys, run({ op: 'kmalloc', size: PAGE_SIZE, sensitive: false }));
      run({ op: 'asi_map', asi: 1, ptr: va, size: PAGE_SIZE, level: 0 });
      run({ op: 'asi_unmap', asi: 1, ptr: va, caller: 1 });
    },
  },
  {
    title: 'a failing asi_map_percpu unmaps every CPU\'s range of the variable, also those mapped before the call',
    fix: 'percpuUndoesOwn',
    expect: 'CALLER-CONTRACT',
    scenario: (run) => {
      run({ op: 'asi_create', flags: 0 });
      run({ op: 'asi_map_percpu', asi: 1, var: 'rcu_data' });
      run({ op: 'asi_map_percpu', asi: 1, var: 'rcu_data' });
    },
  },
  {
    title: 'asi_remap of the same pointer with a larger size returns 0 and maps nothing new',
    fix: 'remapChecksSize',
    expect: 'CALLER-CONTRACT',
    scenario: (run, sys) => {
      run({ op: 'asi_create', flags: 0 });
      const va = kmallocVa(sys, run({ op: 'kmalloc', size: 2 * PAGE_SIZE, sensitive: false }));
      run({ op: 'asi_map', asi: 1, ptr: va, size: 0x40, level: 0 });
      run({ op: 'asi_remap', asi: 1, cur: va, ptr: va, size: 2 * PAGE_SIZE });
    },
  },
  {
    title: 'asi_clear_pgd_range calls pgd_clear(), a no-op with 4-level paging: a PGD-level range stays mapped after asi_unmap',
    fix: 'clearPgdAsP4d',
    expect: 'RANGE-NO-LEAK',
    start: {},
    scenario: (run, sys) => {
      const v = sys.kernel.layout.vmallocStart;
      run({ op: 'asi_create', flags: 0 });
      run({ op: 'asi_map', asi: 1, ptr: v, size: PAGE_SIZE, level: PGT_LEVEL_P4D });
      run({ op: 'asi_map', asi: 1, ptr: v + PAGE_SIZE, size: PAGE_SIZE, level: PGT_LEVEL_PGD });
      run({ op: 'asi_unmap', asi: 1, ptr: v });
      run({ op: 'asi_unmap', asi: 1, ptr: v + PAGE_SIZE });
    },
  },
  {
    title: 'asi_map_range copies from current->mm->pgd: called from a kernel thread (current->mm == NULL) it dereferences NULL under asi->lock',
    fix: 'copyFromInitMm',
    expect: 'NO-WARN',
    start: {},
    kernel: { apiCaller: 'kernel-thread' },
    scenario: (run) => {
      run({ op: 'asi_create', flags: 0 });
    },
  },
  {
    title: 'without CONFIG_TRANSPARENT_HUGEPAGE, pmd_trans_huge() is 0: asi_create walks into the kernel text large page and reads it as a PTE table',
    fix: 'pmdLargeNotTransHuge',
    expect: 'PT-OWN',
    start: {},
    kernel: { thp: false },
    scenario: (run) => {
      run({ op: 'asi_create', flags: 0 });
    },
  },
  {
    title: 'an NMI that aborts isolation runs asi_exit in NMI context: asi_unmap takes asi->lock and kfree()s the range there',
    fix: 'nmiDefersExit',
    expect: 'KERNEL-RULES',
    start: { atomicAllocs: true },
    scenario: (run) => {
      run({ op: 'asi_create', flags: 0 });
      run({ op: 'asi_enter', cpu: 0, asi: 1, intr: [] });
      run({ op: 'interrupt', cpu: 0, kind: 'nmi', intr: [] });
    },
  },
];

/** The configuration rung i of a ladder ran in: its profile with the fixes of the rungs before it. */
export function rungConfig(i: number, ladder: (typeof LADDERS)[number] = LADDERS[0]): Config {
  const options = Object.assign({}, ...ladder.rungs.slice(0, i).map((r) => r.fix)) as Partial<DesignOptions>;
  return { geometry: 'small', cpus: 2, profile: ladder.profile, options };
}

/** Fixes that no ladder rung or directed finding of the F series names: on while the F1-F19 rungs are hunted. */
function laterFixes(): OptionName[] {
  const named = new Set<string>([...LADDER.flatMap((r) => Object.keys(r.fix)), ...DIRECTED.map((d) => d.fix), ...V3_LADDER.flatMap((r) => Object.keys(r.fix))]);
  return fixCandidates({ geometry: 'small', cpus: 2, profile: 'rfc-v2' }).filter((o) => !named.has(o));
}

/**
 * Provenance: the fewest design options on top of the profile under which the ops still violate
 * the invariant and the finding's fix still makes them pass. Options are dropped one at a time,
 * the most recent first; none left means the finding reproduces on the profile as posted.
 */
export function provenance(config: Config, ops: readonly Op[], invariant: string, fix: OptionName): Config {
  const explains = (c: Config) => violates(c, ops, invariant) && !violates(withFixes(c, [fix]), ops, invariant);
  let cur = config;
  for (const o of Object.keys(config.options ?? {}).reverse()) {
    const without: Config = { ...cur, options: Object.fromEntries(Object.entries(cur.options ?? {}).filter(([k]) => k !== o)) };
    if (explains(without)) cur = without;
  }
  if (Object.keys(cur.options ?? {}).length) return cur;
  const { options: _none, ...posted } = cur;
  return posted;
}

/** One row of FINDINGS.md's provenance column, printed at the end of a run. */
const provenanceRows: string[] = [];

/** Saves a finding where its provenance says, and prints how it was found and what it needs. */
function record(dir: string, name: string, title: string, found: Config, ops: readonly Op[], invariant: string, fix: OptionName, how: NonNullable<Counterexample['found']>): void {
  const t = triageOps(found, ops, invariant);
  const explained = t.causes.some((c) => 'options' in c && c.options.length === 1 && c.options[0] === fix);
  const config = provenance(found, ops, invariant, fix);
  const v = runOps(config, ops, { stopOn: invariant }).failure!.violations.find((x) => x.invariant === invariant)!;
  const path = saveCounterexample(dir, makeCounterexample(config, ops, invariant, v.message, `${name}: ${title}`, how));
  console.log(`${name} ${invariant}, ${ops.length} ops, on ${configLabel(config)}${explained ? '' : ` (NOTE: triage names ${t.causes.map(causeLabel).join(' or ') || 'nothing'}, not ${fix})`} -> ${path}`);
  const on = config.options && Object.keys(config.options).length ? `after ${Object.keys(config.options).map((o) => `\`${o}\``).join(', ')}` : '**the posted code as is**';
  provenanceRows.push(`| ${name} | ${invariant} | ${on} | \`${basename(path)}\` |`);
  for (const op of ops) console.log(`     ${formatOp(GEOMETRIES[config.geometry], op)}`);
  console.log(`     ${v.message}`);
}

async function main(): Promise<void> {
  const dir = process.argv[2] ?? join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'counterexamples');
  const later = laterFixes();
  for (const ladder of LADDERS) {
    ladder.rungs.forEach((rung: Rung, i) => {
      const config = withFixes(rungConfig(i, ladder), later);
      const name = `${ladder.prefix}${i + 1}`;
      const t0 = performance.now();
      const fix = Object.keys(rung.fix)[0] as OptionName;
      const f = hunt(config, { seed: LADDER_SEED, numRuns: rung.numRuns, explainedBy: fix, ...(rung.foundation ? { invariants: FOUNDATION_INVARIANTS, weights: FOUNDATION_WEIGHTS } : {}) });
      const ms = (performance.now() - t0).toFixed(0);
      if (!f) {
        console.log(`${name} ${rung.title}: not found in ${rung.numRuns} runs (${ms} ms)`);
        return;
      }
      record(dir, name, rung.title, config, f.ops, f.violation.invariant, fix, { by: `findings ladder (fast-check, ${ms} ms)`, seed: f.seed, path: f.path, runs: f.runsToFailure });
    });
  }
  DIRECTED.forEach((d, i) => {
    const name = `F${LADDER.length + i + 1}`;
    const config = directedConfig(d);
    const ops = scenarioOps(config, d.scenario);
    if (!violates(config, ops, d.expect)) {
      console.log(`${name} ${d.title}: no longer reproduces`);
      return;
    }
    record(dir, name, d.title, config, ops, d.expect, d.fix, { by: 'directed scenario' });
  });
  await mutantCorpus(dir);
  console.log(['', '| # | invariant | reproduces on | file |', '|---|---|---|---|', ...provenanceRows].join('\n'));
}

export function mutantConfig(m: MutantName): Config {
  return { geometry: 'small', cpus: 2, profile: MUTANT_INFO[m].profile ?? 'fixed', mutant: m, ...(MUTANT_INFO[m].options ? { options: MUTANT_INFO[m].options } : {}) };
}

/**
 * The op mix a search for a mutant needs: KVM's ops for KVM's mutants; the fuzz walks' economy for
 * the 2025 design's, whose short fast-check runs would otherwise spend their ops on objects that do
 * not exist (the kill matrix was calibrated on DEFAULT_WEIGHTS before it had them).
 */
export function mutantWeights(m: MutantName): Weights {
  if (designOf(mutantConfig(m)) === 'asi-2025') return MUTANT_INFO[m].kvm ? WALK_WEIGHTS : WALK_KERNEL_WEIGHTS;
  return MUTANT_INFO[m].kvm ? KVM_WEIGHTS : DEFAULT_WEIGHTS;
}

/** Each mutant's first kill, shrunk, then shortened by breadth-first search where it can be. */
export async function mutantCorpus(dir: string, mutants = Object.keys(MUTANT_INFO) as MutantName[]): Promise<void> {
  for (const m of mutants) {
    const config = mutantConfig(m);
    const f = hunt(config, { seed: LADDER_SEED, numRuns: 3000, weights: mutantWeights(m) });
    if (!f) {
      console.log(`mutant ${m}: survived 3000 runs`);
      continue;
    }
    const short = await shorten(config, f.ops, f.violation.invariant);
    const ops = short ?? f.ops;
    const message = short ? runOps(config, short, { stopOn: f.violation.invariant }).failure!.violations.find((v) => v.invariant === f.violation.invariant)!.message : f.violation.message;
    const by = `mutant kill (fast-check${short ? `, ${f.ops.length} ops shortened by explore` : ''})`;
    const c = makeCounterexample(config, ops, f.violation.invariant, message, `mutant ${m}: ${MUTANT_INFO[m].where}`, { by, seed: f.seed, path: f.path, runs: f.runsToFailure });
    console.log(`mutant ${m}: ${f.violation.invariant} after ${f.runsToFailure} runs, ${ops.length} ops -> ${saveCounterexample(dir, c)}`);
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await main();
