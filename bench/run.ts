// Throughput of the checker, in steps per CPU-second (user + system time of this process, so that
// other work on a shared machine slows the figures less than wall time would). Figures and ratios,
// not pass/fail: `npm run bench`. Each row runs seeded walks, as `fuzz` does, until its CPU budget
// is spent; a row marked "first N" stopped inside its first walk.
//
//   checked      every invariant after every op and at every micro-step inside it (the fuzz default)
//   no micro     invariants after every op only (RunOptions.microSteps off)
//   model alone  step() over the ops a walk ran, no invariant, no op resolution
//   fc.modelRun  the same ops as fast-check commands (fc.commands + fc.modelRun): framework overhead

import fc from 'fast-check';
import { printExploreBench } from './explore.ts';
import { runSeededWalk } from '../src/check/seeded.ts';
import type { Op } from '../src/model/ops.ts';
import { createSystem, step } from '../src/model/step.ts';
import type { Config, System } from '../src/model/system.ts';

const BUDGET_S = Number(process.env.BENCH_BUDGET ?? 2.5);

function cpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

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
function checked(config: Config, length: number, microSteps = true): Rate {
  let cut = false;
  const r = measure((i, deadline) => {
    let steps = 0;
    const onStep = () => {
      steps++;
      if (cpuSeconds() > deadline) throw new OutOfBudget();
    };
    try {
      runSeededWalk(config, `bench-${i}`, length, undefined, { microSteps, onStep });
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

checked(small(), 60); // warm-up: the JIT, not the model
console.log(`${'steps per CPU-second'.padEnd(40)} ${'steps/s'.padStart(8)} ${'ratio'.padStart(8)}`);
const base = row('small 60-step, 2 CPUs, checked', checked(small(), 60));
row('small 1000-step (vs 60-step)', checked(small(), 1000), base);
row('small 60-step, 1 CPU (vs 2 CPUs)', checked(small(1), 60), base);
row('small 60-step, 4 CPUs (vs 2 CPUs)', checked(small(4), 60), base);
row('small 60-step, 8 CPUs (vs 2 CPUs)', checked(small(8), 60), base);
row('small rfc-v2 60-step', checked({ ...small(), profile: 'rfc-v2' }, 60), base);
row('small 60-step, no micro (vs checked)', checked(small(), 60, false), base);
const realBase = row('real 60-step, 2 CPUs (vs small)', checked(real(), 60), base);
row('real 1000-step (vs real 60-step)', checked(real(), 1000), realBase);
row('real 60-step, 8 CPUs (vs real 2 CPUs)', checked(real(8), 60), realBase);
row('real 60-step, no micro (vs real checked)', checked(real(), 60, false), realBase);
const smallOps = walkOps(small(), 60, 20);
row('small model alone (vs checked)', modelAlone(small(), smallOps), base);
row('real model alone (vs real checked)', modelAlone(real(), walkOps(real(), 60, 5)), realBase);
const framework = fastCheckVersusLoop(small(), smallOps, 60);
const loop = row('small plain loop, fc.commands prefixes', framework.loop);
row('small fc.commands + fc.modelRun (vs loop)', framework.fc, loop);
await printExploreBench(4 * BUDGET_S);
