// KVM scenarios shared by test/kvm.test.ts and the KVM entries of the invariant catalogue test: each
// names the fewest design options it needs off (the finding it reproduces) or the mutant it kills.

import { expect } from 'vitest';
import { type RunResult, checkedStep, checkerFor, runOps } from '../src/check/run.ts';
import { INVARIANTS, type Invariant, type Violation } from '../src/invariants/index.ts';
import { type Op, formatOp } from '../src/model/ops.ts';
import { type Config, cloneSystem } from '../src/model/system.ts';
import type { DesignOptions } from '../src/model/options.ts';
import type { MutantName } from '../src/model/mutants.ts';
import { EXIT_REASONS, type ExitReason } from '../src/model/kvm/run.ts';
import { createSystem, step } from '../src/model/step.ts';
import { INTR_KINDS, type IntrKind } from '../src/model/x86/entry.ts';
import { PGT_LEVEL_PTE } from '../src/model/mm/geometry.ts';
import type { Log } from '../src/model/trace.ts';

export function kvmConfig(options: Partial<DesignOptions> = {}, mutant?: MutantName, cpus = 2): Config {
  return { geometry: 'small', cpus, profile: 'fixed', options, ...(mutant ? { mutant } : {}) };
}

/** VM 1 with vCPU 2 (ids are shared by VMs and vCPUs), a memslot and a device on the PIO bus. */
export const ONE_VCPU: Op[] = [
  { op: 'kvm_create_vm' },
  { op: 'kvm_create_vcpu', vm: 1 },
  { op: 'kvm_set_memory_region', vm: 1, slot: 0, pages: 2 },
  { op: 'kvm_io_bus', vm: 1, bus: 1, register: true },
];

export function run(cpu: number, vcpu: number, exits: readonly (typeof EXIT_REASONS)[number][], at?: number, kind: IntrKind = 'nmi'): Extract<Op, { op: 'kvm_run' }> {
  return { op: 'kvm_run', cpu, vcpu, exits, intr: at === undefined ? [] : [{ at, kind }] };
}

/** The index `at` of a vcpu_run micro-step, as the last op of `ops` passes it without events. */
export function pointOf(config: Config, ops: readonly Op[], point: string): number {
  const sys = createSystem(config);
  for (const op of ops.slice(0, -1)) step(sys, op);
  step(sys, ops[ops.length - 1]);
  const points = sys.ghost.visited.filter((v) => v.startsWith('vcpu_run@'));
  const i = points.indexOf(`vcpu_run@${point}`);
  expect(i, `vcpu_run passes ${point}`).toBeGreaterThanOrEqual(0);
  return i;
}

/** F-K1: an NMI between the HOST_CR3 read and vmx_isolation_barrier_begin. */
export function nmiBeforeBarrier(config: Config): Op[] {
  const base = [...ONE_VCPU, run(0, 2, ['cpuid'])];
  const at = pointOf(config, base, 'vmcs_writel(HOST_CR3, __get_current_cr3_fast())');
  return [...ONE_VCPU, run(0, 2, ['cpuid'], at)];
}

/** F40: an NMI inside asi_enter, right after `state = ACTIVE`, ends the session before VM-enter. */
export function nmiInAsiEnter(config: Config): Op[] {
  const base = [...ONE_VCPU, run(0, 2, ['cpuid'])];
  return [...ONE_VCPU, run(0, 2, ['cpuid'], pointOf(config, base, 'state = ACTIVE'))];
}

/** F-K2: kvm_io_bus_unregister_dev cannot allocate the shrunk bus and removes it; the next KVM_RUN remaps it. */
export const NULL_BUS: Op[] = [...ONE_VCPU, run(0, 2, ['io']), { op: 'fail_alloc', after: 0 }, { op: 'kvm_io_bus', vm: 1, bus: 1, register: false }, run(0, 2, ['io'])];

/** F-K3: an allocation failing inside vmx_isolation_init_mapping (the n-th allocation of KVM_CREATE_VCPU; 38 to 73 are). */
export function failInInit(n: number): Op[] {
  return [{ op: 'kvm_create_vm' }, { op: 'fail_alloc', after: n }, { op: 'kvm_create_vcpu', vm: 1 }];
}

/**
 * `host` with `racer` on cpu1 started at the point of its path named `where`: each `at` is tried,
 * and the log says where the racing op ran.
 */
