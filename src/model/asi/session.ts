// The ASI session code of RFC v2 patches 01-03, 15, 16 and 21, function by function, as generators:
// each `yield` is a point between two micro-steps where an interrupt, exception, NMI or context
// switch may arrive (src/model/x86/entry.ts delivers them). The yielded string names the point.

import { type Cpu, type SessionState, ASI_SESSION_STATE_ABORTED, ASI_SESSION_STATE_ACTIVE, ASI_SESSION_STATE_INACTIVE, SESSION_STATE_NAMES, asiPcid, buildCr3, cr3Root, flushTlbAll, formatCr3, kernelCr3, writeCr3 } from '../x86/cpu.ts';
import { getCpuVar, inNmi, putCpuVar, spinLock, spinUnlock } from '../x86/context.ts';
import { ASI_MAP_CURRENT_TASK, asiMap, asiUnmap, warnOn } from './asi.ts';
import { drive } from '../x86/entry.ts';
import { EBUSY, EINVAL, TASK_STRUCT_SIZE, THREAD_PAGES, taskStackVa } from '../mm/kernel.ts';
import { PAGE_SIZE } from '../mm/geometry.ts';
import { type Log, log } from '../trace.ts';
import { type Asi, type System, type Task, mutant } from '../system.ts';

/** A code path: yields the name of each point an interrupt may arrive at, returns the C return value. */
export type Path<R = void> = Generator<string, R, void>;

/**
 * Called after every micro-step with the path and point just reached ("asi_enter@load_cr3"), so a
 * checker can judge the state inside an op. The model never imports the checker: this is its hook.
 */
export type Observer = (where: string) => void;

/**
 * A preempt notifier (include/linux/preempt.h) on `task`: KVM's vcpu_load registers kvm_sched_out
 * and kvm_sched_in for the vCPU thread, vcpu_put unregisters them.
 */
export interface PreemptNotifier {
  readonly task: number;
  readonly schedOut: (k: Exec) => Path;
  readonly schedIn: (k: Exec) => Path;
}

/** The CPU a path runs on, with the system, the log of the current step and the step's observer. */
export interface Exec {
  readonly sys: System;
  /** The CPU the path runs on: a KVM vCPU thread woken on another CPU moves its path there. */
  cpu: Cpu;
  readonly out: Log;
  readonly observe?: Observer;
  /** The preempt notifier of the task this path runs, while one is registered. */
  preemptNotifier?: PreemptNotifier;
  /**
   * Set by drive while the op's own path runs, for a point that is no micro-step: a read of shared
   * data whose use comes later in the same micro-step, with IRQs off there, where only another
   * CPU's code can come between (NMIs are not delivered at these points yet, which keeps the `at`
   * numbering of saved files).
   */
  racePoint?: (where: string) => void;
  /** The task a context switch of this path is switching to, from the moment __schedule picks it. */
  switchingTo?: number;
  /**
   * Set while an ASI API call made on this CPU runs (Op.on): the ASI code's own points (asi->lock
   * taken, released), where the call's events land, as drive's micro-steps are a path's.
   */
  apiPoint?: (where: string) => void;
}

function currentTask(k: Exec): number {
  return k.sys.kernel.current[k.cpu.id];
}

/** The isolation CR3 of an ASI: __sme_pa(asi->pgd) (patch 21), PCID 0 as load_cr3() writes it. */
export function asiCr3(sys: System, asi: Asi): number {
  return buildCr3(asi.pgd, asiPcid(sys));
}

/**
 * Every CR3 write of the session code. An ASI page table may only be loaded while the session is
 * ACTIVE, or inside the asi_barrier_begin/end window that patch 02 allows for exactly this.
 */
function loadCr3(k: Exec, cr3: number, noflush = false): void {
  const s = k.cpu.session;
  const isAsiRoot = [...k.sys.asis.values()].some((a) => a.pgd === cr3Root(cr3));
  if (isAsiRoot && s.state !== ASI_SESSION_STATE_ACTIVE && !s.retryAbort) {
    k.sys.ghost.events.push({ invariant: 'SESSION', message: `cpu${k.cpu.id} loads cr3 ${formatCr3(k.sys, cr3)} while its session is ${SESSION_STATE_NAMES[s.state]}` });
  }
  writeCr3(k.cpu, cr3, noflush);
}

function putIfFixed(k: Exec): void {
  if (k.sys.options.putCpuVar) putCpuVar(k.sys);
}

