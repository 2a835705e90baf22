// Throughput of the checker, in steps per CPU-second (user + system time of this process, so that
// other work on a shared machine slows the figures less than wall time would). Figures and ratios,
// not pass/fail: `npm run bench`. Each row runs seeded walks, as `fuzz` does, until its CPU budget
// is spent; a row marked "first N" stopped inside its first walk.
//
//   checked      every invariant after every op and at every micro-step inside it (the fuzz default),
//                judged incrementally (RunOptions.check, the default)
//   full         the same checks, each on the whole state (--check full: the reference)
//   no micro     invariants after every op only (RunOptions.microSteps off)
//   model alone  step() over the ops a walk ran, no invariant, no op resolution
//   fc.modelRun  the same ops as fast-check commands (fc.commands + fc.modelRun): framework overhead
//
// Then, per mutant, the kill rate of the npm-test matrix's search (test/kill-search.ts) from 20
// random seeds, printed so that a table can be re-run: what the matrix's budget and seeds rest on.
// Then explore's distinct states per second and bytes per state (bench/explore.ts).
// `npm run bench -- throughput`, `-- mutants` or `-- explore` runs one part.

import { execFile } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { printExploreBench } from './explore.ts';
import { type Op, serialOps } from '../src/model/ops.ts';
import { runOps } from '../src/check/run.ts';
import { createSystem, step } from '../src/model/step.ts';
import type { Config, System } from '../src/model/system.ts';
import type { CheckMode } from '../src/invariants/index.ts';
import { MUTANT_INFO, type MutantName } from '../src/model/mutants.ts';
import { runSeededWalk } from '../src/check/seeded.ts';
import { KILL_RUNS, KILL_SEEDS, MAX_KILL_OPS } from '../test/kill-search.ts';
import { allocatedBytes, cpuSeconds, median } from './cpu.ts';
import type { SeedKill } from './kill-rate.ts';
import { kvmBench } from './kvm.ts';

const BUDGET_S = Number(process.env.BENCH_BUDGET ?? 2.5);
const KILL_RATE = fileURLToPath(new URL('./kill-rate.ts', import.meta.url));

interface Rate {
  readonly steps: number;
  readonly seconds: number;
  /** Set when the budget ran out inside the first walk. */
  readonly partial?: boolean;
}

/** Runs `walk(i)` for i = 0, 1, ... until the budget is spent; `walk` returns the steps it ran. */
function measure(walk: (i: number, deadline: number) => number): Rate {
  const t0 = cpuSeconds();
  const deadline = t0 + BUDGET_S;
  let steps = 0;
  let walks = 0;
  while (walks === 0 || cpuSeconds() < deadline) steps += walk(walks++, deadline);
  return { steps, seconds: cpuSeconds() - t0 };
}

class OutOfBudget extends Error {}

/** A first walk longer than the budget is cut short: long real-geometry walks take minutes. */
function checked(config: Config, length: number, microSteps = true, check: CheckMode = 'incremental'): Rate {
  let cut = false;
  const r = measure((i, deadline) => {
    let steps = 0;
    const onStep = () => {
      steps++;
      if (cpuSeconds() > deadline) throw new OutOfBudget();
    };
    try {
      runSeededWalk(config, `bench-${i}`, length, undefined, { microSteps, onStep, check });
    } catch (e) {
      if (!(e instanceof OutOfBudget)) throw e;
      cut = i === 0;
    }
    return steps;
  });
  return cut ? { ...r, partial: true } : r;
}

/** The ops of seeded walks, resolved once, so that model-only rows time step() and nothing else. */
function walkOps(config: Config, length: number, walks: number): Op[][] {
  return Array.from({ length: walks }, (_, i) => [...runSeededWalk(config, `bench-${i}`, length, undefined, { invariants: [], microSteps: false }).ops]);
}

/** Every invariant at every micro-step, as `checked`, over the given walks' ops. */
function checkedOps(config: Config, walks: readonly Op[][]): Rate {
  return measure((i) => runOps(config, walks[i % walks.length]).ops.length);
}

function modelAlone(config: Config, walks: readonly Op[][]): Rate {
  return measure((i) => {
    const ops = walks[i % walks.length];
    const sys = createSystem(config);
    for (const op of ops) step(sys, op);
    return ops.length;
  });
}

interface Cursor {
  readonly ops: readonly Op[];
  next: number;
}

/** One command that applies the walk's next op: fast-check decides how many run. */
class NextOp implements fc.Command<Cursor, System> {
  check(m: Readonly<Cursor>): boolean {
    return m.next < m.ops.length;
  }
  run(m: Cursor, sys: System): void {
    step(sys, m.ops[m.next++]);
  }
  toString(): string {
    return 'next';
  }
}

/**
 * fast-check's model-based testing over the walks' ops: fc.commands picks how many of a walk's ops
 * run, fc.modelRun runs them. Returns that rate and the rate of a plain loop over the same prefixes.
 */
function fastCheckVersusLoop(config: Config, walks: readonly Op[][], length: number): { fc: Rate; loop: Rate } {
  const prefixes: { ops: readonly Op[]; n: number }[] = [];
  const t0 = cpuSeconds();
  for (let seed = 0; seed === 0 || cpuSeconds() < t0 + BUDGET_S; seed++) {
    fc.assert(
      fc.property(fc.commands([fc.constant(new NextOp())], { maxCommands: length, size: 'max' }), (cmds) => {
        const model: Cursor = { ops: walks[prefixes.length % walks.length], next: 0 };
        fc.modelRun(() => ({ model, real: createSystem(config) }), cmds);
        prefixes.push({ ops: model.ops, n: model.next });
      }),
      { numRuns: 10, seed },
    );
  }
  const t1 = cpuSeconds();
  for (const { ops, n } of prefixes) {
    const sys = createSystem(config);
    for (let i = 0; i < n; i++) step(sys, ops[i]);
  }
  const steps = prefixes.reduce((sum, p) => sum + p.n, 0);
  return { fc: { steps, seconds: t1 - t0 }, loop: { steps, seconds: cpuSeconds() - t1 } };
}

const small = (cpus = 2): Config => ({ geometry: 'small', cpus, profile: 'fixed' });
const real = (cpus = 2): Config => ({ geometry: 'real', cpus, profile: 'fixed' });

function perSecond(r: Rate): number {
  return r.steps / r.seconds;
}

function row(name: string, r: Rate, base?: Rate): Rate {
  const rate = perSecond(r);
  const note = r.partial ? `  (first ${r.steps} steps of one walk)` : '';
  const ratio = base ? `${(rate / perSecond(base)).toFixed(2)}x`.padStart(8) : ''.padStart(8);
  console.log(`${name.padEnd(40)} ${rate.toFixed(0).padStart(8)} ${ratio}${note}`);
  return r;
}

