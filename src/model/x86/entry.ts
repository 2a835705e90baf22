// Entry code and the scheduler around the ASI session: interrupt, exception and NMI delivery
// (entry_64.S with the ASI_START_ABORT/ASI_FINISH_ABORT hooks of RFC v2 patch 02), the page-fault
// handler calling asi_fault (patch 03), prepare_task_switch (patch 02), and kernel memory accesses
// through the TLB and CR3. `drive` runs a path and delivers interrupts between its micro-steps.

import { type AccessKind, type Cpu, type HandlerKind, SESSION_STATE_NAMES, accessOk, cr3Root, flushTlbAll, formatCr3, invlpg, translate } from './cpu.ts';
import { inAtomic, sendsIpis } from './context.ts';
import { inFlightCpu, mustWait, taskInFlight, waitsForSpinner } from './smp.ts';
import { type Exec, type Observer, type Path, asiAbort, asiFault, asiFinishAbort, asiStartAbort, runDeferredUnmap } from '../asi/session.ts';
import { asiExit, asiIntrEnter, asiIntrExit, preemptFromUserMode, switchMmIrqsOff, warnIfBadAsiPf } from '../asi25/runtime.ts';
import { PAGE_SIZE, formatVa } from '../mm/geometry.ts';
import { CEA_PAGES_PER_CPU, ECPUDEAD, EFAULT, THREAD_PAGES, taskStackVa } from '../mm/kernel.ts';
import { perCpuPtr } from '../mm/percpu.ts';
import { type System, legacyMemory, mutant } from '../system.ts';
import { type Log, log } from '../trace.ts';

export const INTR_KINDS = ['irq', 'exception', 'nmi', 'switch'] as const;
export type IntrKind = (typeof INTR_KINDS)[number];

/**
 * An event arriving on the op's CPU after micro-step `at` of the op's path (0: before the first).
 * `va`: the handler body touches it (a probe_kernel_read, fixed up if unmapped). `nested`: events
 * arriving inside this handler, at its own micro-step indices.
 */
export interface Intr {
  readonly at: number;
  readonly kind: IntrKind;
  readonly va?: number;
  readonly nested?: readonly Intr[];
}

/** A fault retried this often without progress is a hang. */
const MAX_FAULT_RETRIES = 4;

/**
 * The points of a path, as drive passes them: its start, each micro-step, its return. At each one
 * it records coverage, delivers the events due there and lets another CPU's op in (`point`); the
 * observer judges the state a micro-step leaves. Events due after the last point land at the return.
 */
export class PathPoints {
  private i = 0;

  constructor(
    private readonly k: Exec,
    private readonly path: string,
    private readonly events: readonly Intr[],
    private readonly point?: (where: string) => void,
  ) {}

  start(): void {
    this.arrive(`${this.path}@start`);
  }

  reached(step: string): void {
    const here = `${this.path}@${step}`;
    this.k.observe?.(here);
    this.i++;
    this.arrive(here);
  }

  returned(): void {
    const here = `${this.path}@return`;
    this.k.sys.ghost.visited.push(here);
    this.k.observe?.(here);
    for (const e of this.events) if (e.at > this.i) deliver(this.k, e, here);
  }

  private arrive(here: string): void {
    this.k.sys.ghost.visited.push(here);
    for (const e of this.events) if (e.at === this.i) deliver(this.k, e, here);
    if (!this.k.cpu.dead) this.point?.(here);
  }
}

/**
 * Runs a path to its end, delivering each event at its micro-step; undefined if the CPU died.
 * `point`: called at each point of the path (its start, every micro-step, and the race points its
 * code marks) where another CPU's op may run: an op's own path gets it, handlers do not.
 */
export function drive<R>(k: Exec, path: string, gen: Path<R>, events: readonly Intr[] = [], point?: (where: string) => void): R | undefined {
  const points = new PathPoints(k, path, events, point);
  if (point) k.racePoint = (where) => point(`${path}@${where}`);
  try {
    points.start();
    for (;;) {
      if (k.cpu.dead) return undefined;
      const r = gen.next();
      if (r.done) {
        points.returned();
        return k.cpu.dead ? undefined : r.value;
      }
      points.reached(r.value);
    }
  } finally {
    if (point) k.racePoint = undefined;
  }
}