/** __get_current_cr3_fast (patch 21): the cached isolation CR3 while ACTIVE, cpu_tlbstate otherwise. */
export function getCurrentCr3Fast(k: Exec): number {
  return k.cpu.session.state === ASI_SESSION_STATE_ACTIVE ? k.cpu.session.isolationCr3 : kernelCr3(k.sys);
}

/** cr4_read_shadow (patch 21). */
function cr4ReadShadow(k: Exec): number {
  return k.cpu.session.state === ASI_SESSION_STATE_ACTIVE ? k.cpu.session.originalCr4 : k.cpu.cr4;
}

/** asi_restore_cr3 (patch 02). */
function* asiRestoreCr3(k: Exec): Path<number> {
  const original = k.cpu.session.originalCr3;
  if (original) {
    loadCr3(k, original);
    yield 'write_cr3(original_cr3)';
  }
  return original;
}

/** asi_enter (patches 01, 02, 15, 16, 21). */
export function* asiEnter(k: Exec, asi: Asi): Path<number> {
  const { sys, cpu, out } = k;
  const s = cpu.session;
  // The caller's handle as asi_enter starts: another CPU may have destroyed the ASI since the op named it.
  if (!sys.asis.has(asi.id)) return EINVAL;
  if (sys.options.asiUsersRefcount) asi.users++; // fixed: asiUsersRefcount
  // Every return before the session holds the ASI drops that reference again.
  const put = (ret: number) => {
    asiPut(sys, asi);
    return ret;
  };
  const state = s.state;
  yield 'read state';
  if (state === ASI_SESSION_STATE_ABORTED) warnOn(sys, out, 'state == ASI_SESSION_STATE_ABORTED');
  if (state === ASI_SESSION_STATE_ACTIVE) {
    if (s.asi !== asi.id) {
      // The caller's mistake, refused with -EBUSY: the API doing its job, not a broken assertion.
      log(out, 'WARN_ON', 'current_asi != asi');
      return put(EBUSY);
    }
    if (s.task !== currentTask(k)) warnOn(sys, out, 'asi_session->task != current');
    // The session holds its reference already.
    return put(0);
  }
  // fixed: asiEnterExclusive, an atomic claim of the ASI (a cmpxchg of its owner), held until the
  // end of asi_exit: while another CPU is anywhere between the two, this one is refused.
  if (sys.options.asiEnterExclusive) {
    if (asi.owner !== null && asi.owner !== cpu.id) {
      log(out, 'pr_debug', `asi#${asi.id} is entered on cpu${asi.owner}`);
      return put(EBUSY);
    }
    asi.owner = cpu.id;
  }
  getCpuVar(sys);
  s.asi = asi.id;
  s.task = currentTask(k);
  yield 'asi_session->asi = asi';
  if (s.abortDepth > 0) warnOn(sys, out, 'asi_session->abort_depth > 0');

  // We need a stack to run with isolation, so map the current stack (patch 15).
  const task = sys.kernel.tasks.get(currentTask(k))!;
  const mapStack = () => mapForSession(k, asi, taskStackVa(sys, task), THREAD_PAGES * PAGE_SIZE);
  const late = mutant(sys, 'stack-mapped-after-cr3');
  let err = late ? 0 : mapStack();
  yield 'map current stack';
  if (!err && asi.mappingFlags & ASI_MAP_CURRENT_TASK) {
    err = mapForSession(k, asi, task.structVa, TASK_STRUCT_SIZE);
    yield 'map current task';
    if (err) asiUnmap(sys, asi, taskStackVa(sys, task), out, k.cpu.id);
  }
  if (err) {
    s.asi = null;
    s.task = null;
    putIfFixed(k);
    asiRelease(sys, asi);
    return put(err);
  }

  const saveLate = mutant(sys, 'original-cr3-saved-late');
  if (!saveLate) s.originalCr3 = getCurrentCr3Fast(k);
  s.originalCr4 = cr4ReadShadow(k);
  s.isolationCr3 = asiCr3(sys, asi);
  yield 'asi_session->original_cr3 = cr3';

  // asi_barrier_begin(): interrupts from here to asi_barrier_end() retain the abort.
  if (!mutant(sys, 'barrier-not-set')) s.retryAbort = true;
  yield 'asi_barrier_begin';
  const flushEarly = mutant(sys, 'global-flush-too-early');
  if (sys.options.flushGlobalOnEnter && flushEarly) {
    flushTlbAll(cpu);
    yield '__flush_tlb_global';
  }
  s.state = ASI_SESSION_STATE_ACTIVE;
  yield 'state = ACTIVE';
  if (saveLate) s.originalCr3 = getCurrentCr3Fast(k);
  if (sys.options.flushGlobalOnEnter && !flushEarly) cpu.flushOwed = true;
  loadCr3(k, s.isolationCr3);
  yield 'load_cr3(asi->pgd)';
  if (late) {
    mapStack();
    yield 'map current stack';
  }
  if (sys.options.flushGlobalOnEnter && !flushEarly) {
    flushTlbAll(cpu);
    yield '__flush_tlb_global';
  }
  yield* asiBarrierEnd(k);
  putIfFixed(k);
  return 0;
}

