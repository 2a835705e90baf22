// Worker threads do not inherit the main thread's tsx hooks: each registers tsx itself (as the
// fuzz workers do, src/check/fuzz/worker-entry.mjs).
import { register } from 'tsx/esm/api';

register();
await import('./worker.ts');