/** tlb_single_page_flush_ceiling: a wider flush_tlb_kernel_range flushes everything (flush_tlb_all). */
const TLB_SINGLE_PAGE_FLUSH_CEILING = 33;

/**
 * flush_tlb_kernel_range after the kernel unmaps memory: an IPI to every CPU, whose handler (which
 * leaves isolation like any interrupt) invalidates the range with INVLPG in the PCID it runs on,
 * or every entry when the range is wider than the ceiling (asi-check 0.1 always used INVLPG).
 */
export function flushTlbKernelRange(sys: System, lo: number, hi: number, out: Log, observe?: Observer): void {
  const end = mutant(sys, 'shootdown-skips-last-page') ? hi - PAGE_SIZE : hi;
  const all = !legacyMemory(sys) && (hi - lo) / PAGE_SIZE > TLB_SINGLE_PAGE_FLUSH_CEILING;
  onEachCpu(sys, sys.cpus, 'flush_tlb_kernel_range', (cpu) => (all ? flushTlbAll(cpu) : invlpg(cpu, lo, end)), out, observe);
}

/**
 * on_each_cpu(func, info, 1) over `targets` (5.2 kernel/smp.c): the sending CPU calls `func`
 * itself; every other CPU takes an IPI whose handler calls it, and the sender waits for each
 * handler. smp_call_function_many WARNs when the sender has IRQs off and another CPU to wait for:
 * two CPUs doing so at once wait for each other forever.
 */
export function onEachCpu(sys: System, targets: readonly Cpu[], what: string, func: (cpu: Cpu) => void, out: Log, observe?: Observer): void {
  const exec = sys.exec;
  if (targets.some((c) => c.id !== exec.id && !c.dead)) sendsIpis(sys, what);
  for (const cpu of targets) {
    if (cpu.dead) continue;
    if (cpu.id === exec.id) {
      func(cpu);
      continue;
    }
    // A target in flight with IRQs off takes the IPI only once they are on: the sender, its IPI
    // sent, spins until then.
    if (cpu.id === inFlightCpu(sys) && cpu.irqsDisabled) mustWait(sys, `${what}'s IPI waits for cpu${cpu.id}, whose IRQs are off`, (s) => s.cpus[cpu.id].irqsDisabled);
    if (waitsForSpinner(sys, `to take ${what}'s IPI`, (s) => (s.cpu === cpu.id && s.wait.irqsOff ? 'with IRQs off' : undefined))) break;
    const k: Exec = { sys, cpu, out, ...(observe ? { observe } : {}) };
    sys.exec = cpu;
    arrive(k, { at: 0, kind: 'irq' }, () => func(cpu));
    sys.exec = exec;
  }
}

function deliverable(k: Exec, kind: IntrKind): string | undefined {
  const c = k.cpu;
  if (kind === 'irq' && c.irqsDisabled) return 'IRQs are off';
  if (kind === 'nmi' && c.handlers.includes('nmi')) return 'NMIs are blocked until iret';
  if (kind === 'switch' && inAtomic(c)) return 'not preemptible';
  if (kind === 'switch' && runnableTask(k) === undefined) return 'no other task to run';
  return undefined;
}

/**
 * An event arriving between ops, where the CPU runs whatever it was running; `body` is what the
 * handler does besides touching `e.va` (a TLB shootdown IPI invalidates its range).
 */
export function arrive(k: Exec, e: Intr, body?: () => void): void {
  k.sys.ghost.visited.push('idle@between ops');
  deliver(k, e, 'idle@between ops', body);
}

export function deliver(k: Exec, e: Intr, where: string, body?: () => void): void {
  if (k.cpu.dead) return;
  const blocked = deliverable(k, e.kind);
  if (blocked) {
    k.sys.ghost.heldOff.push(`${where}:${e.kind}`);
    log(k.out, 'note', `cpu${k.cpu.id}: ${e.kind} at ${where} held off: ${blocked}`);
    return;
  }
  k.sys.ghost.landed.push(`${where}:${e.kind}`);
  log(k.out, 'note', `cpu${k.cpu.id}: ${e.kind} at ${where} (cr3 ${formatCr3(k.sys, k.cpu.cr3)})`);
  if (e.kind === 'switch') preempt(k, e.nested ?? []);
  else drive(k, e.kind, interruptHandler(k, e.kind, e.va, body), e.nested ?? []);
}

