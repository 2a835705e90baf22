// KVM on the 2025 design ([PATCH RFC v2 21/29] "KVM: x86: asi: Restricted address space for VM
// execution", with patch 07's __get_current_cr3_fast): a VM holds a reference to its VMM's
// KVM-class domain (kvm_arch_init_vm, kvm_arch_destroy_vm); vmx_vcpu_enter_exit enters it, reads
// HOST_CR3 and relaxes after VM-exit; the exit handlers run on it until something they touch
// faults; kvm_arch_vcpu_ioctl_run ends with asi_exit(). The rest of KVM (VMs, vCPUs, memslots,
// buses, the exit handlers' accesses) is kvm/'s, shared with the 2019 design.

import { type Cpu, formatCr3, kernelCr3, writeCr3 } from '../x86/cpu.ts';
import type { Exec, Path } from '../asi/session.ts';
import type { Log } from '../trace.ts';
import { type System, mutant } from '../system.ts';
import { ASI_CLASS_KVM, currAsiCr3, mmAlloc, asiUseMm, ASI_TAINT_GUEST_CONTROL, ASI_TAINT_KERNEL_DATA, ASI_TAINT_OTHER_MM_CONTROL, ASI_TAINT_OTHER_MM_DATA, ASI_TAINT_USER_DATA, asiDestroy, asiEnter, asiInCriticalSection, asiInit, asiInitClass, asiRelax, bugOn, domainCr3, exposed, rt, warnOn } from './runtime.ts';

/**
 * kvm_x86_init_asi_class (patch 21), at kvm_x86_vendor_init: on a CPU without
 * X86_FEATURE_IBPB_ON_VMEXIT (every Intel part), `policy.set = ASI_TAINT_GUEST_CONTROL`
 * replaces the ASI_TAINT_GUEST_DATA it was initialised with.
 */
export function kvmX86InitAsiClass(sys: System, out: Log): number {
  const policy = {
    protectData: ASI_TAINT_KERNEL_DATA | ASI_TAINT_OTHER_MM_DATA | ASI_TAINT_USER_DATA,
    preventControl: ASI_TAINT_OTHER_MM_CONTROL,
    set: ASI_TAINT_GUEST_CONTROL,
  };
  return asiInitClass(sys, ASI_CLASS_KVM, policy, out);
}

/**
 * The VMM process a VM belongs to, by its memcg: VMs created in one memory cgroup share a VMM
 * (kvm->mm, and so its KVM domain, with one reference per VM), whose vCPU threads are its threads.
 * The model makes its mm, with the userspace domain mm_init gives it (patch 25), with its first
 * VM; the process itself lives on. The mm's number, or -errno.
 */
function vmmMm(k: Exec, memcg: number): number {
  const a = rt(k.sys);
  const mm = a.vmms.get(memcg);
  if (mm !== undefined) return mm;
  const made = mmAlloc(k);
  if (made < 0) return made;
  a.vmms.set(memcg, made);
  a.mmUsers.set(made, 1);
  return made;
}

/** kvm_arch_init_vm's `asi_init(kvm->mm, ASI_CLASS_KVM, &kvm->arch.asi)`: the domain's key, or -errno. */
export function kvmArchInitVmAsi(k: Exec, memcg: number): string | number {
  const mm = vmmMm(k, memcg);
  if (mm < 0) return mm;
  const { err, domain } = asiInit(k, mm, ASI_CLASS_KVM);
  return err || domain!;
}

/** A vCPU thread of the VMM (made at its first KVM_RUN): a thread of the VMM process, on its mm. */
export function kvmVcpuThreadMm(k: Exec, task: number, memcg: number): number {
  const mm = vmmMm(k, memcg);
  if (mm >= 0) asiUseMm(k.sys, task, mm);
  return mm;
}

/** kvm_arch_destroy_vm's (and kvm_arch_init_vm's error path's) `asi_destroy(kvm->arch.asi)`. */
export function kvmArchDestroyVmAsi(k: Exec, domain: string): void {
  asiDestroy(k, domain);
}

/**
 * __get_current_cr3_fast (patch 07): the restricted CR3 while curr_asi is set. As posted it WARNs
 * when called inside the critical section, the only place patch 21 calls it, although its comment
 * says the restricted CR3 is unstable *outside* it; currentCr3WarnsOutside warns there instead.
 */
