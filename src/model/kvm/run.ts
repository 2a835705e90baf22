// KVM_RUN as Linux 5.2 runs it with RFC v2 patches 21, 25 and 26, as micro-steps
// (arch/x86/kvm/x86.c vcpu_run/vcpu_enter_guest, arch/x86/kvm/vmx/vmx.c vmx_vcpu_run): each `yield`
// is a point where an interrupt, exception, NMI or preemption may land (src/model/x86/entry.ts).

import { ASI_SESSION_STATE_ABORTED, ASI_SESSION_STATE_ACTIVE, ASI_SESSION_STATE_INACTIVE, SESSION_STATE_NAMES, type AccessKind, cr3Root, formatCr3, kernelCr3, writeCr3 } from '../x86/cpu.ts';
import { checkSchedulable, inAtomic } from '../x86/context.ts';
import { asCaller, asiRemap, recordApiCall } from '../asi/asi.ts';
import { type Exec, type Path, type PreemptNotifier, asiBarrierEnd, asiEnter, asiExit, getCurrentCr3Fast } from '../asi/session.ts';
import { accessVa, callIdtGate, contextSwitch, deliver, drive, localIrqEnable, runnableTask } from '../x86/entry.ts';
import { EBUSY, ECPUDEAD, directMapVa, taskCreate, taskExit } from '../mm/kernel.ts';
import { type Log, log } from '../trace.ts';
import { type Asi, type GhostEvent, type System, mutant } from '../system.ts';
import { KVM_ADDRESS_SPACE_NUM, KVM_FAST_MMIO_BUS, KVM_IO_BUS_SIZE, KVM_IO_RANGE_SIZE, KVM_MEMSLOTS_SIZE, KVM_MMIO_BUS, KVM_NR_BUSES, KVM_PIO_BUS, KVM_REMAP_CALLER, type Vcpu, type Vm, forgetPointer, vaOf, whileRunning } from './vm.ts';
import { kvVa } from '../mm/slab.ts';
import { checkUserReturn, kvmVcpuThreadMm, restricted, vmxVcpuEnterExit25 } from '../asi25/kvm.ts';
import { asiExit as asiExit25 } from '../asi25/runtime.ts';
import { formatVa } from '../mm/geometry.ts';
import { inFlightCpu, mustWait, waitForTask } from '../x86/smp.ts';

/** VM-exit reasons the model's guests take (the basic exit reasons of the Intel SDM, vol. 3C, App. C). */
export const EXIT_REASONS = ['ept-violation', 'io', 'mmio', 'msr', 'cpuid', 'hlt', 'external-interrupt', 'nmi', 'preemption-timer'] as const;
export type ExitReason = (typeof EXIT_REASONS)[number];

function kvmEvent(sys: System, invariant: GhostEvent['invariant'], message: string): void {
  sys.ghost.events.push({ invariant, message });
}

/**
 * patch 26's asi_remap(vcpu->asi, &ptrs[i], cur, size), by KVM's remap bookkeeping (a caller of the
 * ASI API of its own, judged by CALLER-CONTRACT): ptrs[i] holds what the call leaves in it.
 */
function remap(sys: System, asi: Asi, ptrs: (number | null)[], i: number, cur: number, size: number, out: Log): number {
  return asCaller(sys, KVM_REMAP_CALLER, () =>
    recordApiCall(sys, 'asi_remap', asi, [{ ptr: cur, size }], ptrs[i], () => {
      const r = asiRemap(sys, asi, ptrs[i], cur, size, out);
      ptrs[i] = r.cur;
      return r.ret;
    }),
  );
}

/**
 * A pointer kernel code read from shared data (kvm->memslots[i], kvm->buses[i]), with the object it
 * named then: a use after that object was freed is a use after free (NO-UAF), whatever the memory
 * holds now.
 */
interface ReadPointer {
  readonly what: string;
  readonly id: number;
  readonly va: number;
  readonly where: string;
}