/**
 * A handler called by software through its IDT gate with IRQs off, as 5.2's vmx_handle_external_intr
 * calls the host's handler for the interrupt a VM-exit acknowledged (pushf: it returns with IF clear):
 * no delivery by the CPU, so IRQs being off does not hold it off.
 */
export function callIdtGate(k: Exec, kind: 'irq', where: string): void {
  if (k.cpu.dead) return;
  k.sys.ghost.landed.push(`${where}:${kind}`);
  log(k.out, 'note', `cpu${k.cpu.id}: ${kind} handler called at ${where} (cr3 ${formatCr3(k.sys, k.cpu.cr3)})`);
  drive(k, kind, interruptHandler(k, kind));
}

// ---- hardware delivery ----------------------------------------------------------------------

function die(k: Exec, invariant: 'ENTRY-MAPPED' | 'PROGRESS', why: string): void {
  k.cpu.dead = why;
  k.sys.ghost.events.push({ invariant, message: `cpu${k.cpu.id}: ${why}` });
  log(k.out, 'pr_err', `cpu${k.cpu.id}: ${why}`);
}

export interface Touch {
  readonly what: string;
  readonly va: number;
  readonly access: AccessKind;
}

/**
 * What the CPU and the entry code of `cpu` touch before any handler code can switch CR3, the task
 * stack aside: the IDT, the CPU's GDT, TSS and IST stack in cpu_entry_area, the entry text, and
 * cpu_asi_session.state read by ASI_START_ABORT (the 2025 design: the task's asi_state). A miss
 * here is a double fault.
 */
export function entryCode(sys: System, cpu: number): Touch[] {
  const l = sys.kernel.layout;
  const cea = l.ceaPerCpu + cpu * CEA_PAGES_PER_CPU * PAGE_SIZE;
  return [
    { what: 'the IDT', va: l.ceaBase, access: 'read' },
    { what: `cpu${cpu}'s GDT`, va: cea, access: 'read' },
    { what: `cpu${cpu}'s TSS`, va: cea + PAGE_SIZE, access: 'read' },
    { what: `cpu${cpu}'s IST stack`, va: cea + 2 * PAGE_SIZE, access: 'write' },
    { what: 'the entry text', va: l.startKernelMap, access: 'exec' },
    sys.asi25 ? asi25EntryTouch(sys, cpu) : { what: `cpu${cpu}'s cpu_asi_session`, va: perCpuPtr(sys, 'cpu_asi_session', cpu), access: 'read' },
  ];
}

/** What the 2025 design's asi_intr_enter() reads before anything can switch CR3: current->thread.asi_state. */
function asi25EntryTouch(sys: System, cpu: number): Touch {
  const task = sys.kernel.tasks.get(sys.kernel.current[cpu])!;
  return { what: `task ${task.id}'s thread.asi_state`, va: task.structVa, access: 'read' };
}

/** An interrupt or exception pushes its frame on the current stack; an NMI uses its IST stack. */
function entryTouches(k: Exec, kind: HandlerKind): Touch[] {
  if (kind === 'nmi') return entryCode(k.sys, k.cpu.id);
  const task = k.sys.kernel.tasks.get(k.sys.kernel.current[k.cpu.id])!;
  const stackTop = taskStackVa(k.sys, task) + (THREAD_PAGES - 1) * PAGE_SIZE;
  return [...entryCode(k.sys, k.cpu.id), { what: 'the current stack', va: stackTop, access: 'write' }];
}

function enterHandler(k: Exec, kind: HandlerKind): boolean {
  for (const t of entryTouches(k, kind)) {
    if (!translate(k.sys, k.cpu, t.va, t.access)) {
      die(k, 'ENTRY-MAPPED', `double fault: ${kind} entry cannot reach ${t.what} at ${formatVa(k.sys.g, t.va)} through cr3 ${formatCr3(k.sys, k.cpu.cr3)}`);
      return false;
    }
  }
  return true;
}

