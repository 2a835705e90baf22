// KVM's objects as Linux 5.2 allocates them (virt/kvm/kvm_main.c, arch/x86/kvm/vmx/vmx.c): the VM
// (struct kvm_vmx, vzalloc'd by vmx_vm_alloc), its memslots arrays and IO buses (each change installs
// a new array and frees the old one after synchronize_srcu), guest memory, and the vCPUs
// (vmx_create_vcpu), with the per-vCPU ASI fields of RFC v2 patches 23 and 26.

import { PAGE_SIZE, roundUp } from '../mm/geometry.ts';
import { type Owner, KERNEL } from '../mm/memory.ts';
import { allocPages, execOf, freePages } from '../mm/page-alloc.ts';
import { EEXIST, EINVAL, ENOENT, ENOMEM, ENOSPC } from '../mm/kernel.ts';
import { type CacheDef, type KvObject, type ObjectRequest, allocPagesObject, cacheAlloc, kfree, kmalloc, kvMemory, kvVa, kvfree, kvzalloc } from '../mm/slab.ts';
import { moduleLoad, moduleUnload, vfree, vmalloc } from '../mm/vmalloc.ts';
import { allocPercpu, freePercpu, percpuObjectMemory } from '../mm/percpu.ts';
import { type Log, log } from '../trace.ts';
import { inFlightCpu, mustWait } from '../x86/smp.ts';
import { asCaller, asiUnmap, freeObject, recordApiCall, unmapFromAsis } from '../asi/asi.ts';
import { vmxIsolationInit, vmxIsolationUninit } from './isolation.ts';
import { kvmArchDestroyVmAsi, kvmArchInitVmAsi } from '../asi25/kvm.ts';
import { type Asi, type KernelObject, type System, legacyMemory, pmlEnabled } from '../system.ts';

/** KVM_ADDRESS_SPACE_NUM on x86: the normal and the SMM address space. */
export const KVM_ADDRESS_SPACE_NUM = 2;
/** KVM_NR_BUSES: MMIO, PIO, VIRTIO_CCW_NOTIFY, FAST_MMIO. */
export const KVM_NR_BUSES = 4;
export const KVM_MMIO_BUS = 0;
export const KVM_PIO_BUS = 1;
export const KVM_FAST_MMIO_BUS = 3;
/** KVM_USER_MEM_SLOTS on x86 (509), scaled down: the model's VMs have a few slots. */
export const KVM_MODEL_SLOTS = 4;
/** Guest pages a memslot may have in the model. */
export const KVM_MAX_SLOT_PAGES = 4;
/** The guest physical frames of a model VM. */
export const KVM_MODEL_GFNS = KVM_MODEL_SLOTS * KVM_MAX_SLOT_PAGES;
/** Devices a bus may hold in the model (NR_IOBUS_DEVS is 1000). */
export const KVM_MAX_BUS_DEVS = 8;

/**
 * Sizes on x86-64 5.2 (approximate, from the struct layouts): struct kvm_vmx is dominated by
 * kvm_arch.mmu_page_hash[4096] (32 KiB); struct kvm_memslots holds 512 kvm_memory_slot of 88 bytes;
 * struct vcpu_vmx is the kvm_vcpu kmem_cache object; struct kvm_lapic; struct kvm_io_bus is 8 bytes
 * plus 24 per kvm_io_range.
 */
export const KVM_VMX_SIZE = 0x9a40;
export const KVM_MEMSLOTS_SIZE = 0xb410;
export const VCPU_VMX_SIZE = 0x4200;
/** kvm_init's kvm_vcpu kmem_cache (vcpu_size = sizeof(struct vcpu_vmx), SLAB_ACCOUNT): one object to an order-3 slab. */
export const KVM_VCPU_CACHE: CacheDef = { name: 'kvm_vcpu', size: VCPU_VMX_SIZE, account: true };
/**
 * kvm_arch_init's x86_fpu kmem_cache (SLAB_ACCOUNT) for vcpu->arch.guest_fpu: sizeof(struct fpu) is
 * 64 bytes of header and a page of fpregs_state, seven to an order-3 slab.
 */
export const X86_FPU_CACHE: CacheDef = { name: 'x86_fpu', size: 0x1040, account: true };
export const KVM_LAPIC_SIZE = 0x190;
export const KVM_IO_BUS_SIZE = 8;
export const KVM_IO_RANGE_SIZE = 24;
/**
 * sizeof(struct srcu_data) in 5.2 (include/linux/srcutree.h), worked out from its members: the
 * counters, then from a cache line on the lock, srcu_cblist, the sequence numbers, delay_work,
 * work and the barrier head: 312 bytes, 320 at its 64-byte alignment (____cacheline_internodealigned_in_smp).
 */