function readPointer(k: Exec, what: string, id: number, va: number): ReadPointer {
  const where = `vcpu_isolation_enter reads ${what}`;
  k.racePoint?.(where);
  return { what, id, va, where };
}

/** NO-UAF: the object `p` named is still allocated when `use` touches it. */
function usePointer(k: Exec, p: ReadPointer, use: string): void {
  const { sys } = k;
  if (sys.kernel.kmallocs.has(p.id) || sys.kernel.vmAreas.has(p.id)) return;
  const on = sys.ghost.freedOn.get(p.id);
  const by = on === undefined ? 'before' : on === k.cpu.id ? `on cpu${on} itself` : on < 0 ? 'in process context' : `on cpu${on}`;
  kvmEvent(sys, 'NO-UAF', `cpu${k.cpu.id}: ${use} uses ${p.what} (#${p.id} at ${formatVa(sys.g, p.va)}), freed ${by} after ${p.where}`);
}

/**
 * vcpu_isolation_enter (patches 25, 26): remap what changed, then asi_enter. Runs with IRQs off,
 * outside vcpu_run's SRCU read section (kvmIsolationEnterInSrcu: inside it); true when it oopses.
 */
function* vcpuIsolationEnter(k: Exec, vcpu: Vcpu, vm: Vm): Path<boolean> {
  const { sys, out } = k;
  if (vcpu.asi === null) return false;
  const asi = sys.asis.get(vcpu.asi)!;
  for (let i = 0; i < KVM_ADDRESS_SPACE_NUM; i++) {
    const slots = readPointer(k, `kvm->memslots[${i}]`, vm.memslots[i].id, kvVa(sys, vm.memslots[i]));
    const cur = slots.va;
    if (vcpu.asiMemslots[i] === cur) continue;
    log(out, 'pr_debug', `remapping kvm memslots[${i}]`);
    usePointer(k, slots, 'asi_remap');
    const slot = mutant(sys, 'kvm-remap-memslots-slot0') ? 0 : i;
    const err = remap(sys, asi, vcpu.asiMemslots, slot, cur, KVM_MEMSLOTS_SIZE, out);
    if (err) log(out, 'pr_debug', `failed to map kvm memslots[${i}]: error ${err}`);
    yield `asi_remap(memslots[${i}])`;
  }
  for (let i = 0; i < KVM_NR_BUSES; i++) {
    const bus = vm.buses[i];
    const read = bus && readPointer(k, `kvm->buses[${i}]`, bus.obj, bus.va);
    if ((bus?.va ?? null) === vcpu.asiBuses[i]) continue;
    if (!bus) {
      // sizeof(*bus) + bus->dev_count * sizeof(struct kvm_io_range) with bus == NULL.
      if (!sys.options.kvmRemapChecksNullBus) { // fixed: kvmRemapChecksNullBus
        kvmEvent(sys, 'KVM-ENTRY', `cpu${k.cpu.id}: vcpu_isolation_enter reads bus->dev_count of kvm->buses[${i}] == NULL (the bus was removed by a failed kvm_io_bus_unregister_dev): kernel oops`);
        return true;
      }
      // The fix: nothing to map, and the old bus is unmapped.
      forgetPointer(sys, asi, vcpu.asiBuses, i, out);
      continue;
    }
    log(out, 'pr_debug', `remapped kvm buses[${i}]`);
    usePointer(k, read!, 'bus->dev_count');
    const err = remap(sys, asi, vcpu.asiBuses, i, bus.va, KVM_IO_BUS_SIZE + bus.devCount * KVM_IO_RANGE_SIZE, out);
    if (err) log(out, 'pr_debug', `failed to map kvm buses[${i}]: error ${err}`);
    yield `asi_remap(buses[${i}])`;
  }
  const err = yield* asiEnter(k, asi);
  if (err) log(out, 'pr_debug', `KVM isolation failed: error ${err}`);
  return false;
}

