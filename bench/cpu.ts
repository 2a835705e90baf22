// What every bench row is measured with: the CPU time of this process (other work on a shared
// machine slows a row less than it would wall time), the median of repeated measurements, and the
// bytes a piece of work allocates.

import { GCProfiler, getHeapStatistics } from 'node:v8';

export function cpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/**
 * The bytes `work` allocates on the JS heap: what the collections during it freed, plus what the
 * heap grew by. V8 keeps no allocation counter; an object freed and re-allocated within one
 * collection cycle is counted once, so this is a lower bound, close for a long run.
 */
export function allocatedBytes(work: () => void): number {
  const profiler = new GCProfiler();
  const before = getHeapStatistics().used_heap_size;
  profiler.start();
  work();
  const { statistics } = profiler.stop();
  const freed = statistics.reduce((n, s) => n + Math.max(0, s.beforeGC.heapStatistics.usedHeapSize - s.afterGC.heapStatistics.usedHeapSize), 0);
  return freed + getHeapStatistics().used_heap_size - before;
}