export const SRCU_DATA_SIZE = 0x140;
const SRCU_DATA_ALIGN = 64;
/** vmx_l1d_flush_pages: PAGE_SIZE << L1D_CACHE_ORDER, allocated when kvm-intel loads. */
export const L1D_CACHE_ORDER = 4;
/** Core sizes of kvm.ko and kvm-intel.ko, scaled down. */
const KVM_MODULE_PAGES = 2;

export interface Memslot {
  readonly slot: number;
  /** base_gfn: where the slot sits in guest physical memory. */
  readonly gfn: number;
  readonly pages: number;
  /** The guest memory allocation (owner: the VM). */
  readonly alloc: number;
}

export interface KvmBus {
  /** kmalloc id of the struct kvm_io_bus. */
  readonly obj: number;
  readonly va: number;
  readonly devCount: number;
  /**
   * kmalloc ids of the devices its ranges lead to (each an ioeventfd, KVM_IOEVENTFD's struct
   * _ioeventfd), in registration order; asi-check 0.1 counted devices without memory (empty).
   */
  readonly devs: readonly number[];
}

export interface Vm {
  readonly id: number;
  /** vmArea id and address of struct kvm_vmx (struct kvm is its first member). */
  readonly area: number;
  readonly va: number;
  /** The VMM process's memcg: KVM's GFP_KERNEL_ACCOUNT allocations for the VM are charged to it. */
  readonly memcg: number;
  /** kvm->memslots[as_id]: the installed arrays, kvzalloc'd. */
  readonly memslots: KvObject[];
  /** alloc_percpu ids of kvm->srcu.sda and kvm->irq_srcu.sda (init_srcu_struct); null in layout 1. */
  readonly srcu: { readonly srcu: number; readonly irqSrcu: number } | null;
  /** The slots of address space 0. */
  slots: Memslot[];
  /** kvm->buses[i]; null after kvm_io_bus_unregister_dev failed to allocate the shrunk bus. */
  readonly buses: (KvmBus | null)[];
  readonly vcpus: number[];
  /** kvm->arch.asi on the 2025 design (its patch 21): the VMM's KVM domain, by key. */
  readonly asi25?: string;
}

export interface Vcpu {
  readonly id: number;
  readonly vm: number;
  /**
   * kmalloc ids: the vcpu_vmx (kvm_vcpu is its first member) and what vmx_create_vcpu allocates;
   * null where the kernel allocates none (layout 1, enable_pml off).
   */
  readonly vmx: number;
  readonly guestFpu: number | null;
  readonly run: number;
  readonly pioData: number;
  readonly apic: number;
  /** apic->regs: the lapic's register page. */
  readonly apicRegs: number | null;
  /** vmx->pml_pg: the page-modification log. */
  readonly pml: number | null;
  readonly guestMsrs: number;
  readonly vmcs: number;
  readonly msrBitmap: number;
  /** vcpu->asi (patch 23): an ASI id, or null. */
  asi: number | null;
  /** vcpu->asi_memslots[] and vcpu->asi_buses[] (patch 26): the pointers last remapped, as VAs. */
  readonly asiMemslots: (number | null)[];
  readonly asiBuses: (number | null)[];
  /** vmx->loaded_vmcs->host_state.cr3: what VM-exit loads. */
  hostCr3: number;
  /** The vCPU thread (vcpu->pid, recorded by its first KVM_RUN): a task id, or null before. */
  thread: number | null;
  /** vcpu->cpu: the CPU whose VMCS state the vCPU last loaded (kvm_arch_vcpu_load), -1 before. */
  cpu: number;
  /** vcpu->mutex held: a KVM_RUN of this vCPU is in flight. */
  running: boolean;
  /** Inside the kvm->srcu read section vcpu->srcu_idx names (vcpu_run holds it but around guest entry and blocking). */
  inSrcu: boolean;
}

export interface KvmState {
  /** kvm.ko and kvm-intel.ko, loaded with the first VM. */
  readonly modules: { readonly kvm: number; readonly kvmIntel: number };
  /** kmalloc id of vmx_l1d_flush_pages. */
  readonly l1dFlushPages: number;
  readonly vms: Map<number, Vm>;
  readonly vcpus: Map<number, Vcpu>;
  nextId: number;
  /** Ghost: the ASIs vmx_isolation_init created, live or leaked (KVM-USER). */
  readonly asis: Set<number>;
}

