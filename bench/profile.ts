// A fuzz-like workload to profile: seeded `fixed` walks, as `fuzz` runs them.
//   node --cpu-prof --cpu-prof-dir=/tmp/prof --import tsx bench/profile.ts [small|real] [walks] [steps] [micro|nomicro]
//   npx tsx bench/hotspots.ts /tmp/prof/*.0.001.cpuprofile   (the main thread; tsx adds a loader thread)

import { runSeededWalk } from '../src/check/seeded.ts';
import type { Geometry } from '../src/model/mm/geometry.ts';

const [geometry = 'small', walks = '200', steps = '60', micro = 'micro'] = process.argv.slice(2);
const t0 = performance.now();
let ran = 0;
for (let w = 0; w < Number(walks); w++) {
  const r = runSeededWalk({ geometry: geometry as Geometry['name'], cpus: 2, profile: 'fixed' }, `profile-${w}`, Number(steps), undefined, { microSteps: micro === 'micro' });
  ran += r.ops.length;
}
const s = (performance.now() - t0) / 1000;
console.log(`${geometry} ${walks}x${steps} ${micro}: ${ran} steps in ${s.toFixed(2)} s = ${(ran / s).toFixed(0)} steps/s`);
