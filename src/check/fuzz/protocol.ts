// What the main thread hands a fuzz worker and what the worker reports back. Everything here
// crosses a worker_threads boundary, so it is plain structured-clone data.

import type { Op } from '../../model/ops.ts';
import type { Config } from '../../model/system.ts';
import type { CheckMode } from '../../invariants/index.ts';
import type { OptionName, RootCause } from '../triage.ts';

export interface WalkTask {
  readonly config: Config;
  readonly base: string;
  readonly shard: number;
  readonly worker: number;
  /** Ops per walk. */
  readonly steps: number;
  /** Walks to run; without it, walks go on until the time budget or a stop. */
  readonly walks?: number;
  readonly seconds?: number;
  /** The kill matrix needs only the first violation. */
  readonly firstViolationOnly: boolean;
  /** How often to report counts while walking. */
  readonly statsEveryMs: number;
  /**
   * Walk on past violations that triage explains: turn the fix on and re-run the walk from its seed.
   * `known` holds the (invariant, root cause) keys of the known corpus (see triage.ts causeKey).
   */
  readonly keepGoing?: { readonly known: readonly string[] };
  /** How walks judge their states (RunOptions.check). */
  readonly check?: CheckMode;
}

/** Op kind -> outcome ('ok' or an errno name) -> how many times. */
export type Coverage = Record<string, Record<string, number>>;

export interface WalkStats {
  readonly walks: number;
  /** Ops run by walks (not by shrinking). */
  readonly steps: number;
  /** Violations not shrunk: their (invariant, root cause) had been shrunk often enough in this worker. */
  readonly repeats: number;
  /** Walks stopped between two steps because the time budget ran out (at most one per worker). */
  readonly cutShort: number;
  readonly seconds: number;
  readonly coverage: Coverage;
}

export interface FoundViolation {
  readonly walkIndex: number;
  readonly walkSeed: string;
  readonly invariant: string;
  readonly message: string;
  /** Shrunk: ddmin, then argument shrinking. */
  readonly ops: readonly Op[];
  /** Ops in the walk up to the failing step, before shrinking. */
  readonly rawLength: number;
  readonly argsSimplified: number;
  /** Walks this worker ran, this one included, and its seconds until the violation (before shrinking). */
  readonly walks: number;
  readonly seconds: number;
  /** Fixes --keep-going had turned on in this walk before it hit the violation: the file's config carries them. */
  readonly fixes: readonly OptionName[];
  /** triageOps of the shrunk ops in that configuration. */
  readonly causes: readonly RootCause[];
  /** failingFunction of the shrunk ops. */
  readonly fn: string;
}

export type WorkerEvent =
  | { readonly type: 'stats'; readonly stats: WalkStats }
  | { readonly type: 'violation'; readonly violation: FoundViolation }
  /** The model threw: a bug in the checker itself, reported with the walk that triggers it. */
  | { readonly type: 'crash'; readonly walkSeed?: string; readonly message: string }
  | { readonly type: 'done'; readonly stats: WalkStats };
