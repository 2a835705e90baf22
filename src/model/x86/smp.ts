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

/** A racing op reached a wait for the CPU in flight: why. */
export class RacerWaits extends Error {}

/**
 * The racing op would wait here for the in-flight CPU (spin in synchronize_srcu, on an IPI's ack,
 * on a mutex): it stops at once with RacerWaits. That happens on the copy the step runs it on
 * first, which is then dropped; on the real system it never happens, since the op runs there only
 * where its copy did not wait. With no racing op, nothing waits: ops run one at a time.
 */
export function mustWait(sys: System, why: string): void {
  if (sys.racing) throw new RacerWaits(why);
}

/** The CPU an op is in flight on while another CPU's op runs, if any. */
export function inFlightCpu(sys: System): number | undefined {
  return sys.racing?.cpu;
}

/** A task of the op in flight: blocked in it or running it, it is not runnable elsewhere. */
export function taskInFlight(sys: System, task: number | null): boolean {
  return task !== null && sys.racing?.tasks.includes(task) === true;
}