export function vmOwner(vm: number): Owner {
  return { kind: 'vm', id: vm };
}

export function cloneKvm(k: KvmState): KvmState {
  return {
    ...k,
    vms: new Map([...k.vms].map(([id, vm]) => [id, { ...vm, memslots: [...vm.memslots], slots: [...vm.slots], buses: [...vm.buses], vcpus: [...vm.vcpus] }])),
    vcpus: new Map([...k.vcpus].map(([id, v]) => [id, { ...v, asiMemslots: [...v.asiMemslots], asiBuses: [...v.asiBuses] }])),
    asis: new Set(k.asis),
  };
}

/**
 * Loads kvm.ko and kvm-intel.ko with the first KVM_CREATE_VM; vmx_setup_l1d_flush allocates the L1D
 * flush pages (alloc_pages(GFP_KERNEL, L1D_CACHE_ORDER)).
 */
function kvmState(sys: System, out: Log): KvmState | number {
  if (sys.kvm) return sys.kvm;
  const ctx = { out };
  const kvm = moduleLoad(sys, KVM_MODULE_PAGES, ctx);
  if (typeof kvm === 'number') return kvm;
  const kvmIntel = moduleLoad(sys, KVM_MODULE_PAGES, ctx);
  if (typeof kvmIntel === 'number') {
    moduleUnload(sys, kvm.id, ctx, false);
    return kvmIntel;
  }
  const l1d = kvmAllocPages(sys, PAGE_SIZE << L1D_CACHE_ORDER, { sensitive: false, name: 'vmx_l1d_flush_pages', owner: KERNEL, kind: 'kvm', boot: false });
  if (typeof l1d === 'number') {
    moduleUnload(sys, kvmIntel.id, ctx, false);
    moduleUnload(sys, kvm.id, ctx, false);
    return l1d;
  }
  sys.kvm = { modules: { kvm: kvm.id, kvmIntel: kvmIntel.id }, l1dFlushPages: l1d.id, vms: new Map(), vcpus: new Map(), nextId: 1, asis: new Set() };
  return sys.kvm;
}

/**
 * alloc_pages of what KVM allocates page by page (the L1D flush pages, a vCPU's kvm_run, VMCS...).
 * asi-check 0.1 kmalloc'd them: the same pages, or a slab's with KernelConfig.slab.
 */
function kvmAllocPages(sys: System, size: number, req: ObjectRequest): KernelObject | number {
  return legacyMemory(sys) ? kmalloc(sys, size, req) : allocPagesObject(sys, size, req);
}

export function vaOf(sys: System, kmallocId: number): number {
  return sys.kernel.kmallocs.get(kmallocId)!.va;
}

function busSize(devCount: number): number {
  return KVM_IO_BUS_SIZE + devCount * KVM_IO_RANGE_SIZE;
}

/** kzalloc of an object patch 24 or 26 maps: a page of its own with kvmMapsOwnPages. */
function mappedObjectSize(sys: System, size: number): number {
  return sys.options.kvmMapsOwnPages ? roundUp(size, PAGE_SIZE) : size; // fixed: kvmMapsOwnPages
}

/** An object KVM allocates for a VM: the VM's state, GFP_KERNEL_ACCOUNT from the VMM's memcg. */
function vmObject(vm: { id: number; memcg: number }, name: string, sensitive: boolean): ObjectRequest {
  return { sensitive, name, owner: vmOwner(vm.id), kind: 'kvm', boot: false, account: true, memcg: vm.memcg };
}

function allocBus(sys: System, vm: { id: number; memcg: number }, devCount: number, devs: readonly number[]): KvmBus | number {
  const obj = kmalloc(sys, mappedObjectSize(sys, busSize(devCount)), vmObject(vm, `kvm_io_bus of VM ${vm.id}`, false));
  return typeof obj === 'number' ? obj : { obj: obj.id, va: obj.va, devCount, devs };
}

/**
 * sizeof(struct _ioeventfd) in 5.2 (virt/kvm/eventfd.c), worked out from its members: list head,
 * addr, length, the eventfd pointer, datamatch, the kvm_io_device, bus_idx and wildcard: kmalloc-64.
 */
export const IOEVENTFD_SIZE = 0x40;

