// Delta debugging (Zeller's ddmin) over a concrete op list: the smallest list, by removal of
// chunks then single ops, that still violates the same invariant; and memory exhaustion replaced by
// fault injection, which ddmin cannot do by removal alone.

import type { Op, OpKind } from '../model/ops.ts';
import type { Config } from '../model/system.ts';
import { createSystem, step } from '../model/step.ts';
import { ENOMEM } from '../model/mm/kernel.ts';
import { type Failure, type RunOptions, runOps } from './run.ts';
import { invariantById } from '../invariants/index.ts';

/**
 * Whether the ops still violate `invariant`. Only that invariant is judged: a run stops on it alone
 * (stopOn) and every judge reads the state on its own, so the others could not change the answer,
 * only its cost, which is most of what shrinking and triage spend. `run` adds to the run's options
 * (an onStep for progress).
 */
export function violates(config: Config, ops: readonly Op[], invariant: string, run: RunOptions = {}): boolean {
  return violation(config, ops, invariant, run) !== undefined;
}

/** Where and how the ops first violate `invariant`, judged as `violates` judges. */
export function violation(config: Config, ops: readonly Op[], invariant: string, run: RunOptions = {}): Failure | undefined {
  const only = invariantById(invariant);
  return runOps(config, ops, { ...run, stopOn: invariant, ...(only ? { invariants: [only] } : {}) }).failure;
}

export function ddmin(config: Config, ops: readonly Op[], invariant: string): Op[] {
  return ddminBy(ops, (candidate) => violates(config, candidate, invariant));
}

/** ddmin over any list: `fails` says whether a (non-empty) sublist still shows the failure. */
export function ddminBy<T>(items: readonly T[], fails: (candidate: T[]) => boolean): T[] {
  let cur = [...items];
  let n = 2;
  while (cur.length >= 2) {
    const chunk = Math.ceil(cur.length / n);
    let reduced = false;
    for (let start = 0; start < cur.length; start += chunk) {
      const candidate = [...cur.slice(0, start), ...cur.slice(start + chunk)];
      if (candidate.length && fails(candidate)) {
        cur = candidate;
        n = Math.max(n - 1, 2);
        reduced = true;
        break;
      }
    }
    if (!reduced) {
      if (chunk === 1) break;
      n = Math.min(n * 2, cur.length);
    }
  }
  return cur;
}

/**
 * Ops that take memory and may be there only to use it up: a counterexample that needs one
 * allocation to fail reaches it, in a random search, by exhausting memory with a dozen of them.
 */
const ALLOCATING: ReadonlySet<OpKind> = new Set(['asi_create', 'task_create', 'vmalloc', 'kmalloc', 'module_load', 'kvm_create_vm', 'kvm_create_vcpu', 'kvm_set_memory_region', 'kvm_io_bus']);

/** Candidate op lists run per call: a few ops that met -ENOMEM, a few allocations each. */
export const EXHAUSTION_BUDGET = 100;

/** Allocation attempts `ops[k]` makes after `ops[0..k)`: what a `fail_alloc after N` before it can pick from. */
function allocationsOf(config: Config, ops: readonly Op[], k: number): number {
  const armed = Number.MAX_SAFE_INTEGER;
  const sys = createSystem(config);
  for (const op of ops.slice(0, k)) step(sys, op);
  step(sys, { op: 'fail_alloc', after: armed });
  step(sys, ops[k]);
  return armed - sys.mem.failIn;
}

/**
 * Memory exhaustion replaced by one `fail_alloc after N`: for an op that met -ENOMEM (its return
 * value, or an error its path logged) at or before the violation, latest first, a `fail_alloc`
 * before it makes its N-th allocation fail, and then every allocating op before it that the
 * violation no longer needs is dropped. The first such list that is shorter and still `fails` (the
 * same invariant, as the caller judges it) is returned, for ddmin to finish; otherwise `ops`.
 */
export function replaceExhaustion(config: Config, ops: readonly Op[], invariant: string, fails = (candidate: readonly Op[]) => violates(config, candidate, invariant), budget = EXHAUSTION_BUDGET): Op[] {
  const met: number[] = [];
  const failure = runOps(config, ops, {
    stopOn: invariant,
    onStep: (_, { outcome }, i) => {
      if (outcome.ret === ENOMEM || outcome.log.some((l) => l.text.includes(`error ${ENOMEM}`))) met.push(i);
    },
  }).failure;
  if (!failure) return [...ops];
  let tries = 0;
  for (const k of met.reverse()) {
    for (let n = allocationsOf(config, ops, k) - 1; n >= 0 && tries < budget; n--) {
      let cur = [...ops.slice(0, k), { op: 'fail_alloc', after: n } as Op, ...ops.slice(k)];
      tries++;
      if (!fails(cur)) continue;
      for (let i = k - 1; i >= 0 && tries < budget; i--) {
        if (!ALLOCATING.has(cur[i].op)) continue;
        const without = [...cur.slice(0, i), ...cur.slice(i + 1)];
        tries++;
        if (fails(without)) cur = without;
      }
      if (cur.length < ops.length) return cur;
      // The violation does not hinge on which of op k's allocations fails: no other N will do better.
      break;
    }
  }
  return [...ops];
}
