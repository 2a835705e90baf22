// The shape of an invariant: a stable id, the sentence it checks, where the rule comes from, and a
// pure check that names what it found. Checks read the system and never change it.

import { type GhostEvent, type System, designOf } from '../model/system.ts';
import type { Design } from '../model/options.ts';
import type { Judge, Views } from './views.ts';

export interface Violation {
  readonly invariant: string;
  readonly message: string;
}

/**
 * When a check runs: after an op (every path has returned, no handler runs), or at a micro-step
 * inside one (between two statements of a path, where an interrupt could also arrive).
 */
export type Phase = 'between-ops' | 'micro-step';

export interface Invariant {
  readonly id: string;
  readonly statement: string;
  /** The RFC patch or design rule the invariant comes from. */
  readonly source: string;
  /** Invariants that belong to one design option only say so here. */
  readonly appliesTo?: (sys: System) => boolean;
  /** The design whose code the invariant states a rule of; absent, a rule of the kernel both run on. */
  readonly design?: Design;
  /**
   * An invariant with a part that is a property of whole ops (a session is ACTIVE with CR3 still on
   * the kernel for one statement of asi_enter, by design) judges that part only between ops: the
   * phase it is given says which.
   */
  readonly check: (sys: System, phase?: Phase) => string | undefined;
  /**
   * The same judgement made incrementally, for invariants whose whole-state check is expensive:
   * given the run's Views (kept up to date from the model's change log), a judge that re-examines
   * only what changed since it was last called. It is called at every check of the run and must
   * give check's answer every time (test/check-equivalence.test.ts holds it to that).
   */
  readonly incremental?: (views: Views) => Judge;
}

/** The message of the first event the model recorded for `id` in the current step (src/model/system.ts Ghost.events). */
export function ghostEvent(sys: System, id: GhostEvent['invariant']): string | undefined {
  return sys.ghost.events.find((e) => e.invariant === id)?.message;
}

/** Whether an invariant judges this system: of its design (or of both), and its option on. */
export function judges(inv: Invariant, sys: System): boolean {
  return (inv.design === undefined || inv.design === designOf(sys.config)) && (!inv.appliesTo || inv.appliesTo(sys));
}