/** vcpu_isolation_exit, as kvm_may_access_sensitive_data calls it (patch 25). */
function* kvmMayAccessSensitiveData(k: Exec, vcpu: Vcpu): Path {
  if (vcpu.asi === null || mutant(k.sys, 'kvm-run-skips-exit')) return;
  yield* asiExit(k, vcpu.asi);
}

/** kvm_arch_vcpu_put (5.2): vmx_vcpu_put, then patch 25's kvm_may_access_sensitive_data. */
function* kvmArchVcpuPut(k: Exec, vcpu: Vcpu): Path {
  yield* kvmMayAccessSensitiveData(k, vcpu);
  yield 'kvm_arch_vcpu_put';
}

/**
 * kvm_arch_vcpu_load -> vmx_vcpu_load (5.2): on another CPU than last time, vmx_vcpu_load_vmcs
 * clears the VMCS on the old CPU (loaded_vmcs_clear) and writes this CPU's host state
 * (HOST_TR_BASE, HOST_GDTR_BASE); HOST_CR3 is vmx_vcpu_run's. No isolation code runs here.
 */
function kvmArchVcpuLoad(k: Exec, vcpu: Vcpu): void {
  if (vcpu.cpu !== k.cpu.id) log(k.out, 'note', `vCPU ${vcpu.id}: vmx_vcpu_load on cpu${k.cpu.id}${vcpu.cpu < 0 ? '' : `, migrated from cpu${vcpu.cpu}`}`);
  vcpu.cpu = k.cpu.id;
}

/** kvm_sched_out / kvm_sched_in (5.2 virt/kvm/kvm_main.c), the preempt notifiers vcpu_load registers. */
function kvmPreemptNotifier(vcpu: Vcpu): PreemptNotifier {
  return {
    task: vcpu.thread!,
    *schedOut(k) {
      yield* kvmArchVcpuPut(k, vcpu);
      yield 'kvm_sched_out';
    },
    *schedIn(k) {
      kvmArchVcpuLoad(k, vcpu);
      yield 'kvm_sched_in';
    },
  };
}

/**
 * The vCPU thread comes to the op's CPU before it issues KVM_RUN. Its first KVM_RUN records it
 * (vcpu->pid, 5.2 kvm_vcpu_ioctl); the model creates it then, as the VMM's pthread_create would
 * have, and again if that thread has exited (a new thread takes the vCPU over, as 5.2 allows). A
 * thread running on another CPU migrates: that CPU schedules another task first.
 */
export function vcpuThreadOn(k: Exec, vcpu: Vcpu): number {
  const { sys, cpu } = k;
  if (vcpu.thread === null || !sys.kernel.tasks.has(vcpu.thread)) {
    // The VMM's thread, in the VMM's memcg.
    const memcg = sys.kvm!.vms.get(vcpu.vm)!.memcg;
    const t = taskCreate(sys, k, { memcg });
    if (t < 0) return t;
    // The 2025 design: a thread of the VMM, on its mm (and its userspace domain).
    const mm = sys.asi25 ? kvmVcpuThreadMm(k, t, memcg) : 0;
    if (mm < 0) {
      taskExit(sys, t, k);
      return mm;
    }
    vcpu.thread = t;
  }
  const on = sys.kernel.current.indexOf(vcpu.thread);
  if (on === cpu.id) return 0;
  // vcpu->mutex, or the thread in kernel code on the CPU in flight: this ioctl comes after.
  if (vcpu.running) mustWait(sys, `vcpu->mutex: vCPU ${vcpu.id} is in KVM_RUN on cpu${inFlightCpu(sys)}`, whileRunning(vcpu.id));
  else waitForTask(sys, vcpu.thread, `vCPU ${vcpu.id}'s thread`);
  if (on >= 0) {
    const there: Exec = { ...k, cpu: sys.cpus[on] };
    const next = runnableTask(there);
    if (next === undefined || sys.cpus[on].dead || inAtomic(sys.cpus[on])) return EBUSY;
    sys.exec = there.cpu;
    drive(there, 'schedule', contextSwitch(there, next));
    sys.exec = cpu;
  }
  drive(k, 'schedule', contextSwitch(k, vcpu.thread));
  return cpu.dead ? ECPUDEAD : 0;
}