function mapForSession(k: Exec, asi: Asi, ptr: number, size: number): number {
  const err = asiMap(k.sys, asi, ptr, size, k.out);
  if (!err) asi.ranges[0].madeBy = k.cpu.id;
  return err;
}

/** asi_barrier_end (patch 02); the fixed order decides under retry_abort and only then clears it. */
export function* asiBarrierEnd(k: Exec): Path {
  const s = k.cpu.session;
  if (!k.sys.options.barrierEndChecksFirst) {
    s.retryAbort = false;
    yield 'asi_barrier_end: retry_abort = false';
  }
  if (s.state === ASI_SESSION_STATE_ABORTED) {
    yield* asiRestoreCr3(k);
    if (s.retryAbort) {
      s.retryAbort = false;
      yield 'asi_barrier_end: retry_abort = false';
    }
    yield* asiAbort(k);
    return;
  }
  if (s.retryAbort) {
    s.retryAbort = false;
    yield 'asi_barrier_end: retry_abort = false';
  }
}

/** asi_exit (patches 01, 02, 15, 16). */
export function* asiExit(k: Exec, asiId: number | null): Path {
  const { sys, out } = k;
  const s = k.cpu.session;
  const state = s.state;
  yield 'read state';
  if (state === ASI_SESSION_STATE_INACTIVE) return;
  if (sys.options.interruptResumes && sys.options.exitDeactivatesFirst) {
    // v3 fix: leave ACTIVE first, so that an interrupt in between does not resume isolation, then
    // restore if the CPU is still on the ASI (a nested exit may find it either way).
    const original = s.originalCr3;
    s.state = ASI_SESSION_STATE_ABORTED;
    yield 'state = ABORTED';
    if (original && cr3Root(k.cpu.cr3) !== sys.kernel.pgd) {
      loadCr3(k, original);
      yield 'write_cr3(original_cr3)';
    }
  } else if (state === ASI_SESSION_STATE_ACTIVE) yield* asiRestoreCr3(k);

  getCpuVar(sys);
  s.state = ASI_SESSION_STATE_INACTIVE;
  yield 'state = INACTIVE';
  if (s.asi === null) {
    // exit was already done (by an interrupt that aborted this exit)
    putIfFixed(k);
    return;
  }
  if (s.retryAbort) warnOn(sys, out, 'asi_session->retry_abort');
  if (s.task !== currentTask(k)) warnOn(sys, out, 'asi_session->task != current');
  s.asi = null;
  s.task = null;
  s.originalCr3 = 0;
  yield 'asi_session->asi = NULL';
  s.abortDepth = 0;
  yield 'abort_depth = 0';

  const asi = asiId === null ? undefined : sys.asis.get(asiId);
  if (!asi) {
    sys.ghost.events.push({ invariant: 'SESSION', message: `cpu${k.cpu.id}: asi_exit unmaps the stack from asi#${asiId}, which no longer exists` });
    putIfFixed(k);
    return;
  }
  const task = sys.kernel.tasks.get(currentTask(k))!;
  if (sys.options.nmiDefersExit && inNmi(k.cpu)) {
    s.deferredUnmap = { asi: asi.id, task: task.id }; // fixed: nmiDefersExit
    yield 'irq_work_queue(unmap current stack)';
  } else {
    yield* unmapSession(k, asi, task);
    asiRelease(sys, asi);
    asiPut(sys, asi);
  }
  putIfFixed(k);
}

/**
 * fixed: apiLeavesIsolation. ASI code on an isolated CPU ends its session first, before it reads
 * anything of an ASI's, so none of it runs on the ASI page table: an API call at its entry
 * (recordApiCall, so that its record for CALLER-CONTRACT starts after the session's end), other ASI
 * code (the free path's unmap) before it takes asi->lock.
 */
export function leaveIsolationFirst(sys: System): void {
  const k = sys.onCpu;
  if (!k || !sys.options.apiLeavesIsolation || k.cpu.session.state === ASI_SESSION_STATE_INACTIVE) return;
  drive(k, 'asi_exit', asiExit(k, k.cpu.session.asi));
}

