// Shrink quality: how long a fuzz-shrunk counterexample is against the shortest one, found by
// breadth-first search for the same invariant. The search looks in the scopes that can hold the
// mutant's bug (KVM mutants in `kvm`, others in `small` then `wide`), never deeper than the shrunk
// length, so it ends quickly when shrinking was already optimal. A shortest sequence in a scope is
// shortest among that scope's ops only: a shrunk list using ops outside every scope can be shorter
// (a ratio below 1).

import { availableParallelism } from 'node:os';
import type { Config } from '../../model/system.ts';
import type { Op } from '../../model/ops.ts';
import { explore } from './search.ts';
import { KVM_SCOPE, SMALL_SCOPE, type Scope, WIDE_SCOPE } from './scope.ts';

/** States a search of one scope may reach before giving up on it: depth 4 of `small`, 2-3 of `wide`. */
export const SHRINK_QUALITY_MAX_STATES = 8_000;

export interface Minimal {
  readonly shrunk: number;
  /** The shortest violation found in a scope, if any at most `shrunk` long. */
  readonly found?: { readonly length: number; readonly scope: string; readonly ops: readonly Op[] };
  /** When nothing was found: the depth each scope was proved to (capped searches stop early). */
  readonly proved: Readonly<Record<string, number>>;
}

function scopesFor(config: Config): readonly Scope[] {
  return config.mutant?.startsWith('kvm-') ? [KVM_SCOPE] : [SMALL_SCOPE, WIDE_SCOPE];
}

export async function bfsMinimal(config: Config, invariant: string, shrunk: number, workers = Math.min(2, availableParallelism()), maxStates = SHRINK_QUALITY_MAX_STATES): Promise<Minimal> {
  let found: Minimal['found'];
  const proved: Record<string, number> = {};
  for (const scope of scopesFor(config)) {
    const depth = found ? found.length - 1 : shrunk;
    if (depth < 1) break;
    const r = await explore(config, scope, { depth, maxStates, workers }, {}, { stopOn: invariant });
    proved[scope.name] = r.depthCompleted;
    if (r.violation) found = { length: r.violation.ops.length, scope: scope.name, ops: r.violation.ops };
  }
  return { shrunk, ...(found ? { found } : {}), proved };
}

/** shrunk / shortest, to two places; undefined when no shortest was found. */
export function shrinkRatio(m: Minimal): number | undefined {
  return m.found ? Number((m.shrunk / m.found.length).toFixed(2)) : undefined;
}

/** One line per mutant for a table: shrunk, BFS-minimal (and where), ratio. */
export function minimalCell(m: Minimal): string {
  if (m.found) return `${m.found.length} (${m.found.scope})`;
  return `>${Math.min(...Object.values(m.proved))} in scope`;
}

/**
 * A shorter counterexample for `invariant` than `ops`, if breadth-first search finds one in the
 * scopes (ddmin and argument shrinking cannot move an op's work into an event of another op, or
 * point a call at memory boot already mapped, which a shortest sequence may need).
 */
export async function shorten(config: Config, ops: readonly Op[], invariant: string): Promise<readonly Op[] | undefined> {
  if (ops.length < 2) return undefined;
  return (await bfsMinimal(config, invariant, ops.length - 1)).found?.ops;
}