/** vmx_isolation_barrier_begin (patch 25): asi_barrier_begin() whatever the session's state. */
function vmxIsolationBarrierBegin(k: Exec, vcpu: Vcpu): void {
  if (vcpu.asi !== null && !mutant(k.sys, 'kvm-barrier-begin-skipped')) k.cpu.session.retryAbort = true;
}

/** The CPU runs on the vCPU's ASI with the session ACTIVE on it. */
function onOwnAsi(k: Exec, asi: Asi): boolean {
  const s = k.cpu.session;
  return cr3Root(k.cpu.cr3) === asi.pgd && s.state === ASI_SESSION_STATE_ACTIVE && s.asi === asi.id;
}

/**
 * KVM-ENTRY at VM-enter: the vCPU's ASI with the session ACTIVE on it, or, when isolation failed or
 * was aborted, the kernel CR3 (which KVM_RUN must then report: checkReported). True when isolated.
 */
function checkEntry(k: Exec, vcpu: Vcpu): boolean {
  const { sys, cpu } = k;
  const s = cpu.session;
  const root = cr3Root(cpu.cr3);
  const asi = vcpu.asi === null ? undefined : sys.asis.get(vcpu.asi);
  const on = () => `cpu${cpu.id} enters the guest of vCPU ${vcpu.id} on cr3 ${formatCr3(sys, cpu.cr3)}, session ${SESSION_STATE_NAMES[s.state]} on asi#${s.asi}`;
  if (!asi) {
    if (root !== sys.kernel.pgd) kvmEvent(sys, 'KVM-ENTRY', `${on()}: the vCPU has no ASI`);
    return false;
  }
  const isolated = onOwnAsi(k, asi);
  const degraded = root === sys.kernel.pgd && s.state !== ASI_SESSION_STATE_ACTIVE;
  if (!isolated && !degraded) kvmEvent(sys, 'KVM-ENTRY', `${on()}, not the vCPU's asi#${asi.id}`);
  if (degraded) log(k.out, 'note', `cpu${cpu.id}: vCPU ${vcpu.id} enters the guest without isolation`);
  const stale = isolated ? unremapped(sys, vcpu, asi) : undefined;
  if (stale) kvmEvent(sys, 'KVM-ENTRY', `${on()}: ${stale}`);
  return isolated;
}

/**
 * Patch 26's bookkeeping at an isolated VM-enter: each vcpu->asi_memslots[i] and asi_buses[i] is the
 * VM's current array or bus, mapped in the ASI; NULL where its remap failed (retried at the next
 * entry) or the bus is gone.
 */
function unremapped(sys: System, vcpu: Vcpu, asi: Asi): string | undefined {
  const vm = sys.kvm!.vms.get(vcpu.vm)!;
  // At every isolated VM-enter: the words are made only for a pointer that is wrong.
  for (let i = 0; i < vm.memslots.length; i++) {
    const m = unremappedPointer(asi, 'memslots', i, kvVa(sys, vm.memslots[i]), vcpu.asiMemslots[i]);
    if (m) return m;
  }
  for (let i = 0; i < vm.buses.length; i++) {
    const m = unremappedPointer(asi, 'buses', i, vm.buses[i]?.va ?? null, vcpu.asiBuses[i]);
    if (m) return m;
  }
  return undefined;
}

