// What the op alphabet (ops.ts) means on the 2025 design: a caller of its API as the series' one
// user, KVM (patch 21), calls it. asi_create is a process's mm_alloc() and kvm_arch_init_vm's
// asi_init(kvm->mm, ASI_CLASS_KVM); the handle it returns (asi#N) is the mm's number. asi_enter is
// a critical section shaped as vmx_vcpu_enter_exit's: preempt_disable(), asi_enter(), the guest,
// asi_relax(), preempt_enable(); the CPU stays on the restricted address space afterwards, as it
// does while KVM handles the VM exit. KVM runs it with IRQs off; the op leaves them on, as the API
// allows ("it's fine to access sensitive data from exceptions and interrupt handlers that occur
// during that time"), so that interrupts exercise the nesting hooks. asi_exit is
// kvm_arch_vcpu_ioctl_run's asi_exit() after vcpu_run. The ASI
// API calls of 2019 (asi_map of a caller's buffer, percpu, modules) and its KVM have no
// counterpart: the 2025 series maps by allocation, not by caller.

import type { OpKind } from '../ops.ts';
import type { Exec, Path } from '../asi/session.ts';
import { EBUSY, EINVAL } from '../mm/kernel.ts';
import { log, type Log } from '../trace.ts';
import type { System } from '../system.ts';
import { ASI_CLASS_KVM, ASI_TAINT_GUEST_CONTROL, ASI_TAINT_KERNEL_DATA, ASI_TAINT_OTHER_MM_CONTROL, ASI_TAINT_OTHER_MM_DATA, ASI_TAINT_USER_DATA, asiDestroy, asiEnter, asiInit, asiInitClass, asiRelax, domainKey, rt } from './runtime.ts';

/** The ops the 2025 design has; the others return -ENOSYS on it. */
export const ASI25_OPS: ReadonlySet<OpKind> = new Set<OpKind>([
  'asi_create',
  'asi_destroy',
  'asi_enter',
  'asi_exit',
  'interrupt',
  'access',
  'schedule',
  'task_create',
  'task_exit',
  'vmalloc',
  'vfree',
  'kmalloc',
  'kfree',
  'module_load',
  'module_unload',
  'fail_alloc',
]);

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

/** The domain an op's asi#N names: mm N's KVM domain, while someone holds a reference to it. */
export function kvmDomainOf(sys: System, handle: number): string | undefined {
  const key = domainKey(handle, ASI_CLASS_KVM);
  return (rt(sys).domains.get(key)?.refCount ?? 0) > 0 ? key : undefined;
}

/** The handles of the live KVM domains, for the generators. */
export function kvmDomainHandles(sys: System): number[] {
  return [...rt(sys).domains.values()].filter((d) => d.refCount > 0 && d.classId === ASI_CLASS_KVM).map((d) => d.mm);
}

/** The handle of the domain a CPU is on (its curr_asi's mm), or null on the unrestricted address space. */
export function domainHandleOn(sys: System, cpu: number): number | null {
  const key = rt(sys).currAsi[cpu];
  return key === null ? null : (rt(sys).domains.get(key)?.mm ?? null);
}

/** mm_alloc() of a new process, then asi_init(mm, ASI_CLASS_KVM): the mm's number, or -errno. */
export function asiCreate25(k: Exec): number {
  const a = rt(k.sys);
  const mm = a.nextMm++;
  const { err } = asiInit(k, mm, ASI_CLASS_KVM);
  return err || mm;
}

/**
 * asi_destroy by a caller that keeps the API's rule ("you must call asi_destroy() AFTER you are
 * certain all CPUs have exited the restricted address space"): -EBUSY while a CPU is on the domain
 * or a task targets it, which is the caller's to know, not the API's to check.
 */
export function asiDestroy25(k: Exec, handle: number): number {
  const key = kvmDomainOf(k.sys, handle);
  if (!key) {
    log(k.out, 'note', `asi#${handle} names no live domain`);
    return EINVAL;
  }
  // Another CPU's op in flight may be about to enter it (KVM's teardown waits for its vCPUs).
  if (k.sys.racing) return EBUSY;
  const a = rt(k.sys);
  if (a.currAsi.includes(key) || [...a.tasks.values()].some((s) => s.target === key)) return EBUSY;
  asiDestroy(k, key);
  return 0;
}

/** A critical section, from preempt_disable() to preempt_enable() (see above). */
export function* criticalSection(k: Exec, key: string): Path {
  k.cpu.preemptCount++;
  yield* asiEnter(k, key);
  yield 'VMLAUNCH (the guest runs)';
  asiRelax(k);
  k.cpu.preemptCount--;
}
