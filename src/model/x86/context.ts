// The kernel's own rules for the context code runs in (might_sleep, lockdep's self-deadlock check,
// get_cpu_var/put_cpu_var, what NMI context may do): the modelled code calls these where the C code
// allocates, frees, locks or disables preemption, and a broken rule is recorded for KERNEL-RULES
// instead of being enforced.

import type { Cpu, LockHeld } from './cpu.ts';
import type { System } from '../system.ts';
import { selfDeadlock, waitsForSpinner } from './smp.ts';

/** Where kernel code runs: a CPU of the model, or a process context (for ops not tied to a CPU). */
export type ExecContext = Pick<Cpu, 'id' | 'preemptCount' | 'irqsDisabled' | 'handlers' | 'locks'>;

/** The CPU runs in atomic context: preemption or IRQs off, inside a handler, or holding a spinlock. */
export function inAtomic(ctx: ExecContext): boolean {
  return ctx.preemptCount > 0 || ctx.irqsDisabled || ctx.handlers.length > 0 || ctx.locks.length > 0;
}

export function processContext(): ExecContext {
  return { id: -1, preemptCount: 0, irqsDisabled: false, handlers: [], locks: [] };
}

function where(ctx: ExecContext): string {
  const why = [
    ctx.preemptCount ? `preempt_count ${ctx.preemptCount}` : '',
    ctx.irqsDisabled ? 'IRQs off' : '',
    ctx.handlers.length ? `in ${ctx.handlers.join('>')} handler` : '',
    ctx.locks.length ? `holding ${ctx.locks.map((l) => l.name).join(', ')}` : '',
  ].filter(Boolean);
  return `${ctx.id >= 0 ? `cpu${ctx.id}` : 'process context'} (${why.join(', ')})`;
}

function kernelRule(sys: System, message: string): void {
  sys.ghost.events.push({ invariant: 'KERNEL-RULES', message });
}

/** in_nmi(): an NMI handler, or an exception nested in one, runs here. */
export function inNmi(ctx: ExecContext): boolean {
  return ctx.handlers.includes('nmi');
}

/**
 * An NMI can land in any code, including code that holds the lock it wants or is inside the
 * allocator: NMI context takes no spinlock that other code takes (all of the ASI's are), and
 * neither allocates nor frees memory, GFP_ATOMIC or not.
 */
function nmiSafe(sys: System, what: string): void {
  if (inNmi(sys.exec)) kernelRule(sys, `BUG: ${what} in NMI context on ${where(sys.exec)}`);
}

/**
 * smp_call_function_many (5.2): WARN_ON_ONCE(cpu_online(this_cpu) && irqs_disabled()). A sender
 * with IRQs off cannot take the IPI of another CPU waiting on it in turn: both spin forever.
 */
export function sendsIpis(sys: System, what: string): void {
  const ctx = sys.exec;
  nmiSafe(sys, what);
  if (ctx.id >= 0 && ctx.irqsDisabled) kernelRule(sys, `WARNING: smp_call_function_many with IRQs disabled (${what}) on ${where(ctx)}: can deadlock`);
}

/** kfree()/free_page() by the modelled code. */
export function freesMemory(sys: System, what: string): void {
  nmiSafe(sys, what);
}

/**
 * Every allocation by the modelled code: none in NMI context, and might_sleep() of GFP_KERNEL. With
 * the atomicAllocs design option, the ASI code allocates with GFP_ATOMIC, which never sleeps (and
 * may fail, which the model's fault injection covers).
 */
export function mightSleep(sys: System, what: string): void {
  const ctx = sys.exec;
  nmiSafe(sys, what);
  if (sys.options.atomicAllocs || !inAtomic(ctx)) return;
  kernelRule(sys, `BUG: sleeping function called from invalid context: ${what} (GFP_KERNEL) on ${where(ctx)}`);
}

export function spinLock(sys: System, name: string, irqsave: boolean): void {
  const ctx = sys.exec;
  nmiSafe(sys, `spin_lock(${name})`);
  if (ctx.locks.some((l) => l.name === name)) selfDeadlock(sys, name, where(ctx));
  else waitsForSpinner(sys, `to release ${name}`, (s) => (s.wait.locks.includes(name) ? `holding ${name}` : undefined));
  const held: LockHeld = irqsave ? { name, savedIrqsDisabled: ctx.irqsDisabled } : { name };
  ctx.locks.push(held);
  if (irqsave) ctx.irqsDisabled = true;
  ctx.preemptCount++;
}

export function spinUnlock(sys: System, name: string): void {
  const ctx = sys.exec;
  const i = ctx.locks.map((l) => l.name).lastIndexOf(name);
  const [held] = ctx.locks.splice(i, 1);
  if (held.savedIrqsDisabled !== undefined) ctx.irqsDisabled = held.savedIrqsDisabled;
  ctx.preemptCount--;
}

/** get_cpu_var(): preempt_disable() and the percpu pointer. */
export function getCpuVar(sys: System): void {
  sys.exec.preemptCount++;
}

/** put_cpu_var(): preempt_enable(). */
export function putCpuVar(sys: System): void {
  sys.exec.preemptCount--;
}

/** Rules at schedule() and at return to user space: nothing held, preemption balanced. */
export function checkSchedulable(sys: System, ctx: ExecContext, at: string): void {
  if (ctx.preemptCount !== 0 || ctx.locks.length || ctx.irqsDisabled) kernelRule(sys, `BUG: ${at} while atomic on ${where(ctx)}`);
}