function unremappedPointer(asi: Asi, array: 'memslots' | 'buses', i: number, current: number | null, remapped: number | null): string | undefined {
  if (remapped === null || (remapped === current && asi.ranges.some((r) => r.ptr === current))) return undefined;
  const hex = (va: number | null) => (va === null ? 'NULL' : va.toString(16));
  const name = `${array}[${i}]`;
  return remapped !== current ? `vcpu->asi_${name} is ${hex(remapped)}, kvm->${name} is ${hex(current)}` : `kvm->${name} (${hex(current)}) is not mapped in asi#${asi.id}`;
}

/**
 * KVM-EXIT-CR3 at VM-exit: HOST_CR3 is the isolation CR3 only while the session is ACTIVE on the
 * vCPU's ASI, or ABORTED inside the isolation barrier (asi_barrier_end restores); otherwise the kernel's.
 */
function checkExitCr3(k: Exec, vcpu: Vcpu): void {
  const { sys, cpu } = k;
  const s = cpu.session;
  const root = cr3Root(vcpu.hostCr3);
  const asi = vcpu.asi === null ? undefined : sys.asis.get(vcpu.asi);
  const ok =
    root === sys.kernel.pgd
      ? s.state !== ASI_SESSION_STATE_ACTIVE
      : asi !== undefined && root === asi.pgd && s.asi === asi.id && (s.state === ASI_SESSION_STATE_ACTIVE || (s.state === ASI_SESSION_STATE_ABORTED && s.retryAbort));
  if (!ok) kvmEvent(sys, 'KVM-EXIT-CR3', `cpu${cpu.id}: VM-exit of vCPU ${vcpu.id} loads HOST_CR3 ${formatCr3(sys, vcpu.hostCr3)} while the session is ${SESSION_STATE_NAMES[s.state]} on asi#${s.asi} (retry_abort ${s.retryAbort})`);
}

/**
 * vmx_vcpu_run (5.2 with patch 25): HOST_CR3 from __get_current_cr3_fast() (patch 21: the isolation
 * CR3 while ACTIVE), then the isolation barrier, VM-enter, the guest, VM-exit loading HOST_CR3, the
 * barrier's end. The RFC takes the barrier after HOST_CR3 is read: an NMI in between ends the
 * session and VM-exit still loads the isolation CR3. kvmBarrierBeforeHostCr3 takes it first.
 */
function* vmxVcpuRun(k: Exec, vcpu: Vcpu, flags: RunFlags): Path<boolean> {
  const early = k.sys.options.kvmBarrierBeforeHostCr3;
  const asi = vcpu.asi === null ? undefined : k.sys.asis.get(vcpu.asi);
  // fixed: kvmReportsUnisolatedEntry, what the barrier's begin saw.
  let activeAtBegin = false;
  const begin = () => {
    vmxIsolationBarrierBegin(k, vcpu);
    activeAtBegin = asi !== undefined && onOwnAsi(k, asi);
  };
  if (early) {
    begin(); // fixed: kvmBarrierBeforeHostCr3
    yield 'vmx_isolation_barrier_begin';
  }
  const cr3 = mutant(k.sys, 'kvm-host-cr3-ignores-asi') ? kernelCr3(k.sys) : getCurrentCr3Fast(k);
  if (cr3 !== vcpu.hostCr3 && !(mutant(k.sys, 'kvm-host-cr3-written-once') && vcpu.hostCr3)) vcpu.hostCr3 = cr3;
  yield 'vmcs_writel(HOST_CR3, __get_current_cr3_fast())';
  if (!early) {
    begin();
    yield 'vmx_isolation_barrier_begin';
  }
  const isolated = checkEntry(k, vcpu);
  checkExitCr3(k, vcpu);
  // VM-exit loads HOST_CR3; the host's TLB entries are kept (VPID tags the guest's).
  writeCr3(k.cpu, vcpu.hostCr3, true);
  yield 'VM-exit';
  if (k.sys.options.kvmReportsUnisolatedEntry && asi && (!activeAtBegin || k.cpu.session.state !== ASI_SESSION_STATE_ACTIVE)) flags.unisolated = true;
  if (vcpu.asi !== null && !mutant(k.sys, 'kvm-barrier-end-skipped')) yield* asiBarrierEnd(k);
  return isolated;
}

