// The shrinking every search ends with, over concrete ops: ddmin; races made serial where the
// violation does not need them; memory exhaustion replaced by one
// fail_alloc (which ddmin cannot reach by removal: each exhausting allocation is needed until the
// fault injection takes over); simpler arguments; and ddmin again after each step that changed the
// list, since a fail_alloc or a simpler argument can make more ops removable.

import { type Op, serialOps, withoutRace } from '../model/ops.ts';
import type { Config } from '../model/system.ts';
import { shrinkArgs } from './argshrink.ts';
import { ddminBy, replaceExhaustion, violates } from './shrink.ts';

/** `fails` says whether a candidate still shows the violation (the same invariant, as the caller judges it). */
export function shrinkOps(config: Config, ops: readonly Op[], invariant: string, fails = (candidate: readonly Op[]) => violates(config, candidate, invariant)): { ops: Op[]; argsSimplified: number } {
  let cur = ddminBy(ops, fails);
  const serial = unrace(cur, fails);
  if (serial !== cur) cur = ddminBy(serial, fails);
  const replaced = replaceExhaustion(config, cur, invariant, fails);
  if (replaced.length < cur.length) cur = ddminBy(replaced, fails);
  const args = shrinkArgs(config, cur, invariant, undefined, fails);
  return { ops: args.simplified ? ddminBy(args.ops, fails) : args.ops, argsSimplified: args.simplified };
}

/**
 * Fewer switches between CPUs (CHESS's preemption bounding, after the fact): each race, last first,
 * becomes its two ops one after the other, or goes, when the violation stays without it.
 */
export function unrace(ops: Op[], fails: (candidate: readonly Op[]) => boolean): Op[] {
  let cur = ops;
  for (let i = cur.length - 1; i >= 0; i--) {
    const op = cur[i];
    if (!('race' in op) || !op.race) continue;
    const serial = [...cur.slice(0, i), ...serialOps(op), ...cur.slice(i + 1)];
    const dropped = [...cur.slice(0, i), withoutRace(op), ...cur.slice(i + 1)];
    cur = fails(serial) ? serial : fails(dropped) ? dropped : cur;
  }
  return cur;
}