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
// Then, per mutant, the search the fuzzer runs: seeded walks until one fails (the time to kill,
// median and max over 5 base seeds) and the shrinking of that failure (walker.ts minimize).
// Then explore's distinct states per second and bytes per state (bench/explore.ts).
// `npm run bench -- throughput`, `-- mutants` or `-- explore` runs one part.

import fc from 'fast-check';
import { printExploreBench } from './explore.ts';
import type { Op } from '../src/model/ops.ts';
import { createSystem, step } from '../src/model/step.ts';
import type { Config, System } from '../src/model/system.ts';
import type { CheckMode } from '../src/invariants/index.ts';
import { MUTANT_INFO, type MutantName } from '../src/model/mutants.ts';
import { mutantConfig } from '../src/check/findings.ts';
import { KVM_WEIGHTS, WALK_WEIGHTS } from '../src/generators/choose.ts';
import { minimize } from '../src/check/fuzz/walker.ts';
import { DEFAULT_WALK_STEPS, runSeededWalk, walkSeed } from '../src/check/seeded.ts';
import { cpuSeconds, median } from './cpu.ts';
import { kvmBench } from './kvm.ts';

const BUDGET_S = Number(process.env.BENCH_BUDGET ?? 2.5);

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
  row('small 60-step, no micro (vs checked)', checked(small(), 60, false), base);
  const realBase = row('real 60-step, 2 CPUs (vs small)', checked(real(), 60), base);
  row('real 60-step, full check (vs real checked)', checked(real(), 60, true, 'full'), realBase);
  row('real 1000-step (vs real 60-step)', checked(real(), 1000), realBase);
  row('real 60-step, 8 CPUs (vs real 2 CPUs)', checked(real(8), 60), realBase);
  row('real 60-step, no micro (vs real checked)', checked(real(), 60, false), realBase);
  const smallOps = walkOps(small(), 60, 20);
  row('small model alone (vs checked)', modelAlone(small(), smallOps), base);
  row('real model alone (vs real checked)', modelAlone(real(), walkOps(real(), 60, 5)), realBase);
  const framework = fastCheckVersusLoop(small(), smallOps, 60);
  const loop = row('small plain loop, fc.commands prefixes', framework.loop);
  row('small fc.commands + fc.modelRun (vs loop)', framework.fc, loop);
  kvmBench();
}

const KILL_SEEDS = 5;
/** A mutant not killed within this many CPU-seconds of walks counts as surviving that seed. */
const KILL_CAP_S = 20;

/** The fuzzer's search for one mutant from one base seed: CPU-seconds to the first failing walk, and to shrink it. */
function killAndShrink(m: MutantName, base: string): { kill: number; shrink: number } | undefined {
  const config = mutantConfig(m);
  const weights = MUTANT_INFO[m].kvm ? KVM_WEIGHTS : WALK_WEIGHTS;
  const t0 = cpuSeconds();
  for (let i = 0; cpuSeconds() - t0 < KILL_CAP_S; i++) {
    const seed = walkSeed(base, 1, 0, i);
    const res = runSeededWalk(config, seed, DEFAULT_WALK_STEPS, weights);
    if (!res.failure) continue;
    const kill = cpuSeconds() - t0;
    minimize(config, seed, res.ops, res.failure.violations[0].invariant);
    return { kill, shrink: cpuSeconds() - t0 - kill };
  }
  return undefined;
}

function mutants(): void {
  console.log(`\n${'CPU-seconds, over 5 seeds'.padEnd(34)} ${'kill med'.padStart(8)} ${'kill max'.padStart(8)} ${'shrink med'.padStart(10)} ${'survived'.padStart(8)}`);
  const kills: number[] = [];
  const shrinks: number[] = [];
  for (const m of Object.keys(MUTANT_INFO) as MutantName[]) {
    const runs = Array.from({ length: KILL_SEEDS }, (_, s) => killAndShrink(m, `bench-kill-${s}`));
    const done = runs.filter((r) => r !== undefined);
    kills.push(...done.map((r) => r.kill));
    shrinks.push(...done.map((r) => r.shrink));
    const cell = (xs: number[], f: (xs: number[]) => number, w: number) => (xs.length ? f(xs).toFixed(2) : '-').padStart(w);
    const k = done.map((r) => r.kill);
    console.log(`${m.padEnd(34)} ${cell(k, median, 8)} ${cell(k, (xs) => Math.max(...xs), 8)} ${cell(done.map((r) => r.shrink), median, 10)} ${String(KILL_SEEDS - done.length).padStart(8)}`);
  }
  console.log(`${'all mutants'.padEnd(34)} ${median(kills).toFixed(2).padStart(8)} ${Math.max(...kills).toFixed(2).padStart(8)} ${median(shrinks).toFixed(2).padStart(10)}`);
}

const PARTS = ['throughput', 'mutants', 'explore'];
const part = process.argv[2];
if (part !== undefined && !PARTS.includes(part)) {
  console.error(`npm run bench: unknown part '${part}' (one of ${PARTS.join(', ')}; none runs all)`);
  process.exit(2);
}
if (part === undefined || part === 'throughput') throughput();
if (part === undefined || part === 'mutants') mutants();
if (part === undefined || part === 'explore') await printExploreBench(4 * BUDGET_S);
