// The shape of an invariant: a stable id, the sentence it checks, where the rule comes from, and a
// pure check that names what it found. Checks read the system and never change it.

import type { System } from '../model/system.ts';

export interface Violation {
  readonly invariant: string;
  readonly message: string;
}

export interface Invariant {
  readonly id: string;
  readonly statement: string;
  /** The RFC patch or design rule the invariant comes from. */
  readonly source: string;
  /** Invariants that belong to one design option only say so here. */
  readonly appliesTo?: (sys: System) => boolean;
  readonly check: (sys: System) => string | undefined;
}