function throughput(): void {
  checked(small(), 60); // warm-up: the JIT, not the model
  console.log(`${'steps per CPU-second'.padEnd(40)} ${'steps/s'.padStart(8)} ${'ratio'.padStart(8)}`);
  const base = row('small 60-step, 2 CPUs, checked', checked(small(), 60));
  row('small 60-step, full check (vs checked)', checked(small(), 60, true, 'full'), base);
  row('small 1000-step (vs 60-step)', checked(small(), 1000), base);
  row('small 1000-step, full check (vs 60-step)', checked(small(), 1000, true, 'full'), base);
  row('small 60-step, 1 CPU (vs 2 CPUs)', checked(small(1), 60), base);
  row('small 60-step, 4 CPUs (vs 2 CPUs)', checked(small(4), 60), base);
  row('small 60-step, 8 CPUs (vs 2 CPUs)', checked(small(8), 60), base);
  row('small 60-step, 8 CPUs, full (vs 2 CPUs)', checked(small(8), 60, true, 'full'), base);
  row('small rfc-v2 60-step', checked({ ...small(), profile: 'rfc-v2' }, 60), base);
  // The 2025 design: its walks (KVM's ops included) and its invariants, no 2019 ASI to judge.
  const asi25 = row('small asi25-fixed 60-step (vs fixed)', checked({ ...small(), profile: 'asi25-fixed' }, 60), base);
  row('small asi25-fixed, 4 CPUs (vs 2 CPUs)', checked({ ...small(4), profile: 'asi25-fixed' }, 60), asi25);
  row('small asi25-dm-fixed 60-step (vs asi25-fixed)', checked({ ...small(), profile: 'asi25-dm-fixed' }, 60), asi25);
  row('small 60-step, no micro (vs checked)', checked(small(), 60, false), base);
  const realBase = row('real 60-step, 2 CPUs (vs small)', checked(real(), 60), base);
  row('real 60-step, full check (vs real checked)', checked(real(), 60, true, 'full'), realBase);
  row('real 1000-step (vs real 60-step)', checked(real(), 1000), realBase);
  row('real 60-step, 8 CPUs (vs real 2 CPUs)', checked(real(8), 60), realBase);
  row('real 60-step, no micro (vs real checked)', checked(real(), 60, false), realBase);
  const smallOps = walkOps(small(), 60, 20);
  row('small model alone (vs checked)', modelAlone(small(), smallOps), base);
  row('real model alone (vs real checked)', modelAlone(real(), walkOps(real(), 60, 5)), realBase);
  // Issue 20's target: a walk whose ops race costs no more than twice the same ops one after the other.
  const serial = row('small walks, races made serial, checked', checkedOps(small(), smallOps.map((w) => w.flatMap(serialOps))));
  row('small walks with races (vs serial)', checkedOps(small(), smallOps), serial);
  // Issue 21: bytes the checked step allocates, for a target of a quarter of today's.
  const allocated = (config: Config, walks: readonly Op[][]) => {
    const steps = walks.reduce((n, w) => n + w.length, 0);
    return allocatedBytes(() => walks.forEach((w) => runOps(config, w))) / steps;
  };
  console.log(`${'small, checked: bytes allocated per step'.padEnd(40)} ${allocated(small(), smallOps).toFixed(0).padStart(8)}`);
  console.log(`${'real, checked: bytes allocated per step'.padEnd(40)} ${allocated(real(), walkOps(real(), 60, 3)).toFixed(0).padStart(8)}`);
  const framework = fastCheckVersusLoop(small(), smallOps, 60);
  const loop = row('small plain loop, fc.commands prefixes', framework.loop);
  row('small fc.commands + fc.modelRun (vs loop)', framework.fc, loop);
  kvmBench();
}

/** Seeds per mutant in the kill-rate table: random, printed, never picked. */
const RATE_SEEDS = 20;
/** A mutant killed from fewer of them than this share is named below the table. */
const LOW_RATE = 0.5;

/** BENCH_KILL_SEEDS=s1,s2,... re-runs a table's seeds; otherwise RATE_SEEDS fresh ones, drawn outside the model. */
function rateSeeds(): number[] {
  const given = process.env.BENCH_KILL_SEEDS;
  if (given) return given.split(',').map(Number);
  return Array.from({ length: RATE_SEEDS }, () => randomInt(1, 2 ** 31 - 1));
}

/** One mutant's searches from every seed, in a child process (bench/kill-rate.ts). */
function killRates(m: MutantName, seeds: readonly number[]): Promise<SeedKill[]> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['--import', 'tsx', KILL_RATE, m, seeds.join(',')], { maxBuffer: 1 << 24 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`bench/kill-rate.ts ${m}: ${stderr || err.message}`));
      else resolve(stdout.trim().split('\n').map((l) => JSON.parse(l) as SeedKill));
    });
  });
}

/**
 * The kill-rate table: for each mutant, the share of RATE_SEEDS random seeds from which the
 * npm-test matrix's search (test/kill-search.ts) kills it as the matrix requires, and of those
 * kills the runs to the first failure and the CPU-seconds to kill (search and shrinking), median
 * and max; mutants side by side on the cores. Then the mutants below LOW_RATE, what that means for
 * the matrix's seeds, and what the matrix costs (a search per mutant, survivors included).
 */