/** kvm_alloc_memslots and __kvm_set_memory_region's copy: kvzalloc(sizeof(struct kvm_memslots), GFP_KERNEL_ACCOUNT); asi-check 0.1 vmalloc'd it. */
function allocMemslots(sys: System, vm: { id: number; memcg: number }, out: Log): KvObject | number {
  const req = vmObject(vm, `kvm_memslots of VM ${vm.id}`, false);
  if (!legacyMemory(sys)) return kvzalloc(sys, KVM_MEMSLOTS_SIZE, req, { out });
  const a = vmalloc(sys, Math.ceil(KVM_MEMSLOTS_SIZE / PAGE_SIZE), false, req.name, req.owner, 'kvm', { out });
  return typeof a === 'number' ? a : { via: 'vmalloc', id: a.id };
}

/**
 * init_srcu_struct(&kvm->srcu) and (&kvm->irq_srcu): each alloc_percpu(struct srcu_data), beside
 * other dynamic percpu data. Patch 24 maps kvm->srcu.sda: with kvmSrcuOwnPage it takes a page of
 * its own in every unit. asi-check 0.1 had a static slot.
 */
function allocSrcu(sys: System, vm: number): Vm['srcu'] | number {
  if (legacyMemory(sys)) return null;
  const data = (name: string, size: number, align: number) => allocPercpu(sys, size, align, { name: `${name} of VM ${vm}`, owner: vmOwner(vm), sensitive: false });
  const own = sys.options.kvmSrcuOwnPage; // fixed: kvmSrcuOwnPage
  const srcu = data('kvm->srcu.sda', own ? PAGE_SIZE : SRCU_DATA_SIZE, own ? PAGE_SIZE : SRCU_DATA_ALIGN);
  if (typeof srcu === 'number') return srcu;
  const irqSrcu = data('kvm->irq_srcu.sda', SRCU_DATA_SIZE, SRCU_DATA_ALIGN);
  if (typeof irqSrcu === 'number') {
    freePercpu(sys, srcu.id);
    return irqSrcu;
  }
  return { srcu: srcu.id, irqSrcu: irqSrcu.id };
}

/**
 * kvm_create_vm (5.2 order): struct kvm_vmx (vmx_vm_alloc: __vmalloc, GFP_KERNEL_ACCOUNT), both
 * memslots arrays, kvm->srcu and kvm->irq_srcu, every bus; ENOMEM frees what was made.
 */
export function kvmCreateVm(sys: System, memcg: number, out: Log): number {
  const st = kvmState(sys, out);
  if (typeof st === 'number') return st;
  const id = st.nextId++;
  const vm = { id, memcg };
  const ctx = { out };
  const memslots: KvObject[] = [];
  const buses: KvmBus[] = [];
  let srcu: Vm['srcu'] = null;
  const kvmVmx = vmalloc(sys, Math.ceil(KVM_VMX_SIZE / PAGE_SIZE), false, `kvm_vmx of VM ${id}`, vmOwner(id), 'kvm', ctx);
  if (typeof kvmVmx === 'number') return kvmVmx;
  // kvm_arch_init_vm on the 2025 design: asi_init(kvm->mm, ASI_CLASS_KVM, &kvm->arch.asi).
  const asi25 = sys.asi25 ? kvmArchInitVmAsi(execOf(sys, out), memcg) : undefined;
  if (typeof asi25 === 'number') {
    vfree(sys, kvmVmx.id, ctx, false);
    return asi25;
  }
  const undo = (err: number) => {
    if (asi25 !== undefined) kvmArchDestroyVmAsi(execOf(sys, out), asi25);
    for (const b of buses) kfree(sys, b.obj);
    if (srcu) for (const p of [srcu.srcu, srcu.irqSrcu]) freePercpu(sys, p);
    for (const m of memslots) kvfree(sys, m, ctx, false);
    vfree(sys, kvmVmx.id, ctx, false);
    return err;
  };
  for (let i = 0; i < KVM_ADDRESS_SPACE_NUM; i++) {
    const m = allocMemslots(sys, vm, out);
    if (typeof m === 'number') return undo(m);
    memslots.push(m);
  }
  const s = allocSrcu(sys, id);
  if (typeof s === 'number') return undo(s);
  srcu = s;
  for (let i = 0; i < KVM_NR_BUSES; i++) {
    const b = allocBus(sys, vm, 0, []);
    if (typeof b === 'number') return undo(b);
    buses.push(b);
  }
  st.vms.set(id, { id, area: kvmVmx.id, va: kvmVmx.va, memcg, memslots, srcu, slots: [], buses, vcpus: [], ...(asi25 === undefined ? {} : { asi25 }) });
  log(out, 'note', `VM ${id}: struct kvm_vmx at ${kvmVmx.va.toString(16)}`);
  return id;
}