export function getCurrentCr3Fast25(k: Exec): number {
  const cr3 = currAsiCr3(k.sys, k.cpu.id);
  const asi = rt(k.sys).currAsi[k.cpu.id] !== null;
  warnOn(k, k.cpu.preemptCount === 0 && !k.cpu.irqsDisabled, 'VM_WARN_ON(in_nmi() || preemptible())');
  const unstable = k.sys.options.currentCr3WarnsOutside ? !asiInCriticalSection(k) : asiInCriticalSection(k);
  warnOn(k, asi && unstable, `VM_WARN_ON_ONCE(asi && ${k.sys.options.currentCr3WarnsOutside ? '!' : ''}asi_in_critical_section()) in __get_current_cr3_fast`);
  bugOn(k, cr3 !== k.cpu.cr3, 'VM_BUG_ON(cr3 != __read_cr3())');
  return cr3;
}

/** Where KVM's rule for the CPU it runs on is broken: an ASI-KVM event (the invariant reads it). */
function kvmRule(sys: System, cpu: Cpu, what: string): void {
  sys.ghost.events.push({ invariant: 'ASI-KVM', message: `cpu${cpu.id}: ${what}` });
}

/** The guest is entered on its VM's domain: curr_asi is kvm->arch.asi and CR3 its restricted one. */
function checkGuestEntry(k: Exec, domain: string, vcpu: number): void {
  const a = rt(k.sys);
  const d = a.domains.get(domain);
  if (a.currAsi[k.cpu.id] !== domain || !d || k.cpu.cr3 !== domainCr3(d)) kvmRule(k.sys, k.cpu, `vCPU ${vcpu} enters its guest with curr_asi ${a.currAsi[k.cpu.id] ?? 'NULL'} on cr3 ${formatCr3(k.sys, k.cpu.cr3)}, not on its VM's ${domain}`);
}

/** VM-exit loads the CR3 curr_asi names. */
function checkExitCr3(k: Exec, hostCr3: number, vcpu: number): void {
  if (hostCr3 !== currAsiCr3(k.sys, k.cpu.id)) kvmRule(k.sys, k.cpu, `VM-exit of vCPU ${vcpu} loads HOST_CR3 ${formatCr3(k.sys, hostCr3)} while curr_asi is ${rt(k.sys).currAsi[k.cpu.id] ?? 'NULL'}`);
}

/**
 * vmx_vcpu_enter_exit (patch 21), IRQs off: asi_enter(vcpu->kvm->arch.asi), HOST_CR3 refreshed
 * from __get_current_cr3_fast() after it (the patch moves that here from vmx_vcpu_run), VM-enter,
 * the guest, VM-exit loading HOST_CR3 (vcpu.hostCr3, loaded_vmcs->host_state.cr3), asi_relax().
 */
export function* vmxVcpuEnterExit25(k: Exec, domain: string, vcpu: { readonly id: number; hostCr3: number }): Path {
  // "this must be done after asi_enter(), as it changes CR3 when switching address spaces"
  const early = mutant(k.sys, 'asi25-kvm-host-cr3-before-enter');
  const refresh = () => {
    const cr3 = getCurrentCr3Fast25(k);
    if (cr3 !== vcpu.hostCr3) vcpu.hostCr3 = cr3;
  };
  if (early) refresh();
  yield* asiEnter(k, domain);
  if (!early) refresh();
  yield 'vmcs_writel(HOST_CR3, __get_current_cr3_fast())';
  checkGuestEntry(k, domain, vcpu.id);
  exposed(rt(k.sys), k.cpu.id, `guest:${rt(k.sys).domains.get(domain)?.mm}`);
  checkExitCr3(k, vcpu.hostCr3, vcpu.id);
  // VM-exit loads HOST_CR3; the host's TLB entries are kept (VPID tags the guest's).
  writeCr3(k.cpu, vcpu.hostCr3, true);
  yield 'VM-exit';
  asiRelax(k);
}

/** Where the CPU is after an exit was handled: on a domain still, or not (the coverage table's outcome). */
export function restricted(k: Exec): boolean {
  return rt(k.sys).currAsi[k.cpu.id] !== null;
}

/** KVM_RUN's return to user space: kvm_arch_vcpu_ioctl_run's asi_exit() has left the domain. */
export function checkUserReturn(k: Exec, vcpu: number): void {
  const key = rt(k.sys).currAsi[k.cpu.id];
  if (key !== null || k.cpu.cr3 !== kernelCr3(k.sys)) kvmRule(k.sys, k.cpu, `KVM_RUN of vCPU ${vcpu} returns to user space with curr_asi ${key ?? 'NULL'} on cr3 ${formatCr3(k.sys, k.cpu.cr3)}`);
}