/** How an exit went for isolation (the coverage table's outcome column, read from the trace). */
export const EXIT_OUTCOMES = ['stays isolated', 'leaves isolation', 'entered unisolated', 'oops'] as const;

function exitOutcome(k: Exec, isolated: boolean): (typeof EXIT_OUTCOMES)[number] {
  if (k.cpu.dead) return 'oops';
  if (!isolated) return 'entered unisolated';
  // The 2025 design: still on the VM's domain after the handler, or left it on a fault.
  if (k.sys.asi25) return restricted(k) ? 'stays isolated' : 'leaves isolation';
  return k.cpu.session.state === ASI_SESSION_STATE_ACTIVE ? 'stays isolated' : 'leaves isolation';
}

/** The data the exit handler for `reason` touches (5.2's vmx_handle_exit table), through the current CR3. */
function* handleExit(k: Exec, vcpu: Vcpu, vm: Vm, reason: ExitReason, n: number, wake: number): Path {
  const { sys } = k;
  const touch = (va: number, kind: AccessKind) => {
    accessVa(k, va, kind, false);
  };
  const bus = (i: number) => {
    // kvm_io_bus_read/write: srcu_dereference(kvm->buses[i]), a NULL bus is -ENOMEM; then the device
    // the range leads to (ioeventfd_write reads its _ioeventfd), which patches 24 and 26 do not map.
    const b = vm.buses[i];
    if (!b) return;
    touch(b.va, 'read');
    if (b.devs.length) touch(vaOf(sys, b.devs[n % b.devs.length]), 'read');
  };
  switch (reason) {
    case 'ept-violation': {
      // handle_ept_violation -> kvm_mmu_page_fault: __gfn_to_memslot on kvm->memslots, then the guest page.
      touch(kvVa(sys, vm.memslots[0]), 'read');
      const slot = vm.slots[n % Math.max(1, vm.slots.length)];
      if (slot) touch(directMapVa(sys, sys.mem.allocs.get(slot.alloc)!.frames[0]), 'read');
      else bus(KVM_MMIO_BUS);
      break;
    }
    case 'io':
      touch(vaOf(sys, vcpu.pioData), 'write');
      bus(KVM_PIO_BUS);
      break;
    case 'mmio':
      bus(KVM_FAST_MMIO_BUS);
      bus(KVM_MMIO_BUS);
      break;
    case 'msr':
      touch(vaOf(sys, vcpu.vmx), 'read');
      touch(vaOf(sys, vcpu.guestMsrs), 'write');
      break;
    case 'cpuid':
      touch(vaOf(sys, vcpu.vmx), 'read');
      break;
    case 'preemption-timer':
      touch(vaOf(sys, vcpu.apic), 'write');
      break;
    case 'hlt':
      touch(vaOf(sys, vcpu.vmx), 'write');
      break;
    case 'external-interrupt':
    case 'nmi':
      break;
  }
  yield `handle_exit(${reason})`;
  if (reason === 'hlt') yield* vcpuBlock(k, vcpu, wake);
}

/**
 * vcpu_block -> kvm_vcpu_block -> schedule(): prepare_task_switch aborts isolation (patch 02) and
 * kvm_sched_out's kvm_arch_vcpu_put calls kvm_may_access_sensitive_data (patch 25); another task
 * runs until the vCPU is woken. try_to_wake_up may put the thread on CPU `wake`: that CPU switches
 * to it (kvm_sched_in loads the vCPU there) and the rest of vcpu_run runs there.
 */