/** fixed: asiUsersRefcount. Drops a reference asi_enter took. */
function asiPut(sys: System, asi: Asi): void {
  if (sys.options.asiUsersRefcount) asi.users--;
}

/** fixed: asiEnterExclusive. The session's end, the stack unmapped: another CPU may claim the ASI. */
function asiRelease(sys: System, asi: Asi): void {
  if (sys.options.asiEnterExclusive) asi.owner = null;
}

/** The end of asi_exit (patches 15, 16): what asi_enter mapped for the session's task. */
function* unmapSession(k: Exec, asi: Asi, task: Task): Path {
  if (!mutant(k.sys, 'exit-keeps-stack')) asiUnmap(k.sys, asi, taskStackVa(k.sys, task), k.out, k.cpu.id);
  yield 'unmap current stack';
  if (asi.mappingFlags & ASI_MAP_CURRENT_TASK) {
    asiUnmap(k.sys, asi, task.structVa, k.out, k.cpu.id);
    yield 'unmap current task';
  }
}

/**
 * fixed: nmiDefersExit. The irq_work an asi_exit in NMI context queued, run in the self-IPI's
 * handler: the CPU is out of NMI context and the session has ended, so nothing here needs a
 * micro-step of its own.
 */
export function runDeferredUnmap(k: Exec): void {
  const d = k.cpu.session.deferredUnmap;
  if (!d) return;
  k.cpu.session.deferredUnmap = null;
  const asi = k.sys.asis.get(d.asi);
  const task = k.sys.kernel.tasks.get(d.task);
  if (!asi) return;
  if (task) for (const _ of unmapSession(k, asi, task));
  asiRelease(k.sys, asi);
  asiPut(k.sys, asi);
}

/** asi_abort (patch 02): what prepare_task_switch calls. */
export function* asiAbort(k: Exec): Path {
  if (k.cpu.session.state === ASI_SESSION_STATE_INACTIVE) return;
  yield* asiExit(k, k.cpu.session.asi);
}

/** asi_start_abort (patch 02): ASI_START_ABORT at the start of every interrupt and exception handler. */
export function* asiStartAbort(k: Exec): Path<number> {
  if (k.sys.options.interruptResumes) return yield* asiInterrupt(k);
  const s = k.cpu.session;
  const countFirst = k.sys.options.startAbortCountsFirst;
  const state = countFirst ? yield* countThenReadState(k, 'ASI_START_ABORT') : s.state;
  if (!countFirst) yield 'ASI_START_ABORT: read state';
  let original: number;
  switch (state) {
    case ASI_SESSION_STATE_INACTIVE:
      return 0;
    case ASI_SESSION_STATE_ACTIVE:
      original = yield* asiRestoreCr3(k);
      s.state = ASI_SESSION_STATE_ABORTED;
      yield 'state = ABORTED';
      break;
    case ASI_SESSION_STATE_ABORTED:
      // Already restored, unless an asi_barrier window asks to restore again.
      original = s.retryAbort ? yield* asiRestoreCr3(k) : s.originalCr3;
      break;
  }
  if (!countFirst) {
    s.abortDepth = (s.abortDepth + 1) >>> 0;
    yield 'abort_depth++';
  }
  return original;
}

/** asi_finish_abort (patch 02): ASI_FINISH_ABORT at the end of every handler. */
export function* asiFinishAbort(k: Exec): Path {
  if (k.sys.options.interruptResumes) return yield* asiResume(k);
  const s = k.cpu.session;
  const state = s.state;
  yield 'ASI_FINISH_ABORT: read state';
  if (state === ASI_SESSION_STATE_INACTIVE) return;
  if (state !== ASI_SESSION_STATE_ABORTED) warnOn(k.sys, k.out, 'state != ASI_SESSION_STATE_ABORTED');
  s.abortDepth = (s.abortDepth - 1) >>> 0;
  yield 'abort_depth--';
  if (s.abortDepth > 0 || s.retryAbort || mutant(k.sys, 'finish-abort-skips-exit')) return;
  yield* asiExit(k, s.asi);
}

/**
 * fixed (startAbortCountsFirst) and v3: this_cpu_inc(abort_depth) before the state is read, undone
 * if the session is INACTIVE. An NMI anywhere in between sees a depth above its own and leaves the
 * session for us to end; reading the state first (F17) leaves a window where it ends it under us.
 */
function* countThenReadState(k: Exec, macro: string): Path<SessionState> {
  const s = k.cpu.session;
  s.abortDepth = (s.abortDepth + 1) >>> 0;
  yield 'abort_depth++';
  const state = s.state;
  yield `${macro}: read state`;
  if (state === ASI_SESSION_STATE_INACTIVE) {
    s.abortDepth = (s.abortDepth - 1) >>> 0;
    yield 'abort_depth-- (inactive)';
  }
  return state;
}

