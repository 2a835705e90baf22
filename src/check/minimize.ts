// The shrinking every search ends with, over concrete ops: ddmin; memory exhaustion replaced by one
// fail_alloc (which ddmin cannot reach by removal: each exhausting allocation is needed until the
// fault injection takes over); simpler arguments; and ddmin again after each step that changed the
// list, since a fail_alloc or a simpler argument can make more ops removable.

import type { Op } from '../model/ops.ts';
import type { Config } from '../model/system.ts';
import { shrinkArgs } from './argshrink.ts';
import { ddminBy, replaceExhaustion, violates } from './shrink.ts';

/** `fails` says whether a candidate still shows the violation (the same invariant, as the caller judges it). */
export function shrinkOps(config: Config, ops: readonly Op[], invariant: string, fails = (candidate: readonly Op[]) => violates(config, candidate, invariant)): { ops: Op[]; argsSimplified: number } {
  let cur = ddminBy(ops, fails);
  const replaced = replaceExhaustion(config, cur, invariant, fails);
  if (replaced.length < cur.length) cur = ddminBy(replaced, fails);
  const args = shrinkArgs(config, cur, invariant, undefined, fails);
  return { ops: args.simplified ? ddminBy(args.ops, fails) : args.ops, argsSimplified: args.simplified };
}