async function mutants(): Promise<void> {
  const seeds = rateSeeds();
  // BENCH_MUTANTS=a,b: only those (the mutants a change added, say), or every one.
  const only = process.env.BENCH_MUTANTS?.split(',');
  const names = (Object.keys(MUTANT_INFO) as MutantName[]).filter((m) => !only || only.includes(m));
  console.log(`\nkill rates of the npm-test matrix's search (hunt, up to ${KILL_RUNS} fast-check runs, shrunk to ${MAX_KILL_OPS} ops or fewer) from ${seeds.length} random seeds:`);
  console.log(`  BENCH_KILL_SEEDS=${seeds.join(',')}`);
  const results = new Map<MutantName, SeedKill[]>();
  const queue = [...names];
  const lanes = Array.from({ length: availableParallelism() }, async () => {
    for (let m = queue.shift(); m; m = queue.shift()) {
      results.set(m, await killRates(m, seeds));
      console.error(`  ${m}: ${results.get(m)!.filter((k) => k.killed).length}/${seeds.length} (${results.size}/${names.length} mutants)`);
    }
  });
  await Promise.all(lanes);
  const cell = (xs: readonly number[], f: (xs: readonly number[]) => number, digits: number, w: number) => (xs.length ? f(xs).toFixed(digits) : '-').padStart(w);
  const max = (xs: readonly number[]) => Math.max(...xs);
  console.log(`${'mutant'.padEnd(34)} ${'kills'.padStart(6)} ${'rate'.padStart(5)} ${'runs med'.padStart(8)} ${'runs max'.padStart(8)} ${'CPU-s med'.padStart(9)} ${'CPU-s max'.padStart(9)}`);
  const rates = new Map<MutantName, number>();
  for (const m of names) {
    const r = results.get(m)!;
    const kills = r.filter((k) => k.killed);
    rates.set(m, kills.length / r.length);
    const runs = kills.map((k) => k.runs!);
    const cpu = kills.map((k) => k.seconds);
    console.log(`${m.padEnd(34)} ${`${kills.length}/${r.length}`.padStart(6)} ${`${Math.round((100 * kills.length) / r.length)}%`.padStart(5)} ${cell(runs, median, 0, 8)} ${cell(runs, max, 0, 8)} ${cell(cpu, median, 2, 9)} ${cell(cpu, max, 2, 9)}`);
    for (const k of r.filter((k) => !k.killed)) console.log(`    seed ${k.seed}: ${k.problem}`);
  }
  const low = names.filter((m) => rates.get(m)! < LOW_RATE);
  console.log(low.length ? `below ${LOW_RATE * 100}%: ${low.join(', ')}` : `no mutant below ${LOW_RATE * 100}%`);
  // The matrix tries KILL_SEEDS in order; seeds are interchangeable, so each fails a mutant with
  // probability 1 - rate, and all of them with that to the power of their number.
  const worst = names.reduce((a, b) => (rates.get(b)! < rates.get(a)! ? b : a));
  const survive = (1 - rates.get(worst)!) ** KILL_SEEDS.length;
  console.log(`the matrix tries ${KILL_SEEDS.length} seed(s) (${KILL_SEEDS.join(', ')}): the weakest mutant, ${worst} at ${Math.round(100 * rates.get(worst)!)}%, survives all of them with probability ${survive.toPrecision(2)}`);
  console.log(`median CPU-seconds of the matrix (one search per mutant): ${names.reduce((sum, m) => sum + median(results.get(m)!.map((k) => k.seconds)), 0).toFixed(1)}`);
}

const PARTS = ['throughput', 'mutants', 'explore'];
const part = process.argv[2];
if (part !== undefined && !PARTS.includes(part)) {
  console.error(`npm run bench: unknown part '${part}' (one of ${PARTS.join(', ')}; none runs all)`);
  process.exit(2);
}
if (part === undefined || part === 'throughput') throughput();
if (part === undefined || part === 'mutants') await mutants();
if (part === undefined || part === 'explore') await printExploreBench(4 * BUDGET_S);
