// Exhaustive search throughput: distinct states per second and bytes per state of `asi-check
// explore` on `fixed`, 2 CPUs, the default scope, and the kvm scope's interleavings with
// `--preemptions 2`, on this thread (workers would measure the machine, not the search), for a CPU
// budget. States per CPU-second, as the other bench rows, so that other work on a shared machine
// slows the figure less than wall time would.

import v8 from 'node:v8';
import vm from 'node:vm';
import { explore } from '../src/check/explore/search.ts';
import { KVM_SCOPE, SMALL_SCOPE, type Scope, alphabet } from '../src/check/explore/scope.ts';
import { fingerprint } from '../src/check/explore/encode.ts';
import { checkedStep } from '../src/check/run.ts';
import { type Checker, newChecker } from '../src/invariants/index.ts';
import { createSystem } from '../src/model/step.ts';
import { type System, cloneSystem } from '../src/model/system.ts';
import { cpuSeconds } from './cpu.ts';

export interface ExploreBench {
  readonly states: number;
  readonly transitions: number;
  readonly depthCompleted: number;
  readonly cpuSeconds: number;
  readonly statesPerSecond: number;
  readonly transitionsPerSecond: number;
  /** What the search keeps per distinct state (its fingerprint in the seen set, its node), measured apart: see retainedBytesPerState. */
  readonly bytesPerState: number;
}

/**
 * The heap the search retains per distinct state: `count` fingerprints of its format (three 32-bit
 * hashes in base 36) in a Set, and a node (parent and op index, two Int32Array slots), measured
 * between two full collections. The search's own heap growth is no figure for a run of a few
 * thousand states: garbage not yet collected outweighs it, and a collection can make it negative.
 */
function retainedBytesPerState(count = 200_000): number {
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as () => void;
  gc();
  const before = process.memoryUsage().heapUsed;
  const seen = new Set<string>();
  const h = (x: number) => (Math.imul(x ^ (x >>> 15), 0x2c1b3c6d) >>> 0).toString(36);
  for (let i = 0; i < count; i++) seen.add([h(i), h(i + 0x9e3779b9), h(i ^ 0x7f4a7c15)].join(':')); // as Hash96.digest
  const nodes = [new Int32Array(count), new Int32Array(count)];
  gc();
  const bytes = process.memoryUsage().heapUsed - before + nodes[0].byteLength + nodes[1].byteLength;
  return Math.round(bytes / seen.size);
}

export async function benchExplore(budgetSeconds: number, scope: Scope = SMALL_SCOPE): Promise<ExploreBench> {
  const start = cpuSeconds();
  const r = await explore({ geometry: 'small', cpus: 2, profile: 'fixed' }, scope, { depth: 64 }, { shouldStop: () => cpuSeconds() - start >= budgetSeconds });
  const cpu = cpuSeconds() - start;
  return {
    states: r.states,
    transitions: r.transitions,
    depthCompleted: r.depthCompleted,
    cpuSeconds: cpu,
    statesPerSecond: Math.round(r.states / cpu),
    transitionsPerSecond: Math.round(r.transitions / cpu),
    bytesPerState: retainedBytesPerState(),
  };
}

/** Milliseconds per transition, by part, and how many times a transition is judged. */
export interface TransitionCost {
  readonly transitions: number;
  readonly clone: number;
  /** The op's first check: the checker's views built from nothing, every invariant judged. */
  readonly firstCheck: number;
  /** The other checks, at later micro-steps and after the op: what changed since the one before. */
  readonly laterChecks: number;
  /** The op itself, the model alone. */
  readonly model: number;
  readonly fingerprint: number;
  readonly checksPerTransition: number;
}

/**
 * Where an explore transition's time goes, from the distinct states of the small scope's depth 3,
 * stepped as the search steps them (a copy, a checker of its own, checkedStep, the fingerprint):
 * what keeping a parent's checker views for its children could save is the first check's share.
 */
