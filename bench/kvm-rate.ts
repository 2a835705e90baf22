// One op mix's checked steps per CPU-second, for kvmBench (bench/kvm.ts), in a process of its own:
//   node --import tsx bench/kvm-rate.ts kvm|no-kvm
// WARM_WALKS walks warm the JIT up uncounted; the figure printed is over the next WALKS walks, each
// a different seed, as a fuzz worker runs them.

import { runSeededWalk } from '../src/check/seeded.ts';
import { DEFAULT_WEIGHTS, KVM_WEIGHTS } from '../src/generators/choose.ts';
import { cpuSeconds } from './cpu.ts';

const WARM_WALKS = 100;
const WALKS = 400;

const mix = process.argv[2];
if (mix !== 'kvm' && mix !== 'no-kvm') {
  console.error('usage: kvm-rate.ts kvm|no-kvm');
  process.exit(2);
}
const weights = mix === 'kvm' ? KVM_WEIGHTS : DEFAULT_WEIGHTS;
const walk = (seed: string) => runSeededWalk({ geometry: 'small', cpus: 2, profile: 'fixed' }, seed, 60, weights).ops.length;

for (let i = 0; i < WARM_WALKS; i++) walk(`bench-kvm-warm-${i}`);
const start = cpuSeconds();
let steps = 0;
for (let i = 0; i < WALKS; i++) steps += walk(`bench-kvm-${i}`);
console.log((steps / (cpuSeconds() - start)).toFixed(0));