/** What KVM_SET_USER_MEMORY_REGION does to an existing slot or none (5.2 __kvm_set_memory_region). */
export type MemslotChange = 'create' | 'delete' | 'move';

/**
 * 5.2 decides the change from the old slot: none and pages is KVM_MR_CREATE; pages 0 is
 * KVM_MR_DELETE; the same size at another base_gfn is KVM_MR_MOVE; the same slot is nothing to do
 * (0). A slot cannot be resized (-EINVAL): user space deletes it and creates it again.
 */
export function memslotChange(old: Memslot | undefined, pages: number, gfn: number): MemslotChange | number {
  if (!old) return pages === 0 ? EINVAL : 'create';
  if (pages === 0) return 'delete';
  if (pages !== old.pages) return EINVAL;
  return gfn === old.gfn ? 0 : 'move';
}

function overlaps(vm: Vm, slot: number, gfn: number, pages: number): boolean {
  return vm.slots.some((s) => s.slot !== slot && gfn < s.gfn + s.pages && s.gfn < gfn + pages);
}

/** install_new_memslots: rcu_assign_pointer(kvm->memslots[0], slots), synchronize_srcu; returns the old array. */
function installNewMemslots(sys: System, vm: Vm, slots: KvObject, out: Log): KvObject {
  const old = vm.memslots[0];
  vm.memslots[0] = slots;
  log(out, 'note', `VM ${vm.id}: memslots[0] ${kvVa(sys, old).toString(16)} -> ${kvVa(sys, slots).toString(16)}`);
  synchronizeSrcu(sys, vm, 'synchronize_srcu(&kvm->srcu) in install_new_memslots');
  return old;
}

/** A racing op's wait for a vCPU's KVM_RUN (RacerWaits.blocked): it holds while that KVM_RUN is in flight. */
export function whileRunning(vcpu: number): (sys: System) => boolean {
  return (s) => s.kvm?.vcpus.get(vcpu)?.running === true;
}

/** kvm->vcpus[]. */
function vcpusOf(sys: System, vm: Vm): Vcpu[] {
  return vm.vcpus.map((v) => sys.kvm!.vcpus.get(v)!);
}

/**
 * synchronize_srcu(&kvm->srcu): returns once every reader that was inside a read section when it
 * was called has left it. Only readers wait it out: a vCPU between its srcu_read_unlock and the
 * next srcu_read_lock holds nothing up.
 */
function synchronizeSrcu(sys: System, vm: Vm, what: string): void {
  // Only an op in flight is inside a section between ops (kvmRunReturned ends it).
  const reader = vcpusOf(sys, vm).find((v) => v.inSrcu);
  if (reader) mustWait(sys, `${what} waits for vCPU ${reader.id}'s read section on cpu${inFlightCpu(sys)}`, (s) => s.kvm?.vcpus.get(reader.id)?.inSrcu === true);
}

/**
 * __kvm_set_memory_region (5.2): `slots` is a kvzalloc'd copy of kvm->memslots[0]. DELETE and MOVE
 * first install the copy with the slot KVM_MEMSLOT_INVALID, then reuse the old array for the final
 * contents and install it again ("We can re-use the old_memslots from above"): kvm->memslots[0]
 * ends where it was, and the copy is what kvfree(old_memslots) frees. CREATE installs the copy and
 * frees the old array. Guest memory is the VMM's, here frames owned by the VM (sensitive to everyone
 * else), reached by the kernel through the direct map; a deleted slot's memory goes back to the VMM.
 */
export function kvmSetMemoryRegion(sys: System, vmId: number, slot: number, pages: number, gfn: number, out: Log): number {
  const vm = sys.kvm?.vms.get(vmId);
  if (!vm) return ENOENT;
  if (slot >= KVM_MODEL_SLOTS || pages > KVM_MAX_SLOT_PAGES || gfn + pages > KVM_MODEL_GFNS) return EINVAL;
  const old = vm.slots.find((s) => s.slot === slot);
  const change = memslotChange(old, pages, gfn);
  if (typeof change === 'number') return change;
  if (change !== 'delete' && overlaps(vm, slot, gfn, pages)) return EEXIST;
  const copy = allocMemslots(sys, vm, out);
  if (typeof copy === 'number') return copy;
  let made: Memslot | undefined;
  if (change === 'create') {
    const a = allocPages(sys, { kind: 'guest-memory', owner: vmOwner(vmId), name: `guest memory of VM ${vmId} slot ${slot}`, pages, sensitive: true }, out);
    if (!a) {
      kvfree(sys, copy, { out }, false);
      return ENOMEM;
    }
    made = { slot, gfn, pages, alloc: a.id };
  } else if (change === 'move') {
    made = { ...old!, gfn };
  }
  let stale = installNewMemslots(sys, vm, copy, out);
  if (change !== 'create') stale = installNewMemslots(sys, vm, stale, out);
  vm.slots = [...vm.slots.filter((s) => s !== old), ...(made ? [made] : [])];
  freeMemslots(sys, stale, out);
  if (change === 'delete') freeGuestMemory(sys, old!, out);
  return 0;
}

