// KVM scenarios shared by test/kvm.test.ts and the KVM entries of the invariant catalogue test: each
// names the fewest design options it needs off (the finding it reproduces) or the mutant it kills.

import { expect } from 'vitest';
import { type RunResult, runOps } from '../src/check/run.ts';
import type { Invariant } from '../src/invariants/index.ts';
import type { Op } from '../src/model/ops.ts';
import type { Config } from '../src/model/system.ts';
import type { DesignOptions } from '../src/model/options.ts';
import type { MutantName } from '../src/model/mutants.ts';
import { EXIT_REASONS } from '../src/model/kvm/run.ts';
import { createSystem, step } from '../src/model/step.ts';
import type { IntrKind } from '../src/model/x86/entry.ts';
import { PGT_LEVEL_PTE } from '../src/model/mm/geometry.ts';

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

/** F-K2: kvm_io_bus_unregister_dev cannot allocate the shrunk bus and removes it; the next KVM_RUN remaps it. */
export const NULL_BUS: Op[] = [...ONE_VCPU, run(0, 2, ['io']), { op: 'fail_alloc', after: 0 }, { op: 'kvm_io_bus', vm: 1, bus: 1, register: false }, run(0, 2, ['io'])];

/** F-K3: an allocation failing inside vmx_isolation_init_mapping (the n-th allocation of KVM_CREATE_VCPU; 38 to 73 are). */
export function failInInit(n: number): Op[] {
  return [{ op: 'kvm_create_vm' }, { op: 'fail_alloc', after: n }, { op: 'kvm_create_vcpu', vm: 1 }];
}

/** Two VMs with a vCPU each, memslot and bus changes between runs, a migrated vCPU thread, every exit reason, and events at every point of a run. */
export function busyRun(config: Config): Op[] {
  const setup: Op[] = [
    ...ONE_VCPU,
    { op: 'kvm_create_vm' },
    { op: 'kvm_create_vcpu', vm: 3 },
    { op: 'kvm_set_memory_region', vm: 3, slot: 1, pages: 1 },
    run(0, 2, [...EXIT_REASONS]),
    { op: 'kvm_set_memory_region', vm: 1, slot: 1, pages: 3 },
    { op: 'kvm_io_bus', vm: 1, bus: 0, register: true },
    run(1, 4, [...EXIT_REASONS]),
    // vCPU 2's thread migrates to cpu1 and back, and wakes up from HLT on cpu0; slot 1 moves (KVM_MR_MOVE), slot 0 goes.
    run(1, 2, ['io']),
    { ...run(1, 2, ['hlt', 'io']), wake: 0 },
    { op: 'kvm_set_memory_region', vm: 1, slot: 1, pages: 3, gfn: 12 },
    { op: 'kvm_set_memory_region', vm: 1, slot: 0, pages: 0 },
    { op: 'kvm_io_bus', vm: 1, bus: 1, register: false },
  ];
  const probe = [...setup, run(0, 2, ['ept-violation', 'hlt', 'io'])];
  const sys = createSystem(config);
  for (const op of probe) step(sys, op);
  const points = sys.ghost.visited.filter((v) => v.startsWith('vcpu_run@')).length;
  const kinds: IntrKind[] = ['irq', 'nmi', 'exception', 'switch'];
  const runs = Array.from({ length: points }, (_, at) => run(at % 2, at % 2 ? 4 : 2, ['ept-violation', 'hlt', 'io'], at, kinds[at % kinds.length]));
  return [...setup, { op: 'task_create' }, ...runs, { op: 'kvm_destroy_vm', vm: 1 }, { op: 'kvm_destroy_vm', vm: 3 }];
}

/** Config.kernel.slab on the real geometry (order-3 slabs need room the small one does not have). */
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

let busyChecked = false;

/** The busy run of `fixed` holds every invariant at every step and micro-step (run once per file). */
function busyHolds(): void {
  if (busyChecked) return;
  runHolds(kvmConfig(), busyRun(kvmConfig()));
  busyChecked = true;
}

interface Case {
  readonly name: string;
  readonly run: (inv: Invariant) => void;
}

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

const holds: Case[] = [{ name: 'fixed profile, two VMs, memslot and bus changes, every exit reason, an event at every point of KVM_RUN', run: busyHolds }];

