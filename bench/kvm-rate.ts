// One op mix's checked steps per CPU-second, for kvmBench (bench/kvm.ts), in a process of its own:
//   node --import tsx bench/kvm-rate.ts kvm|no-kvm [budget CPU-seconds]
// The same seeded walks run round after round: the first two rounds warm the JIT up and are not
// counted; the figure printed is the median of the rounds after them.

import { runSeededWalk } from '../src/check/seeded.ts';
import { DEFAULT_WEIGHTS, KVM_WEIGHTS } from '../src/generators/choose.ts';
import { cpuSeconds } from './cpu.ts';

const [mix, budget = '2.5'] = process.argv.slice(2);
if (mix !== 'kvm' && mix !== 'no-kvm') {
  console.error('usage: kvm-rate.ts kvm|no-kvm [budget]');
  process.exit(2);
}
const weights = mix === 'kvm' ? KVM_WEIGHTS : DEFAULT_WEIGHTS;
const WALKS = 100;
const ROUNDS = 2 + 3;

/** One round over the walks: steps per CPU-second. */
function round(): number {
  const start = cpuSeconds();
  let steps = 0;
  for (let i = 0; i < WALKS; i++) steps += runSeededWalk({ geometry: 'small', cpus: 2, profile: 'fixed' }, `bench-kvm-${i}`, 60, weights).ops.length;
  return steps / (cpuSeconds() - start);
}

const start = cpuSeconds();
const rates: number[] = [];
for (let r = 0; r < ROUNDS && (r < 3 || cpuSeconds() - start < Number(budget) * 2); r++) rates.push(round());
const counted = rates.slice(2).sort((a, b) => a - b);
console.log(counted[counted.length >> 1].toFixed(0));
