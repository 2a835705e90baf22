// A fuzz run on the main thread: one task per worker, each a disjoint series of walk seeds;
// findings are deduplicated and saved as they arrive, so stopping early loses nothing found.

import type { Config } from '../../model/system.ts';
import type { CheckMode } from '../../invariants/index.ts';
import { walkSeed } from '../seeded.ts';
import { startPool } from './pool.ts';
import { type Finding, FindingStore, type KnownCorpus } from './store.ts';
import { Tally } from './progress.ts';
import type { WalkStats, WalkTask } from './protocol.ts';

export interface Shard {
  /** 1-based, as in `--shard 2/4`. */
  readonly index: number;
  readonly count: number;
}

export interface FuzzOptions {
  readonly config: Config;
  readonly base: string;
  readonly shard: Shard;
  readonly workers: number;
  readonly steps: number;
  readonly seconds?: number;
  readonly runs?: number;
  readonly outDir: string;
  readonly known: KnownCorpus;
  readonly statsEveryMs: number;
  /** Walk on past violations triage explains (see WalkTask.keepGoing). */
  readonly keepGoing?: boolean;
  /** How walks judge their states (RunOptions.check). */
  readonly check?: CheckMode;
}

export interface WorkerWalks {
  readonly worker: number;
  readonly walks: number;
  /** The walk seeds this worker ran: `<first>` .. `<last>`, consecutive indices. */
  readonly first?: string;
  readonly last?: string;
}

export interface Crash {
  readonly walkSeed?: string;
  readonly message: string;
}

/** The counts of all workers together, and what they found. */
export interface FuzzResult extends WalkStats {
  readonly findings: readonly Finding[];
  readonly crashes: readonly Crash[];
  readonly perWorker: readonly WorkerWalks[];
  /** Stopped by a signal before its budget ran out. */
  readonly interrupted: boolean;
}

export interface FuzzHooks {
  onFinding(f: Finding, firstThisRun: boolean): void;
  onCrash(c: Crash): void;
}

export interface FuzzRun {
  readonly tally: Tally;
  readonly store: FindingStore;
  elapsed(): number;
  /** Workers finish their walk in progress (and its shrinking), then the run ends. */
  stop(): void;
  /** Ends the workers now; what was already reported is kept. */
  kill(): Promise<void>;
  readonly result: Promise<FuzzResult>;
}

/** `runs` walks shared out as evenly as possible; a worker with none is not started. */
function walksPerWorker(runs: number | undefined, workers: number): (number | undefined)[] {
  if (runs === undefined) return Array.from({ length: workers }, () => undefined);
  return Array.from({ length: workers }, (_, w) => Math.floor(runs / workers) + (w < runs % workers ? 1 : 0)).filter((n) => n > 0);
}

export function startFuzz(o: FuzzOptions, hooks: FuzzHooks): FuzzRun {
  const t0 = performance.now();
  const elapsed = () => (performance.now() - t0) / 1000;
  const tally = new Tally();
  const store = new FindingStore(o.config, o.outDir, o.known);
  const crashes: Crash[] = [];
  let interrupted = false;
  const tasks: WalkTask[] = walksPerWorker(o.runs, o.workers).map((walks, worker) => ({
    config: o.config,
    base: o.base,
    shard: o.shard.index,
    worker,
    steps: o.steps,
    walks,
    seconds: o.seconds,
    firstViolationOnly: false,
    statsEveryMs: o.statsEveryMs,
    ...(o.keepGoing ? { keepGoing: { known: [...o.known.files.keys()] } } : {}),
    ...(o.check ? { check: o.check } : {}),
  }));
  const pool = startPool(tasks, tasks.length, (worker, e) => {
    if (e.type === 'stats' || e.type === 'done') tally.update(worker, e.stats);
    else if (e.type === 'violation') {
      const { finding, firstThisRun } = store.add(worker, e.violation);
      hooks.onFinding(finding, firstThisRun);
    } else {
      const crash = { walkSeed: e.walkSeed, message: e.message };
      crashes.push(crash);
      hooks.onCrash(crash);
      // A model that throws is broken for every later walk too: end the run, keep what was found.
      pool.stop();
    }
  });
  const result = pool.done.then((): FuzzResult => {
    const perWorker = tasks.map(({ worker }) => {
      const walks = tally.walksOf(worker);
      const seed = (i: number) => walkSeed(o.base, o.shard.index, worker, i);
      return { worker, walks, ...(walks ? { first: seed(0), last: seed(walks - 1) } : {}) };
    });
    return { walks: tally.walks, steps: tally.steps, seconds: elapsed(), coverage: tally.coverage(), repeats: tally.repeats, cutShort: tally.cutShort, findings: store.list(), crashes, perWorker, interrupted };
  });
  return {
    tally,
    store,
    elapsed,
    stop: () => {
      interrupted = true;
      pool.stop();
    },
    kill: () => {
      interrupted = true;
      return pool.kill();
    },
    result,
  };
}
