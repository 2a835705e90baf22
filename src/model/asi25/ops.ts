// What the op alphabet (ops.ts) means on the 2025 design: a caller of its API as the series' first
// user, KVM (patch 21), calls it. asi_create is a process's mm_alloc() and kvm_arch_init_vm's
// asi_init(kvm->mm, ASI_CLASS_KVM); the handle it returns (asi#N) is the mm's number. asi_enter is
// a critical section shaped as vmx_vcpu_enter_exit's: preempt_disable(), asi_enter(), the guest,
// asi_relax(), preempt_enable(); the CPU stays on the domain for the rest of the system call, as
// it does while KVM handles a VM exit. KVM runs it with IRQs off; the op leaves them on, as the
// API allows ("it's fine to access sensitive data from exceptions and interrupt handlers that
// occur during that time"), so that interrupts exercise the nesting hooks. asi_exit is
// kvm_arch_vcpu_ioctl_run's asi_exit() after vcpu_run. Each op on a CPU is a system call of its
// task, which runs in user space between ops, in its mm's userspace domain (patch 25, in
// ./runtime.ts; step.ts enters and leaves it). KVM's own ops run patch 21 (./kvm.ts). The ASI API
// calls of 2019 (asi_map of a caller's buffer, percpu, modules) have no counterpart: the 2025
// series maps by allocation, not by caller.

import { API_OPS, OP_KINDS, type OpKind } from '../ops.ts';
import type { Exec, Path } from '../asi/session.ts';
import { EBUSY, EINVAL } from '../mm/kernel.ts';
import { log } from '../trace.ts';
import type { System } from '../system.ts';
import { ASI_CLASS_KVM, asiDestroy, asiDestroyUserspace, asiEnter, asiInit, asiRelax, domainKey, mmAlloc, rt } from './runtime.ts';

/** The ops the 2025 design has: all but the 2019 API's calls (API_OPS), which return -ENOSYS on it. */
export const ASI25_OPS: ReadonlySet<OpKind> = new Set(OP_KINDS.filter((k) => !API_OPS.has(k)));

/**
 * The domain an op's asi#N names: the KVM domain of mm N, made by asi_create and not destroyed
 * since. A VM's domain is KVM's own (kvm->arch.asi): as with a vCPU's ASI in 2019, no op names it.
 */
export function callerDomainOf(sys: System, handle: number): string | undefined {
  return rt(sys).callerMms.has(handle) ? domainKey(handle, ASI_CLASS_KVM) : undefined;
}

/** The handles ops may name, for the generators. */
export function callerDomainHandles(sys: System): number[] {
  return [...rt(sys).callerMms];
}

/** The handle of the domain a CPU is on (its curr_asi's mm), or null on the unrestricted address space. */
export function domainHandleOn(sys: System, cpu: number): number | null {
  const key = rt(sys).currAsi[cpu];
  return key === null ? null : (rt(sys).domains.get(key)?.mm ?? null);
}

/**
 * mm_alloc() (whose mm_init makes the mm's userspace domain, patch 25), then asi_init(mm,
 * ASI_CLASS_KVM): the mm's number, or -errno.
 */
export function asiCreate25(k: Exec): number {
  const mm = mmAlloc(k);
  if (mm < 0) return mm;
  const { err } = asiInit(k, mm, ASI_CLASS_KVM);
  if (err) {
    asiDestroyUserspace(k, mm);
    return err;
  }
  rt(k.sys).callerMms.add(mm);
  return mm;
}

/**
 * asi_destroy by a caller that keeps the API's rule ("you must call asi_destroy() AFTER you are
 * certain all CPUs have exited the restricted address space"): -EBUSY while a CPU is on the domain
 * or a task targets it, which is the caller's to know, not the API's to check.
 */
export function asiDestroy25(k: Exec, handle: number): number {
  const key = callerDomainOf(k.sys, handle);
  if (!key) {
    log(k.out, 'note', `asi#${handle} names no live domain`);
    return EINVAL;
  }
  // Another CPU's op in flight may be about to enter it (KVM's teardown waits for its vCPUs).
  if (k.sys.racing) return EBUSY;
  const a = rt(k.sys);
  if (a.currAsi.includes(key) || [...a.tasks.values()].some((s) => s.target === key)) return EBUSY;
  asiDestroy(k, key);
  // mmput: the mm goes, and __mmdrop's asi_destroy_userspace with it.
  asiDestroyUserspace(k, handle);
  a.callerMms.delete(handle);
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
