// A replay recorded for reporting: each step's op, return value, log and state diff, and the ASI
// page tables at the step where the run stopped. Built on runOps/runWith's onStep hook, so any
// way of producing ops (a saved file, a seeded walk) records the same way.

import type { Failure, RunOptions, RunResult } from '../check/run.ts';
import { formatRet } from '../check/run.ts';
import { type Geometry } from '../model/mm/geometry.ts';
import { allocationOfFrame } from '../model/mm/memory.ts';
import { formatOp, raceCpu } from '../model/ops.ts';
import { createSystem } from '../model/step.ts';
import { type Config, geometryOf } from '../model/system.ts';
import type { TraceEvent } from '../model/trace.ts';
import { type Change, diffSnapshots } from './diff.ts';
import { type Focus, type PtRow, asiTableRows, focusOf, globalNonsensitiveRoot, tableRows } from './pagetree.ts';
import { ASI_GLOBAL_NONSENSITIVE } from '../model/asi25/map.ts';
import { type AsiView, type CpuView, snapshot } from './snapshot.ts';

export interface StepView {
  /** 1-based, as the trace numbers steps. */
  readonly n: number;
  readonly op: string;
  readonly ret: string;
  readonly log: readonly TraceEvent[];
  /** For an op with a race: the CPU of the op in flight and that of the racing op, whose lines carry it. */
  readonly race?: { readonly host: number; readonly racer: number };
  readonly changes: readonly Change[];
  /** The CPUs after the step. */
  readonly cpus: readonly CpuView[];
}

/** One ASI at the last step that ran: its tracked ranges and its page table. */
export interface AsiReport {
  readonly asi: AsiView;
  readonly rows: readonly PtRow[];
}

export interface Replay {
  readonly config: Config;
  readonly g: Geometry;
  /** The CPUs after boot, before the first step. */
  readonly bootCpus: readonly CpuView[];
  readonly steps: readonly StepView[];
  readonly failure?: Failure;
  readonly focus: Focus;
  readonly asis: readonly AsiReport[];
  /** The 2025 design's global nonsensitive pgd (every domain's kernel half) where the run stopped: its pgd frame and rows. */
  readonly global25?: { readonly pgd: number; readonly rows: readonly PtRow[] };
  /** The frames the violation names and what holds each where the run stopped: a freed ASI's tables are in no page table. */
  readonly frames: readonly { readonly pfn: number; readonly holds: string }[];
}

/**
 * Runs `run` with a hook that snapshots the system after every step. `named` are texts whose
 * addresses should be highlighted besides the violations' (e.g. the message a file recorded).
 */
export function recordReplay(config: Config, run: (opts: RunOptions) => RunResult, named: readonly string[] = []): Replay {
  const g = geometryOf(config);
  // Booting is deterministic, so a fresh system is the state runWith starts from.
  let prev = snapshot(createSystem(config));
  const bootCpus = prev.cpus;
  const steps: StepView[] = [];
  const res = run({
    onStep: (sys, rec, i) => {
      const now = snapshot(sys);
      const race = 'race' in rec.op && rec.op.race ? { race: { host: rec.op.cpu, racer: raceCpu(rec.op.race) } } : {};
      steps.push({ n: i + 1, op: formatOp(g, rec.op), ret: formatRet(rec.op, rec.outcome.ret), log: rec.outcome.log, ...race, changes: diffSnapshots(prev, now), cpus: now.cpus });
      prev = now;
    },
  });
  // A recorded message says what the replay is about; other invariants failing at that step are context.
  const focus = focusOf(g, named.length ? named : (res.failure?.violations.map((v) => v.message) ?? []));
  const asis = prev.asis.map((asi) => ({ asi, rows: asiTableRows(res.system, res.system.asis.get(asi.id)!, focus) }));
  const frames = focus.pfns.map((pfn) => ({ pfn, holds: allocationOfFrame(res.system.mem, pfn)?.name ?? 'free' }));
  const pgd = res.system.asi25?.domains.get(ASI_GLOBAL_NONSENSITIVE)?.pgd;
  const global25 = pgd === undefined || pgd === null ? {} : { global25: { pgd, rows: tableRows(res.system, globalNonsensitiveRoot(res.system, pgd), focus) } };
  return { config, g, bootCpus, steps, ...(res.failure ? { failure: res.failure } : {}), focus, asis, ...global25, frames };
}
