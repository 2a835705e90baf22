// Expanding states: rebuild a state from its path (op indices into each state's alphabet) and judge
// every op of the alphabet from it. Shared by the search's own thread and its workers, so both
// take the same steps and give the same fingerprints.

import { type Failure, type RunOptions, checkedStep, checkerFor } from '../run.ts';
import { createSystem, step } from '../../model/step.ts';
import { type Config, type System, cloneSystem } from '../../model/system.ts';
import type { Op } from '../../model/ops.ts';
import { type Scope, alphabet, preempts } from './scope.ts';
import { fingerprint } from './encode.ts';

/**
 * A search node's key: its state's fingerprint and, under a preemption bound, the preemptions its
 * path has left, since what a node may do next depends on both (a state reached with fewer switches
 * is not the same node as one reached with more: deduplicating them would be unsound).
 */
export function nodeKey(sys: System, scope: Scope, left: number): string {
  return scope.preemptions > 0 ? `${fingerprint(sys)}|${left}` : fingerprint(sys);
}

/** What expanding a batch of states gave: each state's successors' fingerprints, in alphabet order. */
export interface Expanded {
  /** Successors per state. */
  readonly counts: number[];
  /** Successors' node keys (nodeKey), in alphabet order. */
  readonly fingerprints: string[];
  /** The first violating transition, in state then alphabet order; the batch ends there. */
  readonly violation?: { readonly state: number; readonly ops: readonly Op[]; readonly failure: Failure };
}

export class Expander {
  readonly root: System;
  /** States along the last path rebuilt: stack[k] after its first k ops, with left[k] preemptions left. */
  private readonly stack: System[];
  private readonly left: number[];
  private readonly stackPath: number[] = [];

  constructor(
    readonly config: Config,
    readonly scope: Scope,
    readonly run: RunOptions,
  ) {
    this.root = createSystem(config);
    this.stack = [this.root];
    this.left = [scope.preemptions];
  }

  /** The ops offered after the first k ops of the last path rebuilt. */
  private alphabetAt(k: number): Op[] {
    return alphabet(this.stack[k], this.scope, this.left[k]);
  }

  /**
   * The state after `path`, replayed without checks (every step of it was judged when it was first
   * reached); paths come in order, so most of the prefix is the last path's and kept.
   */
  stateOf(path: ArrayLike<number>): System {
    let k = 0;
    while (k < path.length && k < this.stackPath.length && this.stackPath[k] === path[k]) k++;
    for (; k < path.length; k++) {
      const sys = cloneSystem(this.stack[k]);
      const op = this.alphabetAt(k)[path[k]];
      step(sys, op);
      this.stack[k + 1] = sys;
      this.left[k + 1] = this.left[k] - (preempts(op) ? 1 : 0);
      this.stackPath[k] = path[k];
    }
    this.stack.length = path.length + 1;
    this.left.length = path.length + 1;
    this.stackPath.length = path.length;
    return this.stack[path.length];
  }

  opsOf(path: ArrayLike<number>): Op[] {
    const p = Array.from(path);
    this.stateOf(p);
    return p.map((j, k) => this.alphabetAt(k)[j]);
  }

  /** Every transition from each of `states` states, whose paths (`depth` ops each) `paths` holds end to end, judged. */
  expand(paths: Int32Array, depth: number, states: number): Expanded {
    const counts: number[] = [];
    const fingerprints: string[] = [];
    for (let s = 0; s < states; s++) {
      const path = paths.subarray(s * depth, (s + 1) * depth);
      const sys = this.stateOf(path);
      const ops = this.alphabetAt(depth);
      const left = this.left[depth];
      for (let j = 0; j < ops.length; j++) {
        const next = cloneSystem(sys);
        const { failure } = checkedStep(next, ops[j], depth, checkerFor(this.run), this.run);
        if (failure) return { counts, fingerprints, violation: { state: s, ops: [...this.opsOf(path), ops[j]], failure } };
        fingerprints.push(nodeKey(next, this.scope, left - (preempts(ops[j]) ? 1 : 0)));
      }
      counts.push(ops.length);
    }
    return { counts, fingerprints };
  }
}
