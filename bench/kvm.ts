// KVM's rows of `npm run bench` (issue 12): checked steps per CPU-second of seeded 60-step walks
// with KVM's op mix (KVM_WEIGHTS: VMs, vCPUs, memslots, buses, KVM_RUN) against walks without any
// KVM op (DEFAULT_WEIGHTS). The goal: KVM walks at no less than half the rate.

import { runSeededWalk } from '../src/check/seeded.ts';
import { DEFAULT_WEIGHTS, KVM_WEIGHTS, type Weights } from '../src/generators/choose.ts';
import type { Config } from '../src/model/system.ts';

const WALK_STEPS = 60;

/** Seeded walks of `weights`, every invariant at every step and micro-step, for `budget` CPU-seconds. */
function checkedRate(config: Config, weights: Weights, budget: number): number {
  const start = process.cpuUsage();
  const spent = () => {
    const u = process.cpuUsage(start);
    return (u.user + u.system) / 1e6;
  };
  let steps = 0;
  for (let i = 0; i === 0 || spent() < budget; i++) steps += runSeededWalk(config, `bench-kvm-${i}`, WALK_STEPS, weights).ops.length;
  return steps / spent();
}

/** Prints the two rows and returns the ratio of KVM walks to walks without KVM. */
export function kvmBench(budget = Number(process.env.BENCH_BUDGET ?? 2.5)): number {
  const config: Config = { geometry: 'small', cpus: 2, profile: 'fixed' };
  const without = checkedRate(config, DEFAULT_WEIGHTS, budget);
  const kvm = checkedRate(config, KVM_WEIGHTS, budget);
  const ratio = kvm / without;
  console.log(`${'small 60-step, no KVM op, checked'.padEnd(40)} ${without.toFixed(0).padStart(8)}`);
  console.log(`${'small 60-step, KVM op mix (vs no KVM)'.padEnd(40)} ${kvm.toFixed(0).padStart(8)} ${`${ratio.toFixed(2)}x`.padStart(8)}`);
  return ratio;
}
