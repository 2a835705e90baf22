// Operations of the KVM part (issue 12), drawn from the live VMs and vCPUs: a call that names a VM
// or vCPU when none exists makes one first, and KVM_RUN goes to a CPU that is not isolated.

import type { Op, OpKind } from '../model/ops.ts';
import type { System } from '../model/system.ts';
import { ASI_SESSION_STATE_INACTIVE } from '../model/x86/cpu.ts';
import { EXIT_REASONS } from '../model/kvm/run.ts';
import { KVM_MAX_SLOT_PAGES, KVM_MODEL_GFNS, KVM_MODEL_SLOTS, KVM_NR_BUSES } from '../model/kvm/vm.ts';
import { type Choice, MISSING_ID_ONE_IN, eventsFor, memcgOf } from './choose.ts';

export type KvmOpKind = Extract<OpKind, `kvm_${string}`>;

/**
 * vcpu_run passes about 20 points an exit and 8 around them (vcpu_load, the end of vcpu_run,
 * vcpu_put): events land anywhere in the run, not past its end.
 */
const POINTS_PER_EXIT = 20;
const POINTS_AROUND = 8;

function pickId(ids: readonly number[], n: number, missing: number): number {
  return ids.length === 0 || n % MISSING_ID_ONE_IN === MISSING_ID_ONE_IN - 1 ? missing : ids[Math.floor(n / MISSING_ID_ONE_IN) % ids.length];
}

/**
 * KVM_SET_USER_MEMORY_REGION: on an existing slot, one call in two keeps its size (a move, or
 * nothing to do); half the calls place the slot at its own base_gfn (no overlap), the rest anywhere.
 */
function memoryRegion(sys: System, vm: number, ch: Choice): Op {
  const slot = ch.b % KVM_MODEL_SLOTS;
  const old = sys.kvm?.vms.get(vm)?.slots.find((s) => s.slot === slot);
  const pages = old && ch.c % 2 === 0 ? old.pages : ch.c % (KVM_MAX_SLOT_PAGES + 1);
  const gfn = ch.d % 2 === 0 ? slot * KVM_MAX_SLOT_PAGES : (ch.d >>> 1) % (KVM_MODEL_GFNS - pages + 1);
  return { op: 'kvm_set_memory_region', vm, slot, pages, gfn };
}

export function resolveKvmOp(sys: System, kind: KvmOpKind, ch: Choice): Op {
  const vms = [...(sys.kvm?.vms.keys() ?? [])];
  const vcpus = [...(sys.kvm?.vcpus.keys() ?? [])];
  const nextId = sys.kvm?.nextId ?? 1;
  const missing = ch.a % MISSING_ID_ONE_IN === MISSING_ID_ONE_IN - 1;
  const made = missing ? kind : kind === 'kvm_run' && vcpus.length === 0 ? 'kvm_create_vcpu' : kind;
  // Each VMM process in the root memcg, in one of its own, or in another VMM's.
  if (made !== 'kvm_create_vm' && vms.length === 0 && !missing) return { op: 'kvm_create_vm', ...memcgOf(ch.c) };
  const vm = pickId(vms, ch.a, nextId);
  switch (made) {
    case 'kvm_create_vm':
      return { op: 'kvm_create_vm', ...memcgOf(ch.c) };
    case 'kvm_create_vcpu':
      return { op: 'kvm_create_vcpu', vm };
    case 'kvm_destroy_vm':
      return { op: 'kvm_destroy_vm', vm };
    case 'kvm_set_memory_region':
      return memoryRegion(sys, vm, ch);
    case 'kvm_io_bus':
      return { op: 'kvm_io_bus', vm, bus: ch.b % KVM_NR_BUSES, register: ch.c % 3 !== 2 };
    case 'kvm_run': {
      const idle = sys.cpus.filter((c) => c.session.state === ASI_SESSION_STATE_INACTIVE).map((c) => c.id);
      const cpu = idle.length && ch.b % 8 !== 7 ? idle[ch.b % idle.length] : ch.b % sys.config.cpus;
      const exits = Array.from({ length: 1 + (ch.c % 3) }, (_, i) => EXIT_REASONS[Math.floor(ch.c / 3 ** i) % EXIT_REASONS.length]);
      // One run in four carries no event.
      const points = POINTS_PER_EXIT * exits.length + POINTS_AROUND;
      const intr = ch.d % 4 === 3 ? [] : eventsFor(sys, ch.d).map((e) => ({ ...e, at: (e.at * 5 + ch.c) % points }));
      // Half the runs that block in HLT wake up on another CPU.
      const cpus = sys.config.cpus;
      const wake = exits.includes('hlt') && cpus > 1 && ch.d % 2 === 0 ? { wake: (cpu + 1 + ((ch.a >>> 8) % (cpus - 1))) % cpus } : {};
      return { op: 'kvm_run', cpu, vcpu: pickId(vcpus, ch.a, nextId), exits, intr, ...wake };
    }
  }
}
