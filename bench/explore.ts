// Exhaustive search throughput: distinct states per second and bytes per state of `asi-check
// explore` on `fixed`, 2 CPUs, the default scope, on this thread (workers would measure the
// machine, not the search), for a CPU budget. States per CPU-second, as the other bench rows, so
// that other work on a shared machine slows the figure less than wall time would.

import { explore } from '../src/check/explore/search.ts';
import { SMALL_SCOPE } from '../src/check/explore/scope.ts';

function cpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

export interface ExploreBench {
  readonly states: number;
  readonly transitions: number;
  readonly depthCompleted: number;
  readonly cpuSeconds: number;
  readonly statesPerSecond: number;
  readonly transitionsPerSecond: number;
  /** Heap growth over the search, per distinct state: the fingerprint set and the node arrays, and what garbage was not yet collected. */
  readonly bytesPerState: number;
}

export async function benchExplore(budgetSeconds: number): Promise<ExploreBench> {
  const heapBefore = process.memoryUsage().heapUsed;
  const start = cpuSeconds();
  const r = await explore({ geometry: 'small', cpus: 2, profile: 'fixed' }, SMALL_SCOPE, { depth: 64 }, { shouldStop: () => cpuSeconds() - start >= budgetSeconds });
  const cpu = cpuSeconds() - start;
  return {
    states: r.states,
    transitions: r.transitions,
    depthCompleted: r.depthCompleted,
    cpuSeconds: cpu,
    statesPerSecond: Math.round(r.states / cpu),
    transitionsPerSecond: Math.round(r.transitions / cpu),
    bytesPerState: Math.max(0, Math.round((r.heapBytes - heapBefore) / r.states)),
  };
}

/** The bench rows: states/s, transitions/s, bytes per state. */
export async function printExploreBench(budgetSeconds: number): Promise<void> {
  const b = await benchExplore(budgetSeconds);
  console.log(`${'explore fixed, small scope: states/s'.padEnd(40)} ${String(b.statesPerSecond).padStart(8)}  (${b.states} distinct states, proved to depth ${b.depthCompleted}, ${b.cpuSeconds.toFixed(1)} CPU-s)`);
  console.log(`${'explore transitions/s'.padEnd(40)} ${String(b.transitionsPerSecond).padStart(8)}`);
  console.log(`${'explore bytes per state'.padEnd(40)} ${String(b.bytesPerState).padStart(8)}`);
}
