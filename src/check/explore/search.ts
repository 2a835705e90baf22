// Breadth-first search over every op sequence of a scope, each distinct state expanded once.
//
// States are not kept: a node is its parent and the index of its op in the parent's alphabet
// (8 bytes), and a state is rebuilt by replaying its path from the boot state (Expander). Nodes
// of one level are expanded in batches in the order they were made, which is the order of their
// paths, so consecutive nodes share their prefix and the replay costs about one step per node.
// Every transition is judged by checkedStep, as every fuzz walk is (micro-steps included), whether
// its target state is new or not: a violation belongs to the transition (a WARN, a CR3 load
// outside the barrier), not only to the state it leaves. Levels are finished one at a time, so the
// first violation found is of a shortest sequence. With workers, batches are expanded on worker
// threads and their results taken in batch order, so the search gives the same states, the same
// counts and the same counterexample on any number of threads.

import type { Failure, RunOptions } from '../run.ts';
import type { Config } from '../../model/system.ts';
import { createSystem } from '../../model/step.ts';
import type { Op } from '../../model/ops.ts';
import type { Scope } from './scope.ts';
import { type Expanded, Expander, nodeKey } from './expand.ts';
import { startExpanders } from './pool.ts';

export interface ExploreLimits {
  readonly depth: number;
  /** Stop once this many distinct states are known. */
  readonly maxStates?: number;
  /** Stop once the process is this many bytes resident: this thread, the workers and their heaps together. */
  readonly maxBytes?: number;
  /** Worker threads expanding batches (0: this thread). */
  readonly workers?: number;
  /** One of n machines' part of the search (see Shard). */
  readonly shard?: Shard;
}

/**
 * `--shard index/count`: every shard searches the levels up to `splitDepth` whole (the same nodes
 * on each), then expands only the nodes of that level whose key it owns (a hash of the key modulo
 * count) and their descendants. Each node of the split level has one owner, so the shards together
 * reach every state one machine reaches, and a shortest counterexample is found by its owner at
 * its length; a state two shards reach below the split is expanded by both (overlap, not loss).
 */
export interface Shard {
  /** 1-based. */
  readonly index: number;
  readonly count: number;
  readonly splitDepth: number;
}

/** FNV-1a of a node key: which shard owns it. */
export function shardOf(key: string, count: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
  return ((h >>> 0) % count) + 1;
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
  /** This thread's heap: the fingerprint set and the node arrays, what a state costs. */
  readonly heapBytes: number;
  /** The whole process resident, workers included: what --max-memory caps. */
  readonly rssBytes: number;
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
  /** Asked between batches: true ends the search, keeping what was proved. */
  readonly shouldStop?: () => boolean;
  /** Each node the search will expand, as it is made (the boot state's first): its key. */
  readonly onNode?: (key: string) => void;
  /** Called about every `everyMs`, and at the end of each level. */
  readonly onProgress?: (p: ExploreProgress) => void;
  readonly everyMs?: number;
}

/** States per batch: small enough for a fine-grained stop and even work, large enough to amortise a message. */
const BATCH = 48;

/** Expands batches of states, in order: on this thread, or on workers. */
export interface Expanders {
  expand(paths: Int32Array, depth: number, states: number): Promise<Expanded>;
  close(): Promise<void>;
}

function local(config: Config, scope: Scope, run: RunOptions): Expanders {
  const e = new Expander(config, scope, run);
  return { expand: async (paths, depth, states) => e.expand(paths, depth, states), close: async () => {} };
}

export async function explore(config: Config, scope: Scope, limits: ExploreLimits, hooks: ExploreHooks = {}, run: RunOptions = {}): Promise<ExploreResult> {
  const expanders = limits.workers ? startExpanders(config, scope, run, limits.workers) : local(config, scope, run);
  try {
    return await search(nodeKey(createSystem(config), scope, scope.preemptions), limits, hooks, expanders);
  } finally {
    await expanders.close();
  }
}