/**
 * Patch 26's bookkeeping is a caller of a vCPU's ASI of its own (System.caller): vmx_isolation_init_mapping
 * is caller 0.
 */
export const KVM_REMAP_CALLER = 1;

/**
 * The remap bookkeeping lets go of ptrs[i] (a fix: patch 26 never does): asi_unmap of what it
 * mapped there, and the pointer NULL.
 */
export function forgetPointer(sys: System, asi: Asi | undefined, ptrs: (number | null)[], i: number, out: Log): void {
  const va = ptrs[i];
  if (asi && va !== null && asi.ranges.some((r) => r.ptr === va)) {
    asCaller(sys, KVM_REMAP_CALLER, () => recordApiCall(sys, 'asi_unmap', asi, [], null, () => asiUnmap(sys, asi, va, out)));
  }
  ptrs[i] = null;
}

/**
 * fixed: kvmFreeResetsRemap. Before a memslots array or bus at `va` is freed, every vCPU that
 * remapped it forgets it (asi_unmap, the pointer NULL), so that an array or bus allocated later at
 * the same address is not taken for it.
 */
function forgetRemapped(sys: System, va: number, out: Log): void {
  if (!sys.options.kvmFreeResetsRemap) return;
  for (const vcpu of sys.kvm!.vcpus.values()) {
    for (const ptrs of [vcpu.asiMemslots, vcpu.asiBuses]) {
      const i = ptrs.indexOf(va);
      if (i >= 0) forgetPointer(sys, vcpu.asi === null ? undefined : sys.asis.get(vcpu.asi), ptrs, i, out);
    }
  }
}

/**
 * kvfree of a memslots array: the kernel free path, which with freeUnmapsAsi unmaps it from every
 * ASI first (and with kvmFreeResetsRemap makes every vCPU forget it).
 */
function freeMemslots(sys: System, m: KvObject, out: Log): void {
  forgetRemapped(sys, kvVa(sys, m), out);
  unmapFromAsis(sys, kvMemory(sys, m), out);
  kvfree(sys, m, { out });
}

/** kvm_arch_free_vm: vfree of struct kvm_vmx, unmapped from every ASI first with freeUnmapsAsi. */
function freeKvmVmx(sys: System, vm: Vm, out: Log): void {
  unmapFromAsis(sys, sys.mem.allocs.get(sys.kernel.vmAreas.get(vm.area)!.alloc), out);
  vfree(sys, vm.area, { out });
}

/** cleanup_srcu_struct: free_percpu(ssp->sda), unmapped from every ASI first with freeUnmapsAsi. */
function freeSrcu(sys: System, vm: Vm, out: Log): void {
  if (!vm.srcu) return;
  for (const id of [vm.srcu.irqSrcu, vm.srcu.srcu]) {
    for (const m of percpuObjectMemory(sys, id)) unmapFromAsis(sys, m, out);
    freePercpu(sys, id);
  }
}

/** The VMM's munmap of a slot's memory, once KVM no longer uses it. */
function freeGuestMemory(sys: System, slot: Memslot, out: Log): void {
  unmapFromAsis(sys, sys.mem.allocs.get(slot.alloc), out);
  freePages(sys, slot.alloc);
}

/**
 * KVM_IOEVENTFD assign and deassign (5.2 virt/kvm/eventfd.c): kvm_assign_ioeventfd kzalloc's the
 * device, then kvm_io_bus_register_dev installs a bus one range longer; kvm_deassign_ioeventfd's
 * kvm_io_bus_unregister_dev installs one a range shorter, and ioeventfd_release frees the device.
 * The old bus is kfree'd after synchronize_srcu_expedited. Unregister cannot fail: when the shorter
 * bus cannot be allocated the bus is removed completely (kvm->buses[bus] = NULL); the devices its
 * other ranges led to are freed with it here, where 5.2 leaves them to no one (a leak, not
 * modelled). asi-check 0.1 counted devices with no memory behind them.
 */
