// A fuzz worker thread: runs the WalkTasks the pool sends it, one at a time, until it is sent
// `null`. The pool asks it to stop early through a shared flag, because the walk loop is
// synchronous and never yields to receive a message.

import { parentPort, workerData } from 'node:worker_threads';
import type { WalkTask, WorkerEvent } from './protocol.ts';
import { runWalks } from './walker.ts';

export interface WorkerInput {
  /** Int32Array[0] !== 0 asks every worker to finish its current walk and stop. */
  readonly stop: SharedArrayBuffer;
}

const port = parentPort!;
const flag = new Int32Array((workerData as WorkerInput).stop);
port.on('message', (task: WalkTask | null) => {
  if (task === null) port.close();
  else runWalks(task, () => Atomics.load(flag, 0) !== 0, (e: WorkerEvent) => port.postMessage(e));
});