export function racedAt(config: Config, setup: readonly Op[], host: Extract<Op, { op: 'kvm_run' }>, racer: Op, where: string): Op {
  for (let at = 0; at < 64; at++) {
    const sys = createSystem(config);
    for (const op of setup) step(sys, op);
    const op: Op = { ...host, race: { at, op: racer, ...('cpu' in racer ? {} : { on: 1 }) } };
    if (step(sys, op).log.some((e) => e.text.endsWith(`runs at vcpu_run@${where}`))) return op;
  }
  throw new Error(`no racing op runs at ${where}`);
}

/** The PIO bus changed since vCPU 2's last entry, so its next vcpu_isolation_enter reads kvm->buses[1] and remaps it. */
const BUS_CHANGED: Op[] = [...ONE_VCPU, run(0, 2, ['cpuid']), { op: 'kvm_io_bus', vm: 1, bus: 1, register: true }];

/** F38: cpu1 replaces the PIO bus and frees the old one between patch 26's read of kvm->buses[1] and its bus->dev_count. */
export function racedBus(config: Config): Op[] {
  return [...BUS_CHANGED, racedAt(config, BUS_CHANGED, run(0, 2, ['cpuid']), { op: 'kvm_io_bus', vm: 1, bus: 1, register: false }, 'vcpu_isolation_enter reads kvm->buses[1]')];
}

/** F38: cpu1 creates a memslot (a new kvm->memslots[0], the old one kvfree'd) between patch 26's read of it and asi_remap. */
export function racedMemslots(config: Config): Op[] {
  const changed = [...ONE_VCPU, run(0, 2, ['cpuid']), { op: 'kvm_set_memory_region', vm: 1, slot: 1, pages: 1 } as Op];
  return [...changed, racedAt(config, changed, run(0, 2, ['cpuid']), { op: 'kvm_set_memory_region', vm: 1, slot: 2, pages: 1 }, 'vcpu_isolation_enter reads kvm->memslots[0]')];
}

/** Slab caches (5.2's default, said explicitly) on the real geometry. */
export function slabConfig(options: Partial<DesignOptions> = {}): Config {
  return { geometry: 'real', cpus: 2, profile: 'fixed', options, kernel: { slab: true } };
}

/**
 * F35 (found by `fuzz --profile fixed --seed kvmfix1`): memslots[0] replaced twice between runs; the
 * second array is vmalloc'd at the address of the first, which the vCPU remapped and KVM freed.
 */
export const REUSED_MEMSLOTS: Op[] = [
  { op: 'kvm_create_vm' },
  { op: 'kvm_create_vcpu', vm: 1 },
  run(0, 2, ['cpuid']),
  { op: 'kvm_set_memory_region', vm: 1, slot: 0, pages: 1 },
  { op: 'kvm_set_memory_region', vm: 1, slot: 1, pages: 1 },
  run(0, 2, ['cpuid']),
];

/** F33: two VMs with a vCPU each: the second vCPU's kvm_lapic lands on the first one's kmalloc-512 page. */
export const TWO_LAPICS: Op[] = [{ op: 'kvm_create_vm' }, { op: 'kvm_create_vcpu', vm: 1 }, { op: 'kvm_create_vm' }, { op: 'kvm_create_vcpu', vm: 3 }];

/** F37: a vCPU's ASI maps its VM's srcu_data page; the next VM's srcu_data is put on that page. */
export const TWO_SRCU: Op[] = [{ op: 'kvm_create_vm' }, { op: 'kvm_create_vcpu', vm: 1 }, { op: 'kvm_create_vm' }];

/** F34: a KVM_RUN maps the vCPU thread's task_struct (ASI_MAP_CURRENT_TASK); a boot task's is on its slab pages. */
export const CURRENT_TASK: Op[] = [{ op: 'kvm_create_vm' }, { op: 'kvm_create_vcpu', vm: 1 }, run(0, 2, ['cpuid'])];

/**
 * F36: an ASI maps a kmalloc-64 object; the next kmalloc-64 object, a secret, is put on its slab
 * page. The object's address is read from the booted state, as a caller gets it from kmalloc.
 */
export function slabNeighbour(): Op[] {
  const sys = createSystem(slabConfig());
  const ops: Op[] = [{ op: 'asi_create', flags: 0 }, { op: 'kmalloc', size: 0x40, sensitive: false }];
  for (const op of ops) step(sys, op);
  const obj = [...sys.kernel.kmallocs.values()].at(-1)!;
  return [...ops, { op: 'asi_map', asi: 1, ptr: obj.va, size: 0x40, level: PGT_LEVEL_PTE }, { op: 'kmalloc', size: 0x40, sensitive: true }];
}

