// What a replay report shows of the system after a step, as plain data: the ASIs (their tracked
// ranges and how much their page tables map), every allocation, and the CPUs. Snapshots are taken
// after each step so that `diff.ts` can say what the step changed without holding on to the
// (mutable) System.

import { type PgtLevel, PAGE_SIZE } from '../model/geometry.ts';
import type { AllocKind } from '../model/memory.ts';
import { leaves } from '../model/pagetable.ts';
import type { System } from '../model/system.ts';

/** One CPU as the report shows it: the page table it runs on and its ASI state. */
export interface CpuView {
  readonly cpu: number;
  /** The page table CR3 points at, e.g. "kernel pgd" or "asi#1 pgd". */
  readonly cr3: string;
  /** The asi_session state (e.g. "none", "entered asi#1", "interrupted"). */
  readonly session: string;
  /** Interrupt nesting depth. */
  readonly depth: number;
  readonly task?: string;
}

/**
 * The CPUs of the system. The model has no per-CPU state yet (CR3, asi_session, interrupt depth
 * arrive with the per-CPU model); until then there is nothing to show and reports leave the CPU
 * columns out.
 */
export function cpuViews(_sys: System): CpuView[] {
  return [];
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