function* vcpuBlock(k: Exec, vcpu: Vcpu, wake: number): Path {
  const other = runnableTask(k);
  if (other !== undefined) {
    checkSchedulable(k.sys, k.cpu, 'schedule() in kvm_vcpu_block');
    // 5.2 vcpu_block: srcu_read_unlock, kvm_vcpu_block, srcu_read_lock.
    vcpu.inSrcu = false;
    yield* contextSwitch(k, other);
    const to = k.sys.cpus[wake];
    // A racing op's thread does not wake on the CPU whose op is in flight: that CPU runs its op.
    if (to && to !== k.cpu && !to.dead && !inAtomic(to) && to.id !== inFlightCpu(k.sys)) {
      log(k.out, 'note', `vCPU ${vcpu.id}: its thread wakes up on cpu${to.id}`);
      k.cpu = to;
      k.sys.exec = to;
    }
    yield* contextSwitch(k, vcpu.thread!);
    vcpu.inSrcu = true;
  }
  yield 'kvm_vcpu_block';
}

/**
 * KVM_RUN: vcpu_load, then vcpu_run's loop of vcpu_enter_guest + handle_exit, one iteration per
 * exit reason (each handled in the kernel, so the loop goes on), then return to user space.
 */
export function* kvmRun(k: Exec, vcpu: Vcpu, exits: readonly ExitReason[], wake = k.cpu.id): Path<number> {
  const { sys } = k;
  const vm = sys.kvm!.vms.get(vcpu.vm)!;
  // vcpu_load: preempt_notifier_register, kvm_arch_vcpu_load.
  // vcpu_load: preempt_notifier_register, kvm_arch_vcpu_load; vcpu_run's srcu_read_lock(&kvm->srcu).
  k.preemptNotifier = kvmPreemptNotifier(vcpu);
  kvmArchVcpuLoad(k, vcpu);
  vcpu.inSrcu = true;
  yield 'vcpu_load';
  const enterInSrcu = sys.options.kvmIsolationEnterInSrcu;
  const flags: RunFlags = { unisolated: false };
  // Ghost: a VM-enter of this KVM_RUN on the kernel page table by a vCPU that has an ASI.
  let ranUnisolated = false;
  for (const [n, reason] of exits.entries()) {
    // vcpu_enter_guest
    k.cpu.preemptCount++;
    yield 'preempt_disable';
    k.cpu.irqsDisabled = true;
    yield 'local_irq_disable';
    // vcpu->mode = IN_GUEST_MODE; srcu_read_unlock(&kvm->srcu, vcpu->srcu_idx). Patch 25 calls
    // vcpu_isolation_enter after it; kvmIsolationEnterInSrcu calls it first. The 2025 design has
    // no vcpu_isolation_enter: vmx_vcpu_enter_exit enters the VM's domain (its patch 21).
    let isolated = true;
    if (vm.asi25 !== undefined) {
      vcpu.inSrcu = false;
      yield* vmxVcpuEnterExit25(k, vm.asi25, vcpu);
    } else {
      if (!enterInSrcu) vcpu.inSrcu = false;
      if (yield* vcpuIsolationEnter(k, vcpu, vm)) {
        k.cpu.dead = 'oops in vcpu_isolation_enter';
        return 0;
      }
      if (enterInSrcu) vcpu.inSrcu = false; // fixed: kvmIsolationEnterInSrcu
      isolated = yield* vmxVcpuRun(k, vcpu, flags);
    }
    ranUnisolated ||= !isolated && vcpu.asi !== null;
    // vmx_complete_atomic_exit: an NMI exit runs the host's NMI handler (int $2).
    if (reason === 'nmi') deliver(k, { at: 0, kind: 'nmi' }, 'vcpu_run@vmx_complete_atomic_exit');
    // 5.2 vcpu_enter_guest: kvm_x86_ops->handle_external_intr (vmx_handle_external_intr) runs the
    // host's handler for the interrupt that caused the exit with IRQs still off, before local_irq_enable.
    if (reason === 'external-interrupt') callIdtGate(k, 'irq', 'vcpu_run@handle_external_intr');
    localIrqEnable(k, 'vcpu_run@local_irq_enable');
    yield 'local_irq_enable';
    k.cpu.preemptCount--;
    yield 'preempt_enable';
    vcpu.inSrcu = true;
    yield* handleExit(k, vcpu, vm, reason, n, wake);
    log(k.out, 'note', `vCPU ${vcpu.id} exit ${reason}: ${exitOutcome(k, isolated)}`);
    if (k.cpu.dead) return 0;
  }
  // vcpu_run's end: srcu_read_unlock, then patch 25's kvm_may_access_sensitive_data (2025: patch
  // 21's asi_exit() in kvm_arch_vcpu_ioctl_run); kvm_arch_vcpu_ioctl_run's vcpu_put, and return to
  // user space.
  vcpu.inSrcu = false;
  if (vm.asi25 !== undefined) {
    if (!mutant(sys, 'asi25-kvm-run-skips-exit')) yield* asiExit25(k);
    yield 'asi_exit';
  } else {
    yield* kvmMayAccessSensitiveData(k, vcpu);
    yield 'kvm_may_access_sensitive_data';
  }
  yield* kvmArchVcpuPut(k, vcpu);
  k.preemptNotifier = undefined;
  yield 'vcpu_put';
  if (vm.asi25 !== undefined) checkUserReturn(k, vcpu.id);
  else {
    checkUser(k, vcpu);
    checkReported(k, vcpu, ranUnisolated, flags);
  }
  checkSchedulable(sys, k.cpu, 'return to user space from KVM_RUN');
  return 0;
}