export function kvmIoBusChange(sys: System, vmId: number, bus: number, register: boolean, out: Log): number {
  const vm = sys.kvm?.vms.get(vmId);
  if (!vm) return ENOENT;
  if (bus >= KVM_NR_BUSES) return EINVAL;
  const cur = vm.buses[bus];
  if (!cur) return register ? ENOMEM : 0;
  if (register && cur.devCount >= KVM_MAX_BUS_DEVS) return ENOSPC;
  if (!register && cur.devCount === 0) return 0;
  let devs = cur.devs.slice(0, register ? undefined : -1);
  if (register && !legacyMemory(sys)) {
    const dev = kmalloc(sys, IOEVENTFD_SIZE, vmObject(vm, `ioeventfd on bus ${bus} of VM ${vmId}`, false));
    if (typeof dev === 'number') return dev;
    devs = [...devs, dev.id];
  }
  const fresh = allocBus(sys, vm, cur.devCount + (register ? 1 : -1), devs);
  if (typeof fresh === 'number') {
    if (register) {
      for (const d of devs.slice(cur.devs.length)) kfree(sys, d);
      return fresh;
    }
    log(out, 'pr_err', 'kvm: failed to shrink bus, removing it completely');
  }
  vm.buses[bus] = typeof fresh === 'number' ? null : fresh;
  synchronizeSrcu(sys, vm, `synchronize_srcu_expedited(&kvm->srcu) in kvm_io_bus_${register ? 'register' : 'unregister'}_dev`);
  forgetRemapped(sys, cur.va, out);
  freeObject(sys, cur.obj, out);
  const gone = typeof fresh === 'number' ? cur.devs : cur.devs.slice(devs.length);
  for (const d of gone) freeObject(sys, d, out);
  return 0;
}

/** KVM_MAX_VCPUS, scaled down. */
export const KVM_MODEL_MAX_VCPUS = 4;

/** The vCPU objects vmx_create_vcpu allocates, by field, in 5.2's order. */
type VcpuObjects = Pick<Vcpu, 'vmx' | 'guestFpu' | 'run' | 'pioData' | 'apic' | 'apicRegs' | 'pml' | 'guestMsrs' | 'vmcs' | 'msrBitmap'>;

type VcpuAlloc = readonly [keyof VcpuObjects, () => KernelObject | number];

/**
 * vmx_create_vcpu's allocations (5.2): the vcpu_vmx (kvm_vcpu cache) and guest_fpu (x86_fpu cache),
 * kvm_vcpu_init's kvm_run page, pio_data page and lapic (kzalloc, kmalloc-512, with its register
 * page), the PML page with enable_pml, guest_msrs (kmalloc of a page, kmalloc-4k), the VMCS and its
 * MSR bitmap pages; accounted ones from the VMM's memcg. asi-check 0.1 kmalloc'd every page-sized
 * one and had no guest_fpu, register page or PML page.
 */
function vcpuAllocations(sys: System, vm: Vm, id: number): VcpuAlloc[] {
  // The vCPU's state is the VM's: sensitive to every other VM and the host.
  const object = (name: string) => vmObject(vm, `${name} of vCPU ${id}`, true);
  const legacy = legacyMemory(sys);
  const page = (name: string) => () => kvmAllocPages(sys, PAGE_SIZE, object(name));
  const allocs: (VcpuAlloc | false)[] = [
    ['vmx', () => cacheAlloc(sys, KVM_VCPU_CACHE, object('vcpu_vmx'))],
    !legacy && ['guestFpu', () => cacheAlloc(sys, X86_FPU_CACHE, object('guest_fpu'))],
    ['run', page('kvm_run')],
    ['pioData', page('pio_data')],
    // kvm_create_lapic: kzalloc(sizeof(*apic)), kmalloc-512, then its register page.
    ['apic', () => kmalloc(sys, mappedObjectSize(sys, KVM_LAPIC_SIZE), object('kvm_lapic'))],
    !legacy && ['apicRegs', page('apic->regs')],
    pmlEnabled(sys) && ['pml', page('pml_pg')],
    ['guestMsrs', () => kmalloc(sys, PAGE_SIZE, object('guest_msrs'))],
    ['vmcs', page('vmcs01')],
    ['msrBitmap', page('msr_bitmap')],
  ];
  return allocs.filter((a): a is VcpuAlloc => a !== false);
}

