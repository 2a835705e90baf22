// Runs WalkTasks on at most `concurrency` worker threads, relaying their events. Fuzz runs one task
// per worker; the kill matrix queues one task per mutant, and a worker takes the next task when it
// finishes one, so the thread start-up (tsx, the model) is paid once per worker, not per task.

import { Worker } from 'node:worker_threads';
import type { WalkTask, WorkerEvent } from './protocol.ts';
import type { WorkerInput } from './worker.ts';

export interface Pool {
  /** Workers finish the walk they are on (shrinking included) and stop; queued tasks never start. */
  stop(): void;
  /** Ends every worker at once, losing the walks in flight. */
  kill(): Promise<void>;
  /** Settles when every worker has exited. */
  readonly done: Promise<void>;
}

const ENTRY = new URL('./worker-entry.mjs', import.meta.url);

export function startPool(tasks: readonly WalkTask[], concurrency: number, onEvent: (task: number, e: WorkerEvent) => void): Pool {
  const stop = new SharedArrayBuffer(4);
  const flag = new Int32Array(stop);
  const live = new Set<Worker>();
  let next = 0;
  let killed = false;
  let settle!: () => void;
  const done = new Promise<void>((resolve) => (settle = resolve));
  const stopped = () => Atomics.load(flag, 0) !== 0;

  const spawnWorker = (): void => {
    const w = new Worker(ENTRY, { workerData: { stop } satisfies WorkerInput });
    live.add(w);
    let current: number | undefined;
    const assign = () => {
      current = next < tasks.length && !stopped() ? next++ : undefined;
      w.postMessage(current === undefined ? null : tasks[current]);
    };
    w.on('message', (e: WorkerEvent) => {
      onEvent(current!, e);
      if (e.type === 'done' || e.type === 'crash') assign();
    });
    // A worker that dies without saying so (it could not load, or ran out of memory) is a crash of its task.
    w.on('error', (err) => {
      if (current !== undefined) onEvent(current, { type: 'crash', message: err.stack ?? err.message });
      current = undefined;
    });
    w.on('exit', (code) => {
      live.delete(w);
      if (current !== undefined && !killed) onEvent(current, { type: 'crash', message: `worker exited with code ${code}` });
      if (!killed && next < tasks.length && !stopped()) spawnWorker();
      else if (live.size === 0) settle();
    });
    assign();
  };
  for (let i = 0; i < Math.min(concurrency, tasks.length); i++) spawnWorker();
  if (tasks.length === 0) settle();

  return {
    stop: () => Atomics.store(flag, 0, 1),
    kill: async () => {
      killed = true;
      Atomics.store(flag, 0, 1);
      await Promise.all([...live].map((w) => w.terminate()));
    },
    done,
  };
}
