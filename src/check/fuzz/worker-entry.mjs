// Worker threads do not inherit the main thread's tsx hooks (and `--import tsx` in a worker's
// execArgv does not apply to its entry module on Node 20), so each worker registers tsx itself.
import { register } from 'tsx/esm/api';

register();
await import('./worker.ts');
