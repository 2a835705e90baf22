// The KVM invariants (SPEC §3, issue 12): what the guest is entered on, what VM-exit loads, what a
// vCPU's ASI reaches, and what returning to user space and destroying a vCPU leave behind. Entry,
// exit and return are judged where vcpu_run passes them (ghost events of src/model/kvm/run.ts);
// scope and leaks on the state.

import { formatVa } from '../model/mm/geometry.ts';
import { firstPageOf, framesOf } from '../model/mm/pagetable.ts';
import { type ObjectRef, allocationOfFrame, objectName, objectOwner, objectsInFrame } from '../model/mm/memory.ts';
import { kvVa } from '../model/mm/slab.ts';
import type { Asi, System } from '../model/system.ts';
import type { Vcpu } from '../model/kvm/vm.ts';
import { type Invariant, ghostEvent } from './types.ts';
import { LeafVerdicts, sinceVersion, windowsReaching } from './views.ts';
import { allocsReached } from './refine.ts';

export const KVM_ENTRY: Invariant = {
  id: 'KVM-ENTRY',
  statement:
    "With address_space_isolation on, the guest is entered on the vCPU's own ASI with the session ACTIVE on it, or on the kernel CR3 when isolation failed or was aborted, and then KVM_RUN tells user space so; with it off, no vCPU has an ASI. The path to VM-enter does not oops.",
  source: 'RFC v2 patches 23, 25 (vcpu_isolation_enter, vmx_vcpu_run), 26 (the remaps before asi_enter)',
  design: 'asi-2019',
  check: (sys) => ghostEvent(sys, 'KVM-ENTRY'),
};

export const KVM_EXIT_CR3: Invariant = {
  id: 'KVM-EXIT-CR3',
  statement:
    "The CR3 VM-exit loads (HOST_CR3, cached from __get_current_cr3_fast()) is the one the session says: the vCPU's ASI only while the session is ACTIVE on it or ABORTED inside the isolation barrier, the kernel's otherwise.",
  source: 'RFC v2 patches 21 (__get_current_cr3_fast), 25 (vmx_isolation_barrier_begin/end around __vmx_vcpu_run)',
  design: 'asi-2019',
  check: (sys) => ghostEvent(sys, 'KVM-EXIT-CR3'),
};

/** An object on `frame` that another VM than `vm` owns: the allocation's owner, or on a slab or percpu page the object's own. */
function otherVmObject(sys: System, frame: number, vm: number): ObjectRef | undefined {
  const a = allocationOfFrame(sys.mem, frame);
  if (!a || (!a.parts && a.owner.kind !== 'vm')) return undefined;
  return objectsInFrame(sys.mem, frame).find((o) => {
    const owner = objectOwner(o);
    return owner.kind === 'vm' && owner.id !== vm;
  });
}

/** A vCPU's ASI reaches no other VM's memory or state, and no memslots array or bus it remapped and the VM has since freed. */
function scope(sys: System, foreign: (sys: System, asi: Asi, vcpu: Vcpu) => string | undefined): string | undefined {
  for (const vcpu of sys.kvm?.vcpus.values() ?? []) {
    const asi = vcpu.asi === null ? undefined : sys.asis.get(vcpu.asi);
    if (!asi) continue;
    const m = foreign(sys, asi, vcpu) ?? freedArray(sys, asi, vcpu);
    if (m !== undefined) return m;
  }
  return undefined;
}

function foreignFrame(sys: System, asi: Asi, vcpu: Vcpu): string | undefined {
  for (const { frame, va } of framesOf(sys.g, sys.tables, asi.pgd)) {
    const m = frameForeign(sys, asi, vcpu, frame, va);
    if (m !== undefined) return m;
  }
  return undefined;
}

function frameForeign(sys: System, asi: Asi, vcpu: Vcpu, frame: number, va: number): string | undefined {
  const o = otherVmObject(sys, frame, vcpu.vm);
  return o && `asi#${asi.id} of vCPU ${vcpu.id} (VM ${vcpu.vm}) reaches ${objectName(o)} (pfn ${frame}) at ${formatVa(sys.g, va)}`;
}