export function runFails(config: Config, ops: readonly Op[], invariant: string): RunResult {
  const r = runOps(config, ops, { stopOn: invariant });
  expect(r.failure?.violations.map((v) => v.invariant), `${invariant} on ${JSON.stringify(config.options)} ${config.mutant ?? ''}`).toContain(invariant);
  return r;
}

export function runHolds(config: Config, ops: readonly Op[], inv?: Invariant): void {
  const r = runOps(config, ops, inv ? { invariants: [inv] } : {});
  expect(r.failure, JSON.stringify(r.failure)).toBeUndefined();
}

interface Case {
  readonly name: string;
  readonly run: (inv: Invariant) => void;
}

/** The sweep's machine: the small geometry's 512 frames hold two VMs of 5.2's sizes. */
export const SWEEP_CONFIG: Config = { geometry: 'small', cpus: 2, profile: 'fixed' };

/**
 * Two VMs with a vCPU each, each vCPU run once with every exit reason (vCPU 2's thread on cpu0,
 * vCPU 4's on cpu1); then memslots created, moved and deleted and buses registered and unregistered
 * in both VMs, so that each vCPU's next entry remaps them, and a task for preemption to switch to.
 */
const SWEEP_SETUP: readonly Op[] = [
  ...ONE_VCPU,
  { op: 'kvm_create_vm' },
  { op: 'kvm_create_vcpu', vm: 3 },
  { op: 'kvm_set_memory_region', vm: 3, slot: 1, pages: 1 },
  run(0, 2, [...EXIT_REASONS]),
  run(1, 4, [...EXIT_REASONS]),
  { op: 'kvm_set_memory_region', vm: 1, slot: 1, pages: 3 },
  { op: 'kvm_io_bus', vm: 1, bus: 0, register: true },
  { op: 'kvm_set_memory_region', vm: 1, slot: 1, pages: 3, gfn: 12 },
  { op: 'kvm_set_memory_region', vm: 1, slot: 0, pages: 0 },
  { op: 'kvm_io_bus', vm: 1, bus: 1, register: false },
  { op: 'kvm_set_memory_region', vm: 3, slot: 2, pages: 1 },
  { op: 'kvm_io_bus', vm: 3, bus: 1, register: true },
  { op: 'task_create' },
];

/**
 * Each vCPU's swept run: on the CPU its thread is not on (KVM_RUN migrates it), an EPT violation
 * (the guest page is not mapped: asi_fault), an HLT (the thread blocks and wakes on the other CPU)
 * and a CPUID exit (mapped data: isolation kept).
 */
const SWEPT = [
  { vcpu: 2, cpu: 1, wake: 0 },
  { vcpu: 4, cpu: 0, wake: 1 },
] as const;
const SWEPT_EXITS: readonly ExitReason[] = ['ept-violation', 'hlt', 'cpuid'];

/** One run of the sweep: a swept run with one event after one of its micro-steps. */
interface SweptRun {
  readonly vcpu: number;
  readonly at: number;
  readonly kind: IntrKind;
  /** The micro-step the event comes after, as the run without it passes them. */
  readonly point: string;
  /** How the event arrived there: its handler ran (or the preemption), or it was held off (IRQs off, not preemptible). */
  readonly arrival: 'landed' | 'held off' | undefined;
  readonly ret: number;
  /** The vcpu_run micro-steps the run passed. */
  readonly visited: readonly string[];
  /** How each exit went for isolation (EXIT_OUTCOMES). */
  readonly outcomes: readonly string[];
  /** What the four KVM invariants found wrong, at the first micro-step or after the run. */
  readonly violations: readonly Violation[];
}

const EXIT_NOTE = /^vCPU \d+ exit [\w-]+: (.+)$/;

/** How each exit of a KVM_RUN went for isolation (EXIT_OUTCOMES), from the "vCPU n exit reason: outcome" notes it logged. */
export function exitOutcomes(log: Log): string[] {
  return log.map((l) => EXIT_NOTE.exec(l.text)?.[1]).filter((o) => o !== undefined);
}

/** The outcomes of an exit whose VM-enter was isolated: the handler kept isolation, or left it. */
export const ISOLATED_ENTRY: readonly string[] = ['stays isolated', 'leaves isolation'];