async function search(root: string, limits: ExploreLimits, hooks: ExploreHooks, expanders: Expanders): Promise<ExploreResult> {
  const seen = new Set<string>([root]);
  hooks.onNode?.(root);
  const { shard } = limits;
  // A node of the split level another shard owns stays known (seen), so this shard never expands its state below it either.
  const expands = (key: string, depth: number) => !shard || depth !== shard.splitDepth || shardOf(key, shard.count) === shard.index;
  // Node n: its parent and the index of its op in the parent's alphabet; node 0 is the boot state.
  let parent = new Int32Array(1024);
  let opIndex = new Int32Array(1024);
  let nodes = 1;
  const levelStart = [0, 1];
  let transitions = 0;
  let depthCompleted = 0;
  let { heapUsed: heapBytes, rss: rssBytes } = process.memoryUsage();
  let level = 0;
  let levelDone = 0;
  let lastBeat = performance.now();
  const everyMs = hooks.everyMs ?? 1000;

  const progress = (): ExploreProgress => ({ states: seen.size, transitions, depthCompleted, level, levelDone, levelSize: levelStart[level + 1] - levelStart[level], heapBytes, rssBytes });
  const perLevel = () => levelStart.slice(1).map((end, d) => end - levelStart[d]);
  const end = (extra: Partial<ExploreResult>): ExploreResult => ({ ...progress(), perLevel: perLevel(), ...extra });
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
  /** The paths of nodes [from, to), `depth` op indices each, end to end. */
  const pathsOf = (from: number, to: number, depth: number): Int32Array => {
    const out = new Int32Array((to - from) * depth);
    for (let n = from; n < to; n++) for (let x = n, k = depth - 1; x !== 0; x = parent[x], k--) out[(n - from) * depth + k] = opIndex[x];
    return out;
  };

  for (level = 0; level < limits.depth; level++) {
    if (level > 0) hooks.onProgress?.(progress());
    const from = levelStart[level];
    const to = levelStart[level + 1];
    // A small level (a few costly states: KVM_RUNs, races) is still split across the workers.
    const batch = Math.max(1, Math.min(BATCH, Math.ceil((to - from) / (4 * (limits.workers ?? 0) || 1))));
    // Batches are sent ahead (workers stay busy) and their results taken strictly in order.
    const pending: Promise<Expanded>[] = [];
    const ahead = Math.max(2, 4 * (limits.workers ?? 0));
    let sent = from;
    const send = () => {
      const end = Math.min(sent + batch, to);
      pending.push(expanders.expand(pathsOf(sent, end, level), level, end - sent));
      sent = end;
    };
    for (let b = from; b < to; b += batch) {
      while (sent < to && pending.length < ahead) send();
      const r = await pending.shift()!;
      const states = r.violation ? r.violation.state : r.counts.length;
      let f = 0;
      for (let s = 0; s < states; s++) {
        for (let j = 0; j < r.counts[s]; j++, f++) {
          const fp = r.fingerprints[f];
          if (!seen.has(fp)) {
            seen.add(fp);
            if (expands(fp, level + 1)) {
              add(b + s, j);
              hooks.onNode?.(fp);
            }
          }
        }
        transitions += r.counts[s];
      }
      levelDone = b + states - from;
      if (r.violation) {
        // Transitions judged before the violating one, in its state.
        transitions += r.fingerprints.length - f + 1;
        await Promise.allSettled(pending);
        return end({ violation: { ops: r.violation.ops, failure: r.violation.failure } });
      }
      ({ heapUsed: heapBytes, rss: rssBytes } = process.memoryUsage());
      const stop: StopReason | undefined =
        limits.maxStates !== undefined && seen.size >= limits.maxStates ? 'max-states' : limits.maxBytes !== undefined && rssBytes >= limits.maxBytes ? 'max-memory' : hooks.shouldStop?.() ? 'interrupted' : undefined;
      if (stop) {
        await Promise.allSettled(pending);
        return end({ stopped: stop });
      }
      if (performance.now() - lastBeat >= everyMs) {
        // On this thread, let signals and timers in: Ctrl-C sets the flag shouldStop reads.
        await new Promise((r) => setImmediate(r));
        lastBeat = performance.now();
        hooks.onProgress?.(progress());
      }
    }
    levelStart.push(nodes);
    depthCompleted = level + 1;
    levelDone = 0;
  }
  level = limits.depth - 1;
  return end({});
}