/** CR3-RESTORED at the first micro-step of every handler body. */
function handlerBody(k: Exec, kind: HandlerKind): void {
  if (cr3Root(k.cpu.cr3) === k.sys.kernel.pgd) return;
  const s = k.cpu.session;
  k.sys.ghost.events.push({
    invariant: 'CR3-RESTORED',
    message: `cpu${k.cpu.id}: the ${kind} handler body runs on cr3 ${formatCr3(k.sys, k.cpu.cr3)}, not the kernel's (session ${SESSION_STATE_NAMES[s.state]}, retry_abort ${s.retryAbort}, abort_depth ${s.abortDepth})`,
  });
}

/**
 * Every handler's frame (interrupt_entry / error_entry / paranoid_entry with the ASI hooks): delivery (a double fault gives `crashed`), ASI_START_ABORT, the body at
 * `bodyPoint`, ASI_FINISH_ABORT, iret. Only exceptions keep IRQs as they were (trap gates).
 */
function* handler<R>(k: Exec, kind: HandlerKind, bodyPoint: string, body: () => R, crashed: R): Path<R> {
  const cpu = k.cpu;
  if (!enterHandler(k, kind)) return crashed;
  const irqsWereDisabled = cpu.irqsDisabled;
  if (kind !== 'exception') cpu.irqsDisabled = true;
  cpu.handlers.push(kind);
  yield 'entry';
  // The 2025 design (its patch 05) leaves the address space alone on entry: asi_intr_enter()
  // before irqentry_enter() counts the depth, asi_intr_exit() after irqentry_exit() re-enters.
  if (k.sys.asi25) asiIntrEnter(k);
  else {
    if (kind !== 'nmi' || !mutant(k.sys, 'nmi-skips-abort')) yield* asiStartAbort(k);
    handlerBody(k, kind);
  }
  yield bodyPoint;
  const result = body();
  if (k.sys.asi25) {
    // irqentry_exit() and what follows it run with IRQs off, an exception's too.
    cpu.irqsDisabled = true;
    yield* asiIntrExit(k);
  } else yield* asiFinishAbort(k);
  cpu.handlers.pop();
  if (irqsWereDisabled) cpu.irqsDisabled = true;
  else localIrqEnable(k, `${kind}@iret`);
  return result;
}

/**
 * IRQs come on again (iret to IRQs-on code, local_irq_enable()). fixed: nmiDefersExit: the
 * irq_work_queue() of an NMI raised a self-IPI, taken as soon as IRQs are on.
 */
export function localIrqEnable(k: Exec, where: string): void {
  k.cpu.irqsDisabled = false;
  if (k.cpu.session.deferredUnmap) deliver(k, { at: 0, kind: 'irq' }, where, () => runDeferredUnmap(k));
}

/** interrupt_entry / error_entry / paranoid_entry: the body touches `va` (a probe) and runs `body`. */
function interruptHandler(k: Exec, kind: HandlerKind, va?: number, body?: () => void): Path {
  return handler(k, kind, 'handler body', () => {
    if (va !== undefined) accessVa(k, va, 'read', true);
    body?.();
  }, undefined);
}

type FaultResult = 'retry' | 'fixup' | 'oops';

/** page_fault -> error_entry -> do_page_fault -> do_kern_addr_fault -> asi_fault (patches 02, 03). */
function* pageFaultHandler(k: Exec, va: number, access: AccessKind, probe: boolean): Path<FaultResult> {
  const { sys, cpu } = k;
  // The CR3 the fault was taken on: read when the handler starts, after any event at its point 0.
  const faultCr3 = cpu.cr3;
  return yield* handler<FaultResult>(k, 'page-fault', 'do_page_fault', () => {
    // exc_page_fault in the 2025 design (its patch 10) begins with asi_exit() ("Can be a NOP even
    // for ASI faults, because of NMIs"); RFC v2's asks asi_fault.
    if (sys.asi25) {
      if (!mutant(sys, 'asi25-pf-skips-exit')) drive(k, 'asi_exit', asiExit(k));
    } else if (asiFault(k, faultCr3)) return 'retry';
    // The kernel's own handling: a spurious fault if the current page table allows the access (the
    // 2025 design's early return, after warn_if_bad_asi_pf), an exception-table fixup for a probe,
    // an oops otherwise.
    if (accessOk(sys, cr3Root(cpu.cr3), va, access)) {
      if (sys.asi25) warnIfBadAsiPf(k, va, access);
      invlpg(cpu, va);
      return 'retry';
    }
    // With the 2025 design no access the kernel page table allows may fail: it runs kernel code on
    // the restricted address space on purpose, and its fault path must get it to memory it needs.
    if (sys.asi25 && accessOk(sys, sys.kernel.pgd, va, access)) {
      sys.ghost.events.push({ invariant: 'PROGRESS', message: `cpu${cpu.id}: ${access} of ${formatVa(sys.g, va)}, which the kernel maps, faults on cr3 ${formatCr3(sys, cpu.cr3)} and is not retried` });
    }
    return probe ? 'fixup' : 'oops';
  }, 'oops');
}