interface Sweep {
  readonly runs: readonly SweptRun[];
  /** What closing both VMs from the setup's state violated: vCPU destruction must leave nothing behind. */
  readonly closed: readonly Violation[];
}

/** The invariants the sweep judges: each KVM invariant's holds test asks it for its own verdicts. */
const KVM_INVARIANTS = INVARIANTS.filter((i) => i.id.startsWith('KVM-'));

let sweep: Sweep | undefined;

/** The sweep, made once: judging the four invariants together costs a third of judging each apart. */
function kvmSweep(): Sweep {
  return (sweep ??= sweepRuns());
}

/**
 * Every event kind after every micro-step of both vCPUs' swept runs, each run from the setup's
 * state (a clone) and judged on the KVM invariants at every micro-step and after it, as a fuzz walk
 * judges them; then both VMs closed from that state, judged the same way.
 */
function sweepRuns(): Sweep {
  const start = createSystem(SWEEP_CONFIG);
  for (const op of SWEEP_SETUP) expect(step(start, op).ret, formatOp(start.g, op)).toBeGreaterThanOrEqual(0);
  const runs: SweptRun[] = [];
  for (const { vcpu, cpu, wake } of SWEPT) {
    const quiet = cloneSystem(start);
    step(quiet, { ...run(cpu, vcpu, SWEPT_EXITS), wake });
    // No event arrives in the run without one, so an arrival below is the swept event's.
    expect([...quiet.ghost.landed, ...quiet.ghost.heldOff]).toEqual([]);
    const points = quiet.ghost.visited.filter((v) => v.startsWith('vcpu_run@'));
    for (const [at, point] of points.entries()) {
      for (const kind of INTR_KINDS) {
        const sys = cloneSystem(start);
        const { outcome, failure } = checkedStep(sys, { ...run(cpu, vcpu, SWEPT_EXITS, at, kind), wake }, SWEEP_SETUP.length, checkerFor({ invariants: KVM_INVARIANTS }));
        const arrival = `${point}:${kind}`;
        runs.push({
          vcpu,
          at,
          kind,
          point,
          arrival: sys.ghost.landed.includes(arrival) ? 'landed' : sys.ghost.heldOff.includes(arrival) ? 'held off' : undefined,
          ret: outcome.ret,
          visited: sys.ghost.visited.filter((v) => v.startsWith('vcpu_run@')),
          outcomes: exitOutcomes(outcome.log),
          violations: failure?.violations ?? [],
        });
      }
    }
  }
  const closing = cloneSystem(start);
  const check = checkerFor({ invariants: KVM_INVARIANTS });
  const closed = [1, 3].flatMap((vm, i) => checkedStep(closing, { op: 'kvm_destroy_vm', vm }, SWEEP_SETUP.length + i, check).failure?.violations ?? []);
  return { runs, closed };
}

/**
 * A holds case on the sweep: no run violates the invariant, every event arrived after its
 * micro-step, closing the VMs does not violate it, and `covers` states, for each vCPU's runs, what
 * the sweep made the invariant judge.
 */
function sweepHolds(name: string, covers: (runs: readonly SweptRun[]) => void): Case {
  return {
    name: `fixed profile, two VMs: each event kind after each micro-step of each vCPU's KVM_RUN, ${name}; then both VMs closed`,
    run: (inv) => {
      const { runs, closed } = kvmSweep();
      const own = (vs: readonly Violation[]) => vs.filter((v) => v.invariant === inv.id).map((v) => v.message);
      expect(own(closed), 'closing both VMs').toEqual([]);
      const label = (r: SweptRun) => `vCPU ${r.vcpu} ${r.kind}@${r.at} (${r.point})`;
      expect(runs.flatMap((r) => own(r.violations).map((m) => `${label(r)}: ${m}`))).toEqual([]);
      expect(runs.filter((r) => !r.arrival).map(label)).toEqual([]);
      for (const { vcpu } of SWEPT) covers(runs.filter((r) => r.vcpu === vcpu));
    },
  };
}

const outcomesOf = (runs: readonly SweptRun[]) => new Set(runs.flatMap((r) => r.outcomes));

const passes = (runs: readonly SweptRun[], point: string) => runs.some((r) => r.visited.includes(`vcpu_run@${point}`));

