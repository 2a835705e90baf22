// Throughput of the checker: operations per second (walks of 40 ops; rfc-v2 walks stop at their first violation) with every invariant checked after every step,
// per geometry and profile. Figures, not pass/fail: run with `npm run bench`.

import { runWith } from '../src/check/run.ts';
import { resolveOp } from '../src/generators/choose.ts';
import { seededChoices } from '../src/generators/walk.ts';
import type { Config } from '../src/model/system.ts';

function bench(config: Config, walks: number, length: number): number {
  const t0 = performance.now();
  let steps = 0;
  for (let w = 0; w < walks; w++) {
    const next = seededChoices(`bench-${w}`);
    const r = runWith(config, length, (sys) => resolveOp(sys, next()));
    steps += r.ops.length;
  }
  return steps / ((performance.now() - t0) / 1000);
}

const rows: [string, Config, number][] = [
  ['small/fixed', { geometry: 'small', cpus: 2, profile: 'fixed' }, 200],
  ['small/rfc-v2', { geometry: 'small', cpus: 2, profile: 'rfc-v2' }, 200],
  ['small/v3', { geometry: 'small', cpus: 2, profile: 'v3', options: { resumeFlushesGlobal: true, exitDeactivatesFirst: true } }, 200],
  ['small/fixed/4cpu', { geometry: 'small', cpus: 4, profile: 'fixed' }, 200],
  ['real/fixed', { geometry: 'real', cpus: 2, profile: 'fixed' }, 20],
];
bench(rows[0][1], 20, 40); // warm-up: the JIT, not the model
let base = 0;
for (const [name, config, walks] of rows) {
  const rate = bench(config, walks, 40);
  base ||= rate;
  console.log(`${name.padEnd(14)} ${rate.toFixed(0).padStart(7)} steps/s  (${(rate / base).toFixed(2)}x small/fixed)`);
}