/** What KVM_RUN tells user space besides its return value: kvm_run->flags. */
interface RunFlags {
  /** KVM_RUN_X86_UNISOLATED (fixed: kvmReportsUnisolatedEntry): the guest ran without isolation. */
  unisolated: boolean;
}

/** KVM-ENTRY at return to user space: a guest entered on the kernel page table is reported to the VMM. */
function checkReported(k: Exec, vcpu: Vcpu, ranUnisolated: boolean, flags: RunFlags): void {
  if (flags.unisolated) log(k.out, 'note', `KVM_RUN of vCPU ${vcpu.id} returns with KVM_RUN_X86_UNISOLATED in kvm_run->flags`);
  if (ranUnisolated && !flags.unisolated) {
    kvmEvent(k.sys, 'KVM-ENTRY', `cpu${k.cpu.id}: KVM_RUN of vCPU ${vcpu.id} entered the guest on the kernel page table (isolation failed or was aborted) and returns to user space telling it nothing`);
  }
}

/**
 * KVM_RUN has returned (or its CPU died in it): vcpu->mutex is released and the SRCU section over.
 * A thread that oopses in a read section never leaves it in Linux, and every later synchronize_srcu
 * hangs; the model does not add that hang to the oops it reports.
 */
export function kvmRunReturned(vcpu: Vcpu): void {
  vcpu.running = false;
  vcpu.inSrcu = false;
}

/** kvm_vcpu_ioctl's mutex_lock(&vcpu->mutex), before the thread issuing KVM_RUN is on the CPU. */
export function kvmRunCalled(vcpu: Vcpu): void {
  vcpu.running = true;
}

/** KVM-USER at return to user space: isolation left, on the kernel CR3. */
function checkUser(k: Exec, vcpu: Vcpu): void {
  const { sys, cpu } = k;
  if (cpu.session.state !== ASI_SESSION_STATE_INACTIVE || cpu.cr3 !== kernelCr3(sys)) {
    kvmEvent(sys, 'KVM-USER', `cpu${cpu.id}: KVM_RUN of vCPU ${vcpu.id} returns to user space with the session ${SESSION_STATE_NAMES[cpu.session.state]} on asi#${cpu.session.asi}, cr3 ${formatCr3(sys, cpu.cr3)}`);
  }
}
