// Running operations against the model with every invariant checked after every step.

import { type Choice, type Weights, resolveOp } from '../generators/choose.ts';
import { type CheckMode, type Checker, type Invariant, type Violation, newChecker } from '../invariants/index.ts';
import { type Op, formatOp } from '../model/ops.ts';
import { type Outcome, createSystem, step } from '../model/step.ts';
import type { Config, System } from '../model/system.ts';
import { ERRNO_NAMES } from '../model/mm/kernel.ts';

export interface Failure {
  /** Index of the op after (or inside) which the invariants failed. */
  readonly step: number;
  readonly violations: readonly Violation[];
  /** The micro-step inside the op ("asi_enter@load_cr3(asi->pgd)"), when the check failed there. */
  readonly where?: string;
  /** The first op's failure was there before it: the booted system fails these invariants already (F53). */
  readonly atBoot?: true;
}

/**
 * The function a run first failed in, the shape keep-going tells a bug's hits apart by: the path of
 * the micro-step ("page-fault", "vcpu_run"), the kind of the op it failed after, or "boot" for what
 * no op did (every first op would be a shape of its own).
 */
export function failingFunction(ops: readonly Op[], f: Failure): string {
  if (f.atBoot) return 'boot';
  return f.where ? f.where.slice(0, f.where.indexOf('@')) : ops[f.step].op;
}

/** Where a run failed, as a reader wants it: "after step 4", or "inside step 2, at asi_enter@load_cr3(asi->pgd)". */
export function failurePlace(f: Failure): string {
  return f.where ? `inside step ${f.step + 1}, at ${f.where}` : `after step ${f.step + 1}`;
}

export interface RunResult {
  readonly ops: readonly Op[];
  readonly failure?: Failure;
  readonly system: System;
}

export interface StepRecord {
  readonly op: Op;
  readonly outcome: Outcome;
}

export interface RunOptions {
  readonly invariants?: readonly Invariant[];
  readonly onStep?: (sys: System, rec: StepRecord, index: number) => void;
  /**
   * Run on until this invariant fails, past violations of others: a saved counterexample keeps
   * reproducing its invariant when invariants added later fire earlier in the same ops.
   */
  readonly stopOn?: string;
  /**
   * Also judge the invariants that hold inside an op at every micro-step of its paths (default on;
   * see MICRO_STEP_CHECKS). Off, only the state between ops is judged.
   */
  readonly microSteps?: boolean;
  /**
   * `incremental` (default): each check pays for what the step changed; `full`: every invariant on
   * the whole state at every check, the reference the incremental checker is held to.
   */
  readonly check?: CheckMode;
}

/** Whether runs judge invariants at micro-steps unless told otherwise: `npm test` and `fuzz` do. */
export const MICRO_STEP_CHECKS = true;

/** Replays concrete ops, stopping at the first step after which an invariant fails. */
export function runOps(config: Config, ops: readonly Op[], opts: RunOptions = {}): RunResult {
  return runWith(config, ops.length, (_, i) => ops[i], opts);
}

/** Resolves and runs choices one by one; the result holds the concrete ops that ran. */
export function runChoices(config: Config, choices: readonly Choice[], weights?: Weights, opts: RunOptions = {}): RunResult {
  return runWith(config, choices.length, (sys, i) => resolveOp(sys, choices[i], weights), opts);
}

export function runWith(config: Config, n: number, next: (sys: System, i: number) => Op, opts: RunOptions = {}): RunResult {
  const sys = createSystem(config);
  const check = checkerFor(opts);
  const ran: Op[] = [];
  for (let i = 0; i < n; i++) {
    const op = next(sys, i);
    ran.push(op);
    const failure = checkedStep(sys, op, i, check, opts).failure;
    if (!failure) continue;
    const atBoot = i === 0 && failure.violations.every((v) => violatedAtBoot(config, opts).has(v.invariant));
    return { ops: ran, failure: atBoot ? { ...failure, atBoot } : failure, system: sys };
  }
  return { ops: ran, system: sys };
}

/** The invariants a configuration's booted system violates before any op (F53's kind), judged once per configuration. */
const BOOT_VIOLATIONS = new Map<string, ReadonlySet<string>>();

function violatedAtBoot(config: Config, opts: RunOptions): ReadonlySet<string> {
  const key = JSON.stringify([config, opts.invariants?.map((inv) => inv.id)]);
  let violated = BOOT_VIOLATIONS.get(key);
  if (!violated) {
    violated = new Set(newChecker('full', opts.invariants)(createSystem(config), 'between-ops').map((v) => v.invariant));
    BOOT_VIOLATIONS.set(key, violated);
  }
  return violated;
}

/** A new checker as `opts` asks for it (incremental unless told otherwise), for one system's run. */
export function checkerFor(opts: RunOptions): Checker {
  return newChecker(opts.check ?? 'incremental', opts.invariants);
}

/**
 * Op `i` of a run, applied to `sys` in place with the invariants judged as every run judges them:
 * at each micro-step (unless turned off), then between ops. `check` has judged every earlier step
 * of `sys` (an incremental checker keeps what it read of them), or is new. `explore` steps clones
 * through this too, each with a new checker, so its verdicts are the fuzzer's.
 */
export function checkedStep(sys: System, op: Op, i: number, check: Checker, opts: RunOptions = {}): { readonly outcome: Outcome; readonly failure?: Failure } {
  const counts = (violations: readonly Violation[]) => violations.length > 0 && (!opts.stopOn || violations.some((v) => v.invariant === opts.stopOn));
  // The first micro-step whose state fails; the op still runs to its end, as the kernel would.
  let inside: Failure | undefined;
  const observe = (where: string) => {
    if (inside) return;
    const violations = check(sys, 'micro-step');
    if (counts(violations)) inside = { step: i, violations, where };
  };
  const outcome = step(sys, op, opts.microSteps ?? MICRO_STEP_CHECKS ? observe : undefined);
  opts.onStep?.(sys, { op, outcome }, i);
  if (inside) return { outcome, failure: inside };
  const violations = check(sys, 'between-ops');
  return counts(violations) ? { outcome, failure: { step: i, violations } } : { outcome };
}

export function formatRet(op: Op, ret: number): string {
  if (ret < 0) return ERRNO_NAMES[ret] ?? String(ret);
  if (op.op === 'asi_create') return `asi#${ret}`;
  if (ret > 0 && ['task_create', 'vmalloc', 'kmalloc', 'module_load'].includes(op.op)) return `#${ret}`;
  return String(ret);
}

/** A numbered trace: op, return value, and what the modelled code logged. */
export function traceLines(config: Config, ops: readonly Op[], withLog = true): string[] {
  const lines: string[] = [];
  const res = runOps(config, ops, {
    onStep: (sys, rec, i) => {
      lines.push(`${String(i + 1).padStart(3)}. ${formatOp(sys.g, rec.op)} = ${formatRet(rec.op, rec.outcome.ret)}`);
      if (withLog) for (const e of rec.outcome.log) lines.push(`       ${e.kind}: ${e.text}`);
    },
  });
  for (const v of res.failure?.violations ?? []) lines.push(`  VIOLATION ${v.invariant} ${failurePlace(res.failure!)}: ${v.message}`);
  return lines;
}