/** A real model run that violates `inv` (the options off or the mutant on) and passes it on `fixed`. */
function caughtBy(name: string, config: Config, ops: () => readonly Op[], ...mentions: string[]): Case {
  return {
    name,
    run: (inv) => {
      const r = runFails(config, ops(), inv.id);
      const message = r.failure!.violations.find((v) => v.invariant === inv.id)!.message;
      for (const m of mentions) expect(message).toContain(m);
      runHolds({ ...config, options: {}, mutant: undefined }, ops(), inv);
    },
  };
}

const entryHolds = sweepHolds('its VM-enters isolated and, after an abort, on the kernel CR3, which KVM_RUN reports', (runs) => {
  expect(outcomesOf(runs)).toContain('stays isolated');
  expect(outcomesOf(runs)).toContain('entered unisolated');
});

/** The barrier window: an NMI there aborts the session, and VM-exit still loads the isolation CR3 (F30's window, closed by the barrier). */
const exitCr3Holds = sweepHolds('an NMI between vmx_isolation_barrier_begin and VM-exit among them', (runs) => {
  for (const point of ['vmx_isolation_barrier_begin', 'vmcs_writel(HOST_CR3, __get_current_cr3_fast())']) {
    expect(runs.some((r) => r.kind === 'nmi' && r.arrival === 'landed' && r.point === `vcpu_run@${point}` && passes([r], 'VM-exit')), point).toBe(true);
  }
});

/**
 * With vcpu_isolation_enter inside the read section, a bus change or a memslot change on cpu1 at
 * every point of a KVM_RUN on cpu0: the ones that would free what the vCPU reads wait for it.
 */
const raceHolds: Case = {
  name: 'a bus or memslot change on cpu1 at every point of KVM_RUN on cpu0, some of them waiting for its read section',
  run: (inv) => {
    const racers: Op[] = [
      { op: 'kvm_io_bus', vm: 1, bus: 1, register: false },
      { op: 'kvm_set_memory_region', vm: 1, slot: 2, pages: 1 },
    ];
    let waited = 0;
    for (const racer of racers) {
      for (let at = 0; at < 40; at++) {
        const ops: Op[] = [...BUS_CHANGED, { ...run(0, 2, ['cpuid', 'io']), race: { at, on: 1, op: racer } }];
        runHolds(SWEEP_CONFIG, ops, inv);
        const sys = createSystem(SWEEP_CONFIG);
        for (const op of ops.slice(0, -1)) step(sys, op);
        if (step(sys, ops[ops.length - 1]).log.some((e) => e.text.includes('waits for vCPU 2'))) waited++;
      }
    }
    expect(waited).toBeGreaterThan(0);
  },
};

const scopeHolds = sweepHolds("each entry remapping its VM's changed memslots and buses", (runs) => {
  expect(passes(runs, 'asi_remap(memslots[0])')).toBe(true);
  expect(passes(runs, 'asi_remap(buses[1])')).toBe(true);
});

const userHolds = sweepHolds('each run returning to user space', (runs) => {
  expect(runs.filter((r) => r.ret !== 0 || !passes([r], 'return')).map((r) => `${r.kind}@${r.at}: ${r.ret}`)).toEqual([]);
});

