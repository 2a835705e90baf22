// What a replay report shows of the system after a step, as plain data: the ASIs (their tracked
// ranges and how much their page tables map), every allocation, and the CPUs. Snapshots are taken
// after each step so that `diff.ts` can say what the step changed without holding on to the
// (mutable) System.

import { type PgtLevel, PAGE_SIZE } from '../model/mm/geometry.ts';
import type { AllocKind } from '../model/mm/memory.ts';
import { leaves } from '../model/mm/pagetable.ts';
import { ASI_SESSION_STATE_INACTIVE, SESSION_STATE_NAMES, formatCr3 } from '../model/x86/cpu.ts';
import type { System } from '../model/system.ts';

/** One CPU as the report shows it: the page table it runs on and its ASI state. */
export interface CpuView {
  readonly cpu: number;
  /** The page table CR3 points at, e.g. "kernel pgd" or "asi#1 pgd". */
  readonly cr3: string;
  /** The asi_session state (e.g. "none", "entered asi#1", "interrupted"). */
  readonly session: string;
  /** asi_session.abort_depth: 0 between ops unless an abort went wrong. */
  readonly depth: number;
  readonly task?: string;
  /** preempt_count: a leak shows here before schedule() trips over it. */
  readonly preempt?: number;
  /** Why the CPU stopped (double fault, fault loop). */
  readonly dead?: string;
}

/** The CPUs of the system, as readable strings: the diff and the HTML timeline show every field. */
export function cpuViews(sys: System): CpuView[] {
  return sys.cpus.map((c) => ({
    cpu: c.id,
    cr3: formatCr3(sys, c.cr3),
    session: c.session.state === ASI_SESSION_STATE_INACTIVE ? 'none' : `${SESSION_STATE_NAMES[c.session.state]} asi#${c.session.asi}${c.session.retryAbort ? ' retry' : ''}`,
    depth: c.session.abortDepth,
    task: `task#${sys.kernel.current[c.id]}`,
    preempt: c.preemptCount,
    ...(c.dead ? { dead: c.dead } : {}),
  }));
}

/** A VA range tracked by an ASI (struct asi_range_mapping). */
export interface RangeView {
  readonly asi: number;
  readonly va: number;
  readonly size: number;
  readonly level: PgtLevel;
  /** The RFC's overlap count (patch 14). */
  readonly overlap: number;
}

export interface AsiView {
  readonly id: number;
  /** Frame of asi->pgd. */
  readonly pgd: number;
  /** asi->mapping_list order. */
  readonly ranges: readonly RangeView[];
  /** 4K pages the ASI page table translates. */
  readonly mappedPages: number;
}

export interface AllocView {
  readonly id: number;
  readonly kind: AllocKind;
  readonly name: string;
  readonly frames: readonly number[];
  readonly sensitive: boolean;
}

export interface Snapshot {
  /** 4K pages the kernel page table translates: what vmalloc/vfree and friends change. */
  readonly kernelMappedPages: number;
  readonly asis: readonly AsiView[];
  /** Every live allocation, page-table pages included, by allocation id. */
  readonly allocs: readonly AllocView[];
  readonly cpus: readonly CpuView[];
}

/** A large entry counts all its pages. */
function pagesMapped(sys: System, root: number): number {
  return leaves(sys.g, sys.tables, root).reduce((n, l) => n + l.size / PAGE_SIZE, 0);
}

export function snapshot(sys: System): Snapshot {
  const asis = [...sys.asis.values()].map((a) => ({
    id: a.id,
    pgd: a.pgd,
    ranges: a.ranges.map((r) => ({ asi: a.id, va: r.ptr, size: r.size, level: r.level, overlap: r.overlap })),
    mappedPages: pagesMapped(sys, a.pgd),
  }));
  const allocs = [...sys.mem.allocs.values()].map((a) => ({ id: a.id, kind: a.kind, name: a.name, frames: a.frames, sensitive: a.sensitive }));
  return { kernelMappedPages: pagesMapped(sys, sys.kernel.pgd), asis, allocs, cpus: cpuViews(sys) };
}