/** A kernel access of `va` on this CPU: faults go to the page-fault handler and are retried. */
export function accessVa(k: Exec, va: number, access: AccessKind, probe: boolean, events: readonly Intr[] = []): number {
  for (let attempt = 0; ; attempt++) {
    if (k.cpu.dead) return ECPUDEAD;
    if (translate(k.sys, k.cpu, va, access)) return 0;
    if (attempt === MAX_FAULT_RETRIES) {
      die(k, 'PROGRESS', `fault loop: ${access} of ${formatVa(k.sys.g, va)} faults ${attempt} times in a row, each reported handled (cr3 ${formatCr3(k.sys, k.cpu.cr3)})`);
      return ECPUDEAD;
    }
    const r = drive(k, 'page-fault', pageFaultHandler(k, va, access, probe), attempt === 0 ? events : []);
    if (r === undefined) return ECPUDEAD;
    if (r !== 'retry') {
      log(k.out, 'note', `cpu${k.cpu.id}: ${access} of ${formatVa(k.sys.g, va)}: ${r === 'fixup' ? 'fixed up, -EFAULT' : 'oops: unable to handle kernel paging request'}`);
      return EFAULT;
    }
  }
}

// ---- the scheduler --------------------------------------------------------------------------

/** A task that no CPU runs, lowest id first. */
export function runnableTask(k: Exec): number | undefined {
  const running = new Set(k.sys.kernel.current);
  return [...k.sys.kernel.tasks.keys()].find((t) => !running.has(t) && !taskInFlight(k.sys, t));
}

/**
 * __schedule: prepare_task_switch (asi_abort, patch 02, then fire_sched_out_preempt_notifiers), then
 * switch_to and finish_task_switch (fire_sched_in_preempt_notifiers). All tasks share init_mm's
 * page tables; on the 2025 design, whose tasks are processes of their own mms, switch_mm_irqs_off
 * runs its ASI part between processes (asi_exit and asi_handle_switch_mm).
 */
export function* contextSwitch(k: Exec, next: number): Path {
  const prev = k.sys.kernel.current[k.cpu.id];
  const notifier = k.preemptNotifier;
  k.switchingTo = next;
  k.cpu.preemptCount++;
  // __schedule: local_irq_disable(), rq_lock(); IRQs stay off until finish_task_switch.
  const irqsWereDisabled = k.cpu.irqsDisabled;
  k.cpu.irqsDisabled = true;
  // The 2025 design's context_switch() begins with asi_exit() (its patch 03); a task taken off
  // its CPU from user space was interrupted (patch 25).
  if (k.sys.asi25) {
    preemptFromUserMode(k);
    yield* asiExit(k);
  }
  else if (!mutant(k.sys, 'switch-does-not-abort')) yield* asiAbort(k);
  yield 'prepare_task_switch';
  if (k.sys.asi25) yield* switchMmIrqsOff(k, prev, next);
  if (notifier?.task === prev) yield* notifier.schedOut(k);
  k.sys.kernel.current[k.cpu.id] = next;
  yield 'switch_to';
  // finish_task_switch: finish_lock_switch's raw_spin_unlock_irq(&rq->lock).
  if (!irqsWereDisabled) localIrqEnable(k, 'schedule@finish_task_switch');
  if (notifier?.task === next) yield* notifier.schedIn(k);
  k.switchingTo = undefined;
  k.cpu.preemptCount--;
}

/** Preemption at a point where the CPU is preemptible: another task runs, then this one again. */
function preempt(k: Exec, events: readonly Intr[]): void {
  const prev = k.sys.kernel.current[k.cpu.id];
  drive(k, 'schedule', contextSwitch(k, runnableTask(k)!), events);
  if (!k.cpu.dead) drive(k, 'schedule', contextSwitch(k, prev));
}