export const KVM_SPECS: Record<string, { holds: Case[]; caught: Case[] }> = {
  'KVM-ENTRY': {
    holds: [entryHolds],
    caught: [
      caughtBy('a bus removed by a failed kvm_io_bus_unregister_dev: patch 26 reads bus->dev_count of NULL (kvmRemapChecksNullBus, kvmFreeResetsRemap off)', kvmConfig({ kvmRemapChecksNullBus: false, kvmFreeResetsRemap: false }), () => NULL_BUS, 'buses[1] == NULL'),
      caughtBy('a new memslots array at the address of a freed one the vCPU remapped: patch 26 compares pointers (kvmFreeResetsRemap off)', kvmConfig({ kvmFreeResetsRemap: false }), () => REUSED_MEMSLOTS, 'is not mapped in asi#1'),
      caughtBy("patch 26's bookkeeping: memslots[1] remapped through vcpu->asi_memslots[0] (kvm-remap-memslots-slot0)", kvmConfig({}, 'kvm-remap-memslots-slot0'), () => [...ONE_VCPU, run(0, 2, ['cpuid'])], 'vcpu->asi_memslots[0] is'),
      caughtBy('an NMI inside asi_enter ends the session: the guest runs on the kernel page table and KVM_RUN tells user space nothing (kvmReportsUnisolatedEntry off)', kvmConfig({ kvmReportsUnisolatedEntry: false }), () => nmiInAsiEnter(kvmConfig({ kvmReportsUnisolatedEntry: false })), 'entered the guest on the kernel page table', 'telling it nothing'),
    ],
  },
  'KVM-EXIT-CR3': {
    holds: [exitCr3Holds],
    caught: [
      caughtBy('an NMI between the HOST_CR3 read and the isolation barrier (kvmBarrierBeforeHostCr3 off)', kvmConfig({ kvmBarrierBeforeHostCr3: false }), () => nmiBeforeBarrier(kvmConfig({ kvmBarrierBeforeHostCr3: false })), 'INACTIVE', 'asi#1'),
      caughtBy('HOST_CR3 written at the first run only (kvm-host-cr3-written-once)', kvmConfig({}, 'kvm-host-cr3-written-once'), () => {
        const c = kvmConfig({}, 'kvm-host-cr3-written-once');
        const second = [...ONE_VCPU, run(0, 2, ['cpuid']), run(0, 2, ['cpuid'])];
        return [...second.slice(0, -1), run(0, 2, ['cpuid'], pointOf(c, second, 'vmx_isolation_barrier_begin') - 1)];
      }, 'INACTIVE'),
    ],
  },
  'NO-UAF': {
    holds: [raceHolds],
    caught: [
      caughtBy("cpu1's kvm_io_bus_unregister_dev frees the bus patch 26 read, before its bus->dev_count (kvmIsolationEnterInSrcu off)", kvmConfig({ kvmIsolationEnterInSrcu: false }), () => racedBus(kvmConfig({ kvmIsolationEnterInSrcu: false })), 'bus->dev_count', 'kvm->buses[1]', 'freed on cpu1'),
      caughtBy("cpu1's KVM_SET_USER_MEMORY_REGION frees the memslots array patch 26 read, before its asi_remap (kvmIsolationEnterInSrcu off)", kvmConfig({ kvmIsolationEnterInSrcu: false }), () => racedMemslots(kvmConfig({ kvmIsolationEnterInSrcu: false })), 'asi_remap', 'kvm->memslots[0]', 'freed on cpu1'),
    ],
  },
  'KVM-SCOPE': {
    holds: [scopeHolds],
    caught: [
      caughtBy("the vCPU's ASI maps the first VM's struct kvm_vmx (kvm-maps-first-vm)", kvmConfig({}, 'kvm-maps-first-vm'), () => [{ op: 'kvm_create_vm' }, { op: 'kvm_create_vm' }, { op: 'kvm_create_vcpu', vm: 2 }], 'kvm_vmx of VM 1'),
      caughtBy("with slab caches, the vCPU's kvm_lapic page holds another VM's lapic (kvmMapsOwnPages and mapRefusesSharedSlabPages off)", slabConfig({ kvmMapsOwnPages: false, mapRefusesSharedSlabPages: false }), () => TWO_LAPICS, 'kvm_lapic of vCPU 4'),
      caughtBy('a memslots array replaced and freed while the ASI still maps it (freeUnmapsAsi, kvmFreeResetsRemap off)', kvmConfig({ freeUnmapsAsi: false, kvmFreeResetsRemap: false }), () => [...ONE_VCPU, run(0, 2, ['cpuid']), { op: 'kvm_set_memory_region', vm: 1, slot: 1, pages: 1 }], 'freed'),
    ],
  },
  'KVM-USER': {
    holds: [userHolds],
    caught: [
      caughtBy('an allocation failing in vmx_isolation_init_mapping leaks the ASI (kvmInitDestroysAsi off)', kvmConfig({ kvmInitDestroysAsi: false }), () => failInInit(38), 'leak'),
      caughtBy('vmx_isolation_uninit keeps the ASI (kvm-uninit-keeps-asi)', kvmConfig({}, 'kvm-uninit-keeps-asi'), () => [{ op: 'kvm_create_vm' }, { op: 'kvm_create_vcpu', vm: 1 }, { op: 'kvm_destroy_vm', vm: 1 }], 'belongs to no vCPU'),
      caughtBy('KVM_RUN returns to user space isolated (kvm-run-skips-exit)', kvmConfig({}, 'kvm-run-skips-exit'), () => [...ONE_VCPU, run(0, 2, ['cpuid'])], 'returns to user space'),
    ],
  },
};
