// Breadth-first search over every op sequence of a scope, each distinct state expanded once.
//
// States are not kept: a node is its parent and the index of its op in the parent's alphabet
// (8 bytes), and a state is rebuilt by replaying its path from the boot state. Nodes of one level
// are expanded in the order they were made, which is the order of their paths, so consecutive nodes
// share their prefix and a stack of the states along the current path makes the replay cost about
// one step per node. Every transition is judged by checkedStep, as every fuzz walk is (micro-steps
// included), whether its target state is new or not: a violation belongs to the transition (a
// WARN, a CR3 load outside the barrier), not only to the state it leaves. Levels are finished one
// at a time, so the first violation found is of a shortest sequence.

import { type Failure, type RunOptions, checkedStep } from '../run.ts';
import { createSystem, step } from '../../model/step.ts';
import { type Config, type System, cloneSystem } from '../../model/system.ts';
import type { Op } from '../../model/ops.ts';
import { type Scope, alphabet } from './scope.ts';
import { fingerprint } from './encode.ts';

export interface ExploreLimits {
  readonly depth: number;
  /** Stop once this many distinct states are known. */
  readonly maxStates?: number;
  /** Stop once the heap holds this many bytes. */
  readonly maxBytes?: number;
}

export interface ExploreProgress {
  readonly states: number;
  readonly transitions: number;
  /** Every sequence of at most this many ops has been judged. */
  readonly depthCompleted: number;
  /** The level being expanded, and how far through it. */
  readonly level: number;
  readonly levelDone: number;
  readonly levelSize: number;
  readonly heapBytes: number;
}

export type StopReason = 'max-states' | 'max-memory' | 'interrupted';

export interface ExploreResult extends ExploreProgress {
  /** A shortest violating sequence, with the run's failure. */
  readonly violation?: { readonly ops: readonly Op[]; readonly failure: Failure };
  /** Why the search ended before `depth` (absent: it reached it, or found a violation). */
  readonly stopped?: StopReason;
  /** States per level, 0 (boot) first. */
  readonly perLevel: readonly number[];
}

export interface ExploreHooks {
  /** Asked between transitions: true ends the search, keeping what was proved. */
  readonly shouldStop?: () => boolean;
  /** Called about every `everyMs`, with the event loop let run (signals, timers) in between. */
  readonly onProgress?: (p: ExploreProgress) => void;
  readonly everyMs?: number;
}

/** How many transitions between two looks at the clock, the heap and the event loop. */
const CHECK_EVERY = 64;

export async function explore(config: Config, scope: Scope, limits: ExploreLimits, hooks: ExploreHooks = {}, run: RunOptions = {}): Promise<ExploreResult> {
  const root = createSystem(config);
  const seen = new Set<string>([fingerprint(root)]);
  // Node n: its parent and the index of its op in the parent's alphabet; node 0 is the boot state.
  let parent = new Int32Array(1024);
  let opIndex = new Int32Array(1024);
  let nodes = 1;
  const levelStart = [0, 1];
  let transitions = 0;
  let depthCompleted = 0;
  let heapBytes = process.memoryUsage().heapUsed;
  let level = 0;
  let levelDone = 0;
  let lastBeat = performance.now();
  const everyMs = hooks.everyMs ?? 1000;

  const progress = (): ExploreProgress => ({ states: seen.size, transitions, depthCompleted, level, levelDone, levelSize: levelStart[level + 1] - levelStart[level], heapBytes });
  const perLevel = () => levelStart.slice(1).map((end, d) => end - levelStart[d]);
  const path = (n: number): number[] => {
    const chain: number[] = [];
    for (let x = n; x !== 0; x = parent[x]) chain.push(x);
    return chain.reverse();
  };
  const opsOf = (n: number): Op[] => {
    const ops: Op[] = [];
    const sys = cloneSystem(root);
    for (const x of path(n)) {
      const op = alphabet(sys, scope)[opIndex[x]];
      ops.push(op);
      step(sys, op);
    }
    return ops;
  };
  const add = (p: number, j: number) => {
    if (nodes === parent.length) {
      const grow = (a: Int32Array) => {
        const b = new Int32Array(a.length * 2);
        b.set(a);
        return b;
      };
      parent = grow(parent);
      opIndex = grow(opIndex);
    }
    parent[nodes] = p;
    opIndex[nodes] = j;
    nodes++;
  };

  // States along the path of the node being expanded: stack[k] is its ancestor at depth k.
  const stack: System[] = [root];
  const stackIds: number[] = [0];
  const stateOf = (n: number, depth: number): System => {
    const chain = path(n);
    let k = 0;
    while (k < chain.length && stackIds[k + 1] === chain[k]) k++;
    for (; k < depth; k++) {
      const sys = cloneSystem(stack[k]);
      step(sys, alphabet(stack[k], scope)[opIndex[chain[k]]]);
      stack[k + 1] = sys;
      stackIds[k + 1] = chain[k];
    }
    stackIds.length = depth + 1;
    stack.length = depth + 1;
    return stack[depth];
  };

  const end = (extra: Partial<ExploreResult>): ExploreResult => ({ ...progress(), perLevel: perLevel(), ...extra });

  for (level = 0; level < limits.depth; level++) {
    const from = levelStart[level];
    const to = levelStart[level + 1];
    for (let n = from; n < to; n++) {
      levelDone = n - from;
      const sys = stateOf(n, level);
      const ops = alphabet(sys, scope);
      for (let j = 0; j < ops.length; j++) {
        const next = cloneSystem(sys);
        const { failure } = checkedStep(next, ops[j], level, run);
        transitions++;
        if (failure) return end({ violation: { ops: [...opsOf(n), ops[j]], failure } });
        const fp = fingerprint(next);
        if (!seen.has(fp)) {
          seen.add(fp);
          add(n, j);
        }
        if (transitions % CHECK_EVERY === 0) {
          heapBytes = process.memoryUsage().heapUsed;
          if (limits.maxStates !== undefined && seen.size >= limits.maxStates) return end({ stopped: 'max-states' });
          if (limits.maxBytes !== undefined && heapBytes >= limits.maxBytes) return end({ stopped: 'max-memory' });
          if (performance.now() - lastBeat >= everyMs) {
            // Let signals and timers in: Ctrl-C sets the flag shouldStop reads.
            await new Promise((r) => setImmediate(r));
            lastBeat = performance.now();
            hooks.onProgress?.(progress());
          }
          if (hooks.shouldStop?.()) return end({ stopped: 'interrupted' });
        }
      }
    }
    levelStart.push(nodes);
    depthCompleted = level + 1;
    levelDone = 0;
    hooks.onProgress?.(progress());
  }
  level = limits.depth - 1;
  return end({});
}