export function transitionCost(states = 300): TransitionCost {
  const config = { geometry: 'small', cpus: 2, profile: 'fixed' } as const;
  let level: System[] = [createSystem(config)];
  const seen = new Set<string>();
  for (let d = 0; d < 3; d++) {
    const next: System[] = [];
    for (const s of level) {
      for (const op of alphabet(s, SMALL_SCOPE, 0)) {
        const c = cloneSystem(s);
        checkedStep(c, op, d, newChecker('incremental'));
        const key = fingerprint(c);
        if (!seen.has(key)) next.push(c);
        seen.add(key);
      }
    }
    level = next;
  }
  const ms = { clone: 0, firstCheck: 0, laterChecks: 0, step: 0, fingerprint: 0 };
  let [transitions, checks] = [0, 0];
  for (const s of level.slice(0, states)) {
    for (const op of alphabet(s, SMALL_SCOPE, 0)) {
      let t = performance.now();
      const c = cloneSystem(s);
      ms.clone += performance.now() - t;
      const inner = newChecker('incremental');
      let first = true;
      const timed: Checker = (sys, phase) => {
        const t0 = performance.now();
        const v = inner(sys, phase);
        ms[first ? 'firstCheck' : 'laterChecks'] += performance.now() - t0;
        first = false;
        checks++;
        return v;
      };
      t = performance.now();
      checkedStep(c, op, 3, timed);
      ms.step += performance.now() - t;
      t = performance.now();
      fingerprint(c);
      ms.fingerprint += performance.now() - t;
      transitions++;
    }
  }
  const per = (x: number) => x / transitions;
  return {
    transitions,
    clone: per(ms.clone),
    firstCheck: per(ms.firstCheck),
    laterChecks: per(ms.laterChecks),
    model: per(ms.step - ms.firstCheck - ms.laterChecks),
    fingerprint: per(ms.fingerprint),
    checksPerTransition: checks / transitions,
  };
}

/** The bench rows: states/s, transitions/s, bytes per state; then states/s of the kvm scope's interleavings. */
export async function printExploreBench(budgetSeconds: number): Promise<void> {
  const b = await benchExplore(budgetSeconds);
  console.log(`${'explore fixed, small scope: states/s'.padEnd(40)} ${String(b.statesPerSecond).padStart(8)}  (${b.states} distinct states, proved to depth ${b.depthCompleted}, ${b.cpuSeconds.toFixed(1)} CPU-s)`);
  console.log(`${'explore transitions/s'.padEnd(40)} ${String(b.transitionsPerSecond).padStart(8)}`);
  console.log(`${'explore bytes per state'.padEnd(40)} ${String(b.bytesPerState).padStart(8)}`);
  const c = transitionCost();
  const total = c.clone + c.firstCheck + c.laterChecks + c.model + c.fingerprint;
  const share = (x: number) => `${x.toFixed(3)} ms ${((100 * x) / total).toFixed(0).padStart(3)}%`;
  console.log(`${'explore transition (one thread)'.padEnd(40)} ${total.toFixed(3).padStart(8)} ms  (${c.transitions} transitions from depth 3; ${c.checksPerTransition.toFixed(1)} checks each)`);
  console.log(`  copy of the state ${share(c.clone)}, the op (model) ${share(c.model)}, its first check (views from nothing) ${share(c.firstCheck)},`);
  console.log(`  its other checks ${share(c.laterChecks)}, the fingerprint ${share(c.fingerprint)}`);
  const k = await benchExplore(budgetSeconds, { ...KVM_SCOPE, preemptions: 2 });
  console.log(`${'explore kvm scope, --preemptions 2: states/s'.padEnd(40)} ${String(k.statesPerSecond).padStart(8)}  (${k.states} nodes, proved to depth ${k.depthCompleted}, ${k.transitionsPerSecond} transitions/s, ${k.cpuSeconds.toFixed(1)} CPU-s)`);
}
