// An explore worker: expands the batches it is sent with an Expander of its own.

import { parentPort, workerData } from 'node:worker_threads';
import { Expander } from './expand.ts';
import type { ExpandInit, ExpandReply, ExpandRequest } from './pool.ts';

const init = workerData as ExpandInit;
const expander = new Expander(init.config, init.scope, init.run);
parentPort!.on('message', (req: ExpandRequest) => {
  let reply: ExpandReply;
  try {
    reply = { id: req.id, result: expander.expand(req.paths, req.depth, req.states) };
  } catch (e) {
    reply = { id: req.id, error: (e as Error).stack ?? String(e) };
  }
  parentPort!.postMessage(reply);
});
