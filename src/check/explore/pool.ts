// Worker threads expanding batches for the search: each worker holds its own Expander (its own
// boot state and path cache) and takes the next batch when it is free; results come back as
// promises the search awaits in batch order.

import { Worker } from 'node:worker_threads';
import type { RunOptions } from '../run.ts';
import type { Config } from '../../model/system.ts';
import type { Scope } from './scope.ts';
import type { Expanded } from './expand.ts';
import type { Expanders } from './search.ts';

const ENTRY = new URL('./worker-entry.mjs', import.meta.url);

export interface ExpandInit {
  readonly config: Config;
  readonly scope: Scope;
  /** Only the serialisable run options (stopOn, microSteps) reach a worker. */
  readonly run: Pick<RunOptions, 'stopOn' | 'microSteps'>;
}

export interface ExpandRequest {
  readonly id: number;
  readonly paths: Int32Array;
  readonly depth: number;
  readonly states: number;
}

export type ExpandReply = { readonly id: number; readonly result: Expanded } | { readonly id: number; readonly error: string };

export function startExpanders(config: Config, scope: Scope, run: RunOptions, workers: number): Expanders {
  const init: ExpandInit = { config, scope, run: { ...(run.stopOn ? { stopOn: run.stopOn } : {}), ...(run.microSteps === undefined ? {} : { microSteps: run.microSteps }) } };
  const queue: ExpandRequest[] = [];
  const waiting = new Map<number, { resolve: (e: Expanded) => void; reject: (e: Error) => void }>();
  const idle: Worker[] = [];
  let nextId = 0;
  const dispatch = () => {
    while (idle.length && queue.length) {
      const req = queue.shift()!;
      idle.pop()!.postMessage(req, [req.paths.buffer as ArrayBuffer]);
    }
  };
  const pool = Array.from({ length: workers }, () => {
    const w = new Worker(ENTRY, { workerData: init });
    w.on('message', (m: ExpandReply) => {
      const p = waiting.get(m.id)!;
      waiting.delete(m.id);
      if ('error' in m) p.reject(new Error(m.error));
      else p.resolve(m.result);
      idle.push(w);
      dispatch();
    });
    w.on('error', (e) => {
      for (const p of waiting.values()) p.reject(e);
      waiting.clear();
    });
    idle.push(w);
    return w;
  });
  return {
    expand: (paths, depth, states) =>
      new Promise((resolve, reject) => {
        const id = nextId++;
        waiting.set(id, { resolve, reject });
        queue.push({ id, paths, depth, states });
        dispatch();
      }),
    close: async () => {
      await Promise.all(pool.map((w) => w.terminate()));
    },
  };
}