export const KVM_SPECS: Record<string, { holds: Case[]; caught: Case[] }> = {
  'KVM-ENTRY': {
    holds,
    caught: [
      caughtBy('a bus removed by a failed kvm_io_bus_unregister_dev: patch 26 reads bus->dev_count of NULL (kvmRemapChecksNullBus, kvmFreeResetsRemap off)', kvmConfig({ kvmRemapChecksNullBus: false, kvmFreeResetsRemap: false }), () => NULL_BUS, 'buses[1] == NULL'),
      caughtBy('a new memslots array at the address of a freed one the vCPU remapped: patch 26 compares pointers (kvmFreeResetsRemap off)', kvmConfig({ kvmFreeResetsRemap: false }), () => REUSED_MEMSLOTS, 'is not mapped in asi#1'),
      caughtBy("patch 26's bookkeeping: memslots[1] remapped through vcpu->asi_memslots[0] (kvm-remap-memslots-slot0)", kvmConfig({}, 'kvm-remap-memslots-slot0'), () => [...ONE_VCPU, run(0, 2, ['cpuid'])], 'vcpu->asi_memslots[0] is'),
    ],
  },
  'KVM-EXIT-CR3': {
    holds,
    caught: [
      caughtBy('an NMI between the HOST_CR3 read and the isolation barrier (kvmBarrierBeforeHostCr3 off)', kvmConfig({ kvmBarrierBeforeHostCr3: false }), () => nmiBeforeBarrier(kvmConfig({ kvmBarrierBeforeHostCr3: false })), 'INACTIVE', 'asi#1'),
      caughtBy('HOST_CR3 written at the first run only (kvm-host-cr3-written-once)', kvmConfig({}, 'kvm-host-cr3-written-once'), () => {
        const c = kvmConfig({}, 'kvm-host-cr3-written-once');
        const second = [...ONE_VCPU, run(0, 2, ['cpuid']), run(0, 2, ['cpuid'])];
        return [...second.slice(0, -1), run(0, 2, ['cpuid'], pointOf(c, second, 'vmx_isolation_barrier_begin') - 1)];
      }, 'INACTIVE'),
    ],
  },
  'KVM-SCOPE': {
    holds,
    caught: [
      caughtBy("the vCPU's ASI maps the first VM's struct kvm_vmx (kvm-maps-first-vm)", kvmConfig({}, 'kvm-maps-first-vm'), () => [{ op: 'kvm_create_vm' }, { op: 'kvm_create_vm' }, { op: 'kvm_create_vcpu', vm: 2 }], 'kvm_vmx of VM 1'),
      caughtBy("with slab caches, the vCPU's kvm_lapic page holds another VM's lapic (kvmMapsOwnPages and mapRefusesSharedSlabPages off)", slabConfig({ kvmMapsOwnPages: false, mapRefusesSharedSlabPages: false }), () => TWO_LAPICS, 'kvm_lapic of vCPU 4'),
      caughtBy('a memslots array replaced and freed while the ASI still maps it (freeUnmapsAsi, kvmFreeResetsRemap off)', kvmConfig({ freeUnmapsAsi: false, kvmFreeResetsRemap: false }), () => [...ONE_VCPU, run(0, 2, ['cpuid']), { op: 'kvm_set_memory_region', vm: 1, slot: 1, pages: 1 }], 'freed'),
    ],
  },
  'KVM-USER': {
    holds,
    caught: [
      caughtBy('an allocation failing in vmx_isolation_init_mapping leaks the ASI (kvmInitDestroysAsi off)', kvmConfig({ kvmInitDestroysAsi: false }), () => failInInit(38), 'leak'),
      caughtBy('vmx_isolation_uninit keeps the ASI (kvm-uninit-keeps-asi)', kvmConfig({}, 'kvm-uninit-keeps-asi'), () => [{ op: 'kvm_create_vm' }, { op: 'kvm_create_vcpu', vm: 1 }, { op: 'kvm_destroy_vm', vm: 1 }], 'belongs to no vCPU'),
      caughtBy('KVM_RUN returns to user space isolated (kvm-run-skips-exit)', kvmConfig({}, 'kvm-run-skips-exit'), () => [...ONE_VCPU, run(0, 2, ['cpuid'])], 'returns to user space'),
    ],
  },
};
