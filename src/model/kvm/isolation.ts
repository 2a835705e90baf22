// arch/x86/kvm/vmx/isolation.c of RFC v2 patches 22-24: the address_space_isolation module
// parameter, one ASI per vCPU created by vmx_isolation_init and populated by
// vmx_isolation_init_mapping, destroyed by vmx_isolation_uninit. Every asi_map and asi_map_percpu is
// made in the patch's order, and each error returns at once as the patch does.

import { PAGE_SIZE, PGT_LEVEL_PTE } from '../mm/geometry.ts';
import { ASI_MAP_ALL, type PercpuRef, asiCreate, asiDestroy, asiMap, asiMapPercpu, asiMapRange, percpuAsked, percpuRef, recordApiCall } from '../asi/asi.ts';
import { ENXIO, STRUCT_PAGE_SIZE, structPageVa } from '../mm/kernel.ts';
import { type PercpuVar } from '../mm/percpu.ts';
import { type Log, log } from '../trace.ts';
import { type Asi, type System, mutant } from '../system.ts';
import { KVM_LAPIC_SIZE, KVM_VMX_SIZE, L1D_CACHE_ORDER, SRCU_DATA_SIZE, VCPU_VMX_SIZE, type Vcpu, type Vm, vaOf } from './vm.ts';

/** The module parameter (patch 22, 0444), read at vCPU creation: the design option of that name. */
function addressSpaceIsolation(sys: System): boolean {
  return sys.options.kvmAddressSpaceIsolation;
}

/** asi_map_module (patch 09): asi_map of the module's core_layout. */
function mapModule(sys: System, asi: Asi, module: number, out: Log): number {
  const m = sys.kernel.modules.get(module)!;
  const size = m.pages * PAGE_SIZE;
  return recordApiCall(sys, 'asi_map_module', asi, [{ ptr: m.va, size }], null, () => asiMapRange(sys, asi, m.va, size, PGT_LEVEL_PTE, out));
}

/** kvm->srcu.sda as patch 24 maps it: the VM's own srcu_data (asi-check 0.1: a static slot). */
function srcuData(sys: System, vm: Vm): PercpuRef {
  if (!vm.srcu) return percpuRef(sys, 'kvm_srcu_data')!;
  return { offset: sys.kernel.percpuObjects.get(vm.srcu.srcu)!.offset, size: SRCU_DATA_SIZE };
}

/**
 * vmx_isolation_init_mapping (patch 24): map_kernel_data, map_kvm_data, map_kvm_x86_data and
 * map_kvm_vmx_data, call by call. With enable_pml it maps `sizeof(struct page)` at vmx->pml_pg, a
 * struct page *: the page's descriptor in the vmemmap, not the log itself.
 */
function vmxIsolationInitMapping(sys: System, asi: Asi, vcpu: Vcpu, out: Log): number {
  const st = sys.kvm!;
  const vm = st.vms.get(vcpu.vm)!;
  // KVM's setup is a caller of the ASI API like any other: each call's contract is judged (CALLER-CONTRACT).
  const percpu = (p: PercpuRef) => () => recordApiCall(sys, 'asi_map_percpu', asi, percpuAsked(sys, p), null, () => asiMapPercpu(sys, asi, p, out));
  const cpuvar = (v: PercpuVar) => percpu(percpuRef(sys, v)!);
  const map = (ptr: number, size: number) => () => recordApiCall(sys, 'asi_map', asi, [{ ptr, size }], null, () => asiMap(sys, asi, ptr, size, out));
  const pml = vcpu.pml === null ? [] : [map(structPageVa(sys, sys.mem.allocs.get(sys.kernel.kmallocs.get(vcpu.pml)!.alloc)!.frames[0]), STRUCT_PAGE_SIZE)];
  const calls: (() => number)[] = [
    // vmx_isolation_map_kernel_data
    cpuvar('context_tracking'),
    cpuvar('irq_stat'),
    // vmx_isolation_map_kvm_data: asi_map_module(asi, "kvm"), then kvm->srcu.sda
    () => mapModule(sys, asi, st.modules.kvm, out),
    percpu(srcuData(sys, vm)),
    // vmx_isolation_map_kvm_x86_data: ASI_MAP_THIS_MODULE (kvm-intel), current_vcpu
    () => mapModule(sys, asi, st.modules.kvmIntel, out),
    cpuvar('current_vcpu'),
    // vmx_isolation_map_kvm_vmx_data
    map(mutant(sys, 'kvm-maps-first-vm') ? st.vms.values().next().value!.va : vm.va, KVM_VMX_SIZE),
    map(vaOf(sys, vcpu.vmx), VCPU_VMX_SIZE),
    map(vaOf(sys, vcpu.run), PAGE_SIZE),
    map(vaOf(sys, vcpu.apic), KVM_LAPIC_SIZE),
    map(vaOf(sys, st.l1dFlushPages), PAGE_SIZE << L1D_CACHE_ORDER),
    ...pml,
    map(vaOf(sys, vcpu.guestMsrs), PAGE_SIZE),
    map(vaOf(sys, vcpu.vmcs), PAGE_SIZE),
    map(vaOf(sys, vcpu.msrBitmap), PAGE_SIZE),
    map(vaOf(sys, vcpu.pioData), PAGE_SIZE),
  ];
  for (const call of calls) {
    const err = call();
    if (err) return err;
  }
  return 0;
}

/**
 * vmx_isolation_init (patch 23). On a mapping error the patch sets vcpu->asi = NULL and returns,
 * never calling asi_destroy: the ASI, its page-table pages and its ranges leak. With
 * kvmInitDestroysAsi the error path destroys it.
 */
export function vmxIsolationInit(sys: System, vcpu: Vcpu, out: Log): number {
  if (!addressSpaceIsolation(sys)) {
    vcpu.asi = null;
    return 0;
  }
  // VMX_ASI_MAP_FLAGS (patch 24): every optional core mapping.
  const id = asiCreate(sys, ASI_MAP_ALL, out);
  if (id < 0) {
    log(out, 'pr_debug', 'KVM: x86: Failed to create address space isolation');
    return ENXIO;
  }
  sys.kvm!.asis.add(id);
  const asi = sys.asis.get(id)!;
  const err = vmxIsolationInitMapping(sys, asi, vcpu, out);
  if (err) {
    if (sys.options.kvmInitDestroysAsi) destroy(sys, asi, out); // fixed: kvmInitDestroysAsi
    vcpu.asi = null;
    return err;
  }
  vcpu.asi = id;
  log(out, 'pr_info', 'KVM: x86: Running with isolated address space');
  return 0;
}

function destroy(sys: System, asi: Asi, out: Log): void {
  asiDestroy(sys, asi, out);
  sys.kvm!.asis.delete(asi.id);
}

/**
 * vmx_isolation_uninit (patch 23), called first in vmx_free_vcpu. asi_destroy flushes no TLB: the
 * Global entries a CPU filled through the vCPU's ASI outlive it, but they are the kernel's own
 * translations (the direct map), and the next asi_enter flushes Global entries (flushGlobalOnEnter).
 */
export function vmxIsolationUninit(sys: System, vcpu: Vcpu, out: Log): void {
  if (!addressSpaceIsolation(sys) || vcpu.asi === null) return;
  const asi = sys.asis.get(vcpu.asi);
  if (asi && !mutant(sys, 'kvm-uninit-keeps-asi')) {
    destroy(sys, asi, out);
  }
  vcpu.asi = null;
  log(out, 'pr_info', 'KVM: x86: End of isolated address space');
}