/**
 * v3 ASI_INTERRUPT: count, then leave the ASI page table if the CPU is on it. The session stays
 * ACTIVE; abort_depth serves as idepth.
 */
function* asiInterrupt(k: Exec): Path<number> {
  const s = k.cpu.session;
  if ((yield* countThenReadState(k, 'ASI_INTERRUPT')) === ASI_SESSION_STATE_INACTIVE) return 0;
  if (cr3Root(k.cpu.cr3) !== k.sys.kernel.pgd) {
    loadCr3(k, s.originalCr3, true);
    yield 'write_cr3(original_cr3 | NOFLUSH)';
  }
  return s.originalCr3;
}

/** v3 ASI_RESUME: at depth 0 go back to the isolation CR3, or exit if asi_fault aborted the session. */
function* asiResume(k: Exec): Path {
  const s = k.cpu.session;
  const state = s.state;
  yield 'ASI_RESUME: read state';
  if (state === ASI_SESSION_STATE_INACTIVE) return;
  const reloadFirst = mutant(k.sys, 'resume-reloads-before-idepth-dec');
  if (reloadFirst && s.abortDepth === 1 && s.state === ASI_SESSION_STATE_ACTIVE) {
    loadCr3(k, s.isolationCr3, true);
    yield 'write_cr3(isolation_cr3 | NOFLUSH)';
  }
  s.abortDepth = (s.abortDepth - 1) >>> 0;
  yield 'abort_depth--';
  if (s.abortDepth > 0) return;
  // Read again: an NMI since the read above may have ended the session.
  if (s.state === ASI_SESSION_STATE_ABORTED) yield* asiExit(k, s.asi);
  if (s.state !== ASI_SESSION_STATE_ACTIVE) return;
  if (!reloadFirst) {
    if (k.sys.options.resumeFlushesGlobal) k.cpu.flushOwed = true;
    loadCr3(k, s.isolationCr3, true);
    yield 'write_cr3(isolation_cr3 | NOFLUSH)';
  }
  if (k.sys.options.resumeFlushesGlobal) {
    flushTlbAll(k.cpu);
    yield '__flush_tlb_global';
  }
}

/**
 * asi_fault (patch 03), called by do_kern_addr_fault before anything else: true reports the fault
 * handled, and the faulting instruction is retried. faultCr3 is the CR3 the fault was taken on.
 */
export function asiFault(k: Exec, faultCr3: number): boolean {
  const { sys, out } = k;
  const s = k.cpu.session;
  getCpuVar(sys);
  if (s.state === ASI_SESSION_STATE_INACTIVE) {
    putIfFixed(k);
    return mutant(sys, 'fault-always-handled');
  }
  const asi = s.asi === null ? undefined : sys.asis.get(s.asi);
  if (sys.options.faultChecksDepth && (s.abortDepth !== 1 || !asi || cr3Root(faultCr3) !== asi.pgd)) {
    putIfFixed(k);
    return false;
  }
  // v3 keeps the session ACTIVE during the interrupt: the fault is the one place it changes.
  const expected = sys.options.interruptResumes ? ASI_SESSION_STATE_ACTIVE : ASI_SESSION_STATE_ABORTED;
  if (s.state !== expected) warnOn(sys, out, `asi_session->state != ASI_SESSION_STATE_${SESSION_STATE_NAMES[expected]}`);
  if (s.abortDepth !== 1) warnOn(sys, out, 'asi_session->abort_depth != 1');
  if (!asi) {
    sys.ghost.events.push({ invariant: 'SESSION', message: `cpu${k.cpu.id}: asi_fault logs to asi#${s.asi} of an ${SESSION_STATE_NAMES[s.state]} session, which no longer exists (NULL or freed struct asi)` });
    putIfFixed(k);
    return true;
  }
  // v3: the fault ends the session, at ASI_RESUME, instead of resuming into the same fault.
  if (sys.options.interruptResumes) s.state = ASI_SESSION_STATE_ABORTED;
  // asi_log_fault: spin_lock(&asi->fault_lock), not irqsave.
  spinLock(sys, `asi#${asi.id}->fault_lock`, false);
  spinUnlock(sys, `asi#${asi.id}->fault_lock`);
  log(out, 'pr_info', `ASI ${asi.id}: PF on cpu${k.cpu.id} (retried without isolation)`);
  putIfFixed(k);
  return true;
}