/**
 * kvm_vm_ioctl_create_vcpu -> vmx_create_vcpu: its allocations (vcpuAllocations), then
 * vmx_isolation_init (patch 23). Any failure frees what was allocated, in reverse.
 */
export function kvmCreateVcpu(sys: System, vmId: number, out: Log): number {
  const st = sys.kvm;
  const vm = st?.vms.get(vmId);
  if (!st || !vm) return ENOENT;
  if (vm.vcpus.length >= KVM_MODEL_MAX_VCPUS) return EINVAL;
  const id = st.nextId++;
  const objs: number[] = [];
  const got: Partial<Record<keyof VcpuObjects, number>> = {};
  const undo = (err: number) => {
    for (const o of objs.reverse()) kfree(sys, o);
    return err;
  };
  for (const [field, alloc] of vcpuAllocations(sys, vm, id)) {
    const o = alloc();
    if (typeof o === 'number') return undo(o);
    objs.push(o.id);
    got[field] = o.id;
  }
  const vcpu: Vcpu = {
    id,
    vm: vmId,
    vmx: got.vmx!,
    guestFpu: got.guestFpu ?? null,
    run: got.run!,
    pioData: got.pioData!,
    apic: got.apic!,
    apicRegs: got.apicRegs ?? null,
    pml: got.pml ?? null,
    guestMsrs: got.guestMsrs!,
    vmcs: got.vmcs!,
    msrBitmap: got.msrBitmap!,
    asi: null,
    asiMemslots: Array(KVM_ADDRESS_SPACE_NUM).fill(null),
    asiBuses: Array(KVM_NR_BUSES).fill(null),
    hostCr3: 0,
    running: false,
    inSrcu: false,
    thread: null,
    cpu: -1,
  };
  // The 2025 design has no per-vCPU ASI: its vCPUs enter their VM's domain (patch 21).
  const err = sys.asi25 ? 0 : vmxIsolationInit(sys, vcpu, out);
  if (err) return undo(err);
  st.vcpus.set(id, vcpu);
  vm.vcpus.push(id);
  return id;
}

/** vmx_free_vcpu: vmx_isolation_uninit first (patch 23), then the vCPU's memory. */
function vmxFreeVcpu(sys: System, vcpu: Vcpu, out: Log): void {
  vmxIsolationUninit(sys, vcpu, out);
  const objs = [vcpu.msrBitmap, vcpu.vmcs, vcpu.guestMsrs, vcpu.pml, vcpu.apicRegs, vcpu.apic, vcpu.pioData, vcpu.run, vcpu.guestFpu, vcpu.vmx];
  for (const o of objs) if (o !== null) freeObject(sys, o, out);
  sys.kvm!.vcpus.delete(vcpu.id);
}

/**
 * The last close of a VM: kvm_destroy_vm frees the buses, the vCPUs, the memslots (and the VMM the
 * guest memory), kvm->irq_srcu and kvm->srcu, and the VM.
 */
export function kvmDestroyVm(sys: System, vmId: number, out: Log): number {
  const vm = sys.kvm?.vms.get(vmId);
  if (!vm) return ENOENT;
  // Each vCPU's file holds the VM (kvm_get_kvm): closing the VM's own file while one of its vCPUs is
  // in KVM_RUN leaves kvm_destroy_vm to the last fput, after that ioctl returns.
  const busy = vcpusOf(sys, vm).find((v) => v.running);
  if (busy) mustWait(sys, `kvm_destroy_vm waits for vCPU ${busy.id}'s KVM_RUN on cpu${inFlightCpu(sys)} to drop its reference`, whileRunning(busy.id));
  // kvm_io_bus_destroy: each device's destructor, then the bus.
  for (const b of vm.buses) if (b) for (const o of [...b.devs, b.obj]) freeObject(sys, o, out);
  for (const v of vcpusOf(sys, vm)) vmxFreeVcpu(sys, v, out);
  for (const m of vm.memslots) freeMemslots(sys, m, out);
  for (const s of vm.slots) freeGuestMemory(sys, s, out);
  freeSrcu(sys, vm, out);
  // kvm_arch_destroy_vm on the 2025 design: asi_destroy(kvm->arch.asi), its vCPUs gone.
  if (vm.asi25 !== undefined) kvmArchDestroyVmAsi(execOf(sys, out), vm.asi25);
  freeKvmVmx(sys, vm, out);
  sys.kvm!.vms.delete(vmId);
  return 0;
}
