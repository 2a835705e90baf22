// KVM's rows of `npm run bench` (issue 12): checked steps per CPU-second of seeded 60-step walks
// with KVM's op mix (KVM_WEIGHTS: VMs, vCPUs, memslots, buses, KVM_RUN) against walks without any
// KVM op (DEFAULT_WEIGHTS); the goal is KVM walks at no less than half the rate. And KVM's tables of
// `npm run coverage`: exit reason x outcome, vcpu_run micro-step x event kind.
//
// The two rates swing by 10-15% from one process to the next on this machine, so they are taken in
// alternating pairs of processes (see kvmBench).

import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { runSeededWalk } from '../src/check/seeded.ts';
import { EXIT_OUTCOMES, EXIT_REASONS } from '../src/model/kvm/run.ts';
import { INTR_KINDS } from '../src/model/x86/entry.ts';
import { type InterruptCoverage, measure } from '../src/check/coverage.ts';
import { median } from './cpu.ts';

const WALK_STEPS = 60;
const RATE = fileURLToPath(new URL('./kvm-rate.ts', import.meta.url));

/**
 * Checked steps per CPU-second of one op mix, measured as fuzz runs it: in a process of its own
 * (a worker runs one mix; in one process each mix would run on code the JIT shaped for the other),
 * over 400 walks after 100 that warm it up (see kvm-rate.ts).
 */
function rateInChild(mix: 'kvm' | 'no-kvm'): number {
  // --single-threaded: V8's concurrent GC threads would bill this process's CPU clock for work done
  // beside it, as much as the swing between runs; with them off the figure is the mix's own cost.
  const r = spawnSync(process.execPath, ['--single-threaded', '--import', 'tsx', RATE, mix], { encoding: 'utf8' });
  const rate = Number(r.stdout.trim());
  if (r.status !== 0 || !(rate > 0)) throw new Error(`bench/kvm-rate.ts ${mix} failed: ${r.stderr || r.stdout}`);
  return rate;
}

/** Alternating pairs of processes: a process's rate swings by 10-15% from one run to the next on this machine. */
const PAIRS = 5;

/**
 * Prints the two rows (median rates over PAIRS processes each, with their spread) and returns the
 * ratio of KVM walks to walks without KVM: the median of the pairs' ratios, each pair run back to
 * back so that both of its processes meet the machine in the same mood.
 */
export function kvmBench(): number {
  const rates: Record<'kvm' | 'no-kvm', number[]> = { kvm: [], 'no-kvm': [] };
  const ratios: number[] = [];
  for (let i = 0; i < PAIRS; i++) {
    for (const mix of ['no-kvm', 'kvm'] as const) rates[mix].push(rateInChild(mix));
    ratios.push(rates.kvm[i] / rates['no-kvm'][i]);
  }
  const ratio = median(ratios);
  const spread = (xs: number[], digits = 0) => `(${Math.min(...xs).toFixed(digits)}-${Math.max(...xs).toFixed(digits)})`;
  console.log(`${'small 60-step, no KVM op, checked'.padEnd(40)} ${median(rates['no-kvm']).toFixed(0).padStart(8)} ${''.padStart(8)}  ${spread(rates['no-kvm'])}`);
  console.log(`${'small 60-step, KVM op mix (vs no KVM)'.padEnd(40)} ${median(rates.kvm).toFixed(0).padStart(8)} ${`${ratio.toFixed(2)}x`.padStart(8)}  ${spread(rates.kvm)}, ratio ${spread(ratios, 2)}`);
  return ratio;
}

/** Exit reason x outcome: how often each exit left the guest's isolation how (the trace's "exit" notes). */
function exitTable(counts: Map<string, number>): void {
  console.log(`\n  ${'exit reason'.padEnd(20)}${EXIT_OUTCOMES.map((o) => o.padStart(20)).join('')}`);
  for (const reason of EXIT_REASONS) console.log(`  ${reason.padEnd(20)}${EXIT_OUTCOMES.map((o) => String(counts.get(`${reason}: ${o}`) ?? 0).padStart(20)).join('')}`);
}

/** vcpu_run micro-step x event kind: ran (the handler ran there), held (it arrived while the CPU could not take it), - (never tried). */
function pointTable(c: InterruptCoverage): void {
  const points = [...c.points].filter((p) => p.startsWith('vcpu_run@') || p.startsWith('schedule@kvm_'));
  console.log(`\n  ${'micro-step'.padEnd(56)}${INTR_KINDS.map((k) => k.padStart(10)).join('')}`);
  for (const p of points) {
    const cell = (k: string) => (c.delivered.has(`${p}:${k}`) ? 'ran' : c.heldOff.has(`${p}:${k}`) ? 'held' : '-');
    console.log(`  ${p.padEnd(56)}${INTR_KINDS.map((k) => cell(k).padStart(10)).join('')}`);
  }
}

/** The closing note's KVM coverage: seeded walks of the fuzz op mix on `fixed`. */
export function kvmCoverage(walks: number): void {
  const counts = new Map<string, number>();
  const exit = /^vCPU \d+ exit (.+)$/;
  const c = measure({ geometry: 'small', cpus: 2, profile: 'fixed' }, Array.from({ length: walks }, (_, i) => `coverage/${i}`), (config, seed, opts) =>
    runSeededWalk(config, seed, WALK_STEPS, undefined, {
      ...opts,
      onStep: (sys, rec, i) => {
        opts.onStep?.(sys, rec, i);
        for (const l of rec.outcome.log) {
          const m = exit.exec(l.text);
          if (m) counts.set(m[1], (counts.get(m[1]) ?? 0) + 1);
        }
      },
    }),
  );
  console.log(`\nKVM on fixed, ${walks} seeded walks of ${WALK_STEPS} ops`);
  exitTable(counts);
  pointTable(c);
}