function freedArray(sys: System, asi: Asi, vcpu: Vcpu): string | undefined {
  const vm = sys.kvm!.vms.get(vcpu.vm)!;
  const live = new Set([...vm.memslots.map((m) => kvVa(sys, m)), ...vm.buses.map((b) => b?.va)]);
  for (const ptr of [...vcpu.asiMemslots, ...vcpu.asiBuses]) {
    // Replaced, the old array stays in use until synchronize_srcu: only its free makes the mapping wrong.
    const range = ptr === null || live.has(ptr) ? undefined : asi.ranges.find((r) => r.ptr === ptr);
    const freed = range && allocsReached(range.ghostReached).some((id) => !sys.mem.allocs.has(id));
    if (freed) return `asi#${asi.id} of vCPU ${vcpu.id} still maps ${formatVa(sys.g, ptr!)}, a memslots array or bus VM ${vcpu.vm} has freed`;
  }
  return undefined;
}

export const KVM_SCOPE: Invariant = {
  id: 'KVM-SCOPE',
  statement:
    "A vCPU's ASI never reaches another VM's guest memory or state, nor a memslots array or IO bus its VM has replaced and freed.",
  source: "RFC v2 cover letter (a VM's own data only; patch 23 gives each vCPU its ASI); patches 24 (vmx_isolation_init_mapping), 26 (asi_remap of memslots and buses)",
  design: 'asi-2019',
  check: (sys) => scope(sys, foreignFrame),
  // What a leaf reaches changes with the leaf and the owners of its frames: only the leaves a step
  // moved, or whose frames changed owner, are judged again. The arrays the ASI still maps are a
  // lookup per remapped pointer, judged whole when anything changed (memslots and buses are
  // replaced by allocations, and remapped by range changes).
  incremental: (views) => {
    const kept = new Map<number, { stamp: number; vcpu: number; vm: number; verdicts: LeafVerdicts }>();
    const reach = (sys: System, asi: Asi, vcpu: Vcpu) => {
      const c = kept.get(asi.id);
      const changes = c?.vcpu === vcpu.id && c.vm === vcpu.vm ? views.changesSince(sys, asi.pgd, c.stamp) : undefined;
      const t = views.tree(sys, asi.pgd);
      const dirty = changes && [...changes.windows, ...windowsReaching(t.leaves, changes.frames)];
      const verdicts = c?.verdicts ?? new LeafVerdicts();
      kept.set(asi.id, { stamp: t.stamp, vcpu: vcpu.id, vm: vcpu.vm, verdicts });
      // A frame several leaves reach is judged in each: the first failing leaf is where the whole-state walk meets it first.
      return verdicts.judge(t.leaves, dirty, (l) => firstPageOf(l, (frame, va) => frameForeign(sys, asi, vcpu, frame, va)));
    };
    return sinceVersion((sys) => scope(sys, reach));
  },
};

/** Every ASI vmx_isolation_init created belongs to a live vCPU. */
function leaked(sys: System): string | undefined {
  if (!sys.kvm) return undefined;
  // At every check, inside KVM_RUN too: a loop over a few vCPUs, not a set built each time.
  for (const id of sys.kvm.asis) {
    if (!sys.asis.has(id)) continue;
    let owned = false;
    for (const v of sys.kvm.vcpus.values()) owned ||= v.asi === id;
    if (!owned) return `asi#${id}, created by vmx_isolation_init, belongs to no vCPU: it, its ranges and its page-table pages leak`;
  }
  return undefined;
}

export const KVM_USER: Invariant = {
  id: 'KVM-USER',
  statement: 'KVM_RUN returns to user space with isolation left and the kernel CR3 loaded; every ASI vmx_isolation_init created belongs to a live vCPU (a failed creation or a destroyed vCPU leaves none).',
  source: 'RFC v2 patches 23 (vmx_isolation_init/uninit), 25 (kvm_may_access_sensitive_data at the end of vcpu_run)',
  design: 'asi-2019',
  check: (sys) => ghostEvent(sys, 'KVM-USER') ?? leaked(sys),
};
