// Two CPUs in kernel code at once (issue 20): while one CPU's op is in flight, another CPU's op runs
// at one of its points (Op.race). The kernel's ways for one CPU to wait on another are explicit
// here: a racing op that reaches one while the in-flight CPU holds what it waits for records why,
// and the step runs it later (src/model/step.ts decides by running it first on a copy).

import type { System } from '../system.ts';

/** The in-flight op's CPU while a racing op runs. */
export interface Racing {
  /** The CPU whose op is in flight (it cannot run anything else until the racing op is done). */
  readonly cpu: number;
  /** The tasks that op runs or switches to: no other CPU runs them, and they do not exit, meanwhile. */
  readonly tasks: readonly number[];
}

/**
 * A racing op reached a wait for the CPU in flight: why, and what its CPU holds while it waits
 * there (IRQs off, spinlocks), which the CPU in flight may need in turn.
 */
export class RacerWaits extends Error {
  constructor(
    why: string,
    readonly irqsOff: boolean,
    readonly locks: readonly string[],
    /**
     * Whether the wait still holds, as the op in flight goes on: until it does not, the step does
     * not try the racing op again. An IPI sent cannot be taken back, so that wait holds until the
     * target takes it; the others (a read section, a vCPU's KVM_RUN, a task in kernel code) until
     * what they wait for is over, which is when a new try could first go through.
     */
    readonly blocked?: (sys: System) => boolean,
  ) {
    super(why);
  }
}

/**
 * The racing op would wait here for the in-flight CPU (spin in synchronize_srcu, on an IPI's ack,
 * on a mutex): it stops at once with RacerWaits. That happens on the copy the step runs it on
 * first, which is then dropped; on the real system it never happens, since the op runs there only
 * where its copy did not wait. With no racing op, nothing waits: ops run one at a time.
 */
export function mustWait(sys: System, why: string, blocked?: (sys: System) => boolean): void {
  if (sys.racing) throw new RacerWaits(why, sys.exec.irqsDisabled, sys.exec.locks.map((l) => l.name), blocked);
}

/** A racing op waiting for the CPU in flight, as that CPU runs on: its CPU spins there holding what it holds. */
export interface Spinning {
  readonly cpu: number;
  /** The racing op's line. */
  readonly op: string;
  /** Where it waits, and what it holds there. */
  readonly wait: RacerWaits;
}

/**
 * The CPU in flight needs the CPU of a racing op that spins waiting for it: to take an IPI, or to
 * release a lock. `holds` says what of it blocks the need (with IRQs off, holding the lock), if
 * anything. Then neither goes on: PROGRESS reports the wait-for cycle and both CPUs hang. True
 * when they did.
 */
export function waitsForSpinner(sys: System, need: string, holds: (s: Spinning) => string | undefined): boolean {
  const s = sys.spinning;
  const what = s && holds(s);
  if (!what) return false;
  const me = sys.exec.id;
  hang(sys, [me, s.cpu], `deadlock cpu${me} -> cpu${s.cpu} -> cpu${me}: cpu${me} waits for cpu${s.cpu} ${need}; cpu${s.cpu}, in ${s.op} ${what}, waits for cpu${me}: ${s.wait.message}`);
  return true;
}

/** The running context waits for a lock it holds itself: it never goes on. */
export function selfDeadlock(sys: System, lock: string, where: string): void {
  hang(sys, [sys.exec.id], `deadlock: ${where} waits for ${lock}, which it holds itself`);
}

/** PROGRESS: CPUs that wait for each other forever, with the wait-for chain. */
function hang(sys: System, cpus: readonly number[], chain: string): void {
  sys.ghost.events.push({ invariant: 'PROGRESS', message: chain });
  for (const id of cpus) if (sys.cpus[id]) sys.cpus[id].dead ??= 'deadlock';
}

/** The CPU an op is in flight on while another CPU's op runs, if any. */
export function inFlightCpu(sys: System): number | undefined {
  return sys.racing?.cpu;
}

/** A task of the op in flight: blocked in it or running it, it is not runnable elsewhere. */
export function taskInFlight(sys: System, task: number | null): boolean {
  return task !== null && sys.racing?.tasks.includes(task) === true;
}

/** A racing op that would run or end `task` (named `what`) waits while the op in flight has it in kernel code. */
export function waitForTask(sys: System, task: number | null, what: string): void {
  if (taskInFlight(sys, task)) mustWait(sys, `${what} is in kernel code on cpu${inFlightCpu(sys)}`, (s) => taskInFlight(s, task));
}
