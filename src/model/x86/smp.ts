// Two CPUs in kernel code at once (issue 20): while one CPU's op is in flight, another CPU's op runs
// at one of its points (Op.race). The kernel's ways for one CPU to wait on another are explicit
// here: a racing op that reaches one while the in-flight CPU holds what it waits for records why,
// and the step runs it later (src/model/step.ts decides by running it first on a copy).

import type { System } from '../system.ts';

/** The in-flight op's CPU while a racing op runs, and the first wait that racing op reached. */
export interface Racing {
  /** The CPU whose op is in flight (it cannot run anything else until the racing op is done). */
  readonly cpu: number;
  /** The tasks that op runs or switches to: no other CPU runs them, and they do not exit, meanwhile. */
  readonly tasks: readonly number[];
  waits?: string;
}

/**
 * The racing op would wait here for the in-flight CPU (spin in synchronize_srcu, on an IPI's ack,
 * on a mutex): recorded, and true. On the copy the step runs first, the racing op goes on after
 * its wait and the copy is dropped; on the real system it never gets here, since it runs only
 * where its copy did not wait.
 */
export function mustWait(sys: System, why: string): boolean {
  if (!sys.racing) return false;
  sys.racing.waits ??= why;
  return true;
}

/** The CPU an op is in flight on while another CPU's op runs, if any. */
export function inFlightCpu(sys: System): number | undefined {
  return sys.racing?.cpu;
}

/** A task of the op in flight: blocked in it or running it, it is not runnable elsewhere. */
export function taskInFlight(sys: System, task: number | null): boolean {
  return task !== null && sys.racing?.tasks.includes(task) === true;
}
