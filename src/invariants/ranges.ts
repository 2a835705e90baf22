// The range-tracking invariants (RFC v2 patches 10, 11, 14): what an ASI tracks and what its page
// table holds must agree, in both directions, and overlaps must be accounted for.

import { PAGE_SIZE, formatVa, levelSize } from '../model/mm/geometry.ts';
import { rangeExtent, rfcRangeExtent } from '../model/asi/asi.ts';
import { type Leaf, leaves, walk } from '../model/mm/pagetable.ts';
import type { Asi, AsiRange, System } from '../model/system.ts';
import type { Invariant } from './types.ts';
import { LeafVerdicts, type SeenStamps, type Window, firstAsi, keyCounts, meets, movedWithKernel, perAsi, rangeChanges, sameRanges, sincePgtablePages, sinceVersion } from './views.ts';

function show(sys: System, r: AsiRange): string {
  return `[${formatVa(sys.g, r.ptr)}, +0x${r.size.toString(16)}) at ${['pte', 'pmd', 'pud', 'p4d', 'pgd'][r.level]} level`;
}

/** Whether two ranges' extents meet: the effective extents, or the RFC's rounded ones (what patch 14 counts). */
function extentsMeet(sys: System, a: AsiRange, b: AsiRange, extent = rangeExtent): boolean {
  const [a0, a1] = extent(sys, a);
  const [b0, b1] = extent(sys, b);
  return a0 < b1 && b0 < a1;
}

/**
 * The first page of the range, inside [lo, hi), that the kernel mapped when the range was mapped
 * and still maps, but the ASI does not. (Pages the kernel maps later in a hole of the range are
 * not the range's: the RFC copies a snapshot.)
 */
function firstMissing(sys: System, asi: Asi, r: AsiRange, lo = r.ptr, hi = r.ptr + r.size): number | undefined {
  return r.ghostPages.find(
    // The ASI walk first: it almost always succeeds, and then the kernel's is not needed.
    (va) => va + PAGE_SIZE > lo && va < hi && !walk(sys.g, sys.tables, asi.pgd, va).ok && walk(sys.g, sys.tables, sys.kernel.pgd, va).ok,
  );
}

export const RANGE_NO_OVERLAP: Invariant = {
  id: 'RANGE-NO-OVERLAP',
  statement: 'The tracked ranges of one ASI never overlap (overlapPolicy=refuse).',
  source: 'design option overlapPolicy=refuse',
  design: 'asi-2019',
  appliesTo: (sys) => sys.options.overlapPolicy === 'refuse',
  check: overlapping,
  incremental: () => sinceVersion(overlapping),
};

function overlapping(sys: System): string | undefined {
  for (const asi of sys.asis.values()) {
    for (let i = 0; i < asi.ranges.length; i++) {
      for (let j = i + 1; j < asi.ranges.length; j++) {
        if (extentsMeet(sys, asi.ranges[i], asi.ranges[j])) return `asi#${asi.id}: ${show(sys, asi.ranges[i])} overlaps ${show(sys, asi.ranges[j])}`;
      }
    }
  }
  return undefined;
}

export const RANGE_OVERLAP_ACCOUNTED: Invariant = {
  id: 'RANGE-OVERLAP-ACCOUNTED',
  statement:
    "Overlap counts are exact (a range's count is the number of other live ranges whose extents meet its own; an entry's reference count is the number of ranges relying on it), and unmapping one range never removes a translation that another live range still covers.",
  source: 'RFC v2 patch 14 (asi_map_overlap, asi_unmap_overlap); design option overlapPolicy=refcount-entries',
  design: 'asi-2019',
  appliesTo: (sys) => sys.options.overlapPolicy !== 'refuse',
  check: (sys) => firstAsi(sys, miscounted) ?? removedCovered(sys),
  // Counts change with the ASI's ranges and the counts the model keeps on them; entry references
  // change only in the statement that adds or removes a range (asi_map_range, asi_unmap), so with
  // the ranges. What a step cleared is judged whole, and is usually nothing.
  incremental: () => {
    // The references ranges hold, kept up to date from the ranges added and removed since, so that
    // agreeing counts are confirmed without building every key again; a disagreement is reported
    // by the whole-ASI judgement, word for word.
    const truthOf = keyCounts((r) => r.entries);
    const refsAgree = (asi: Asi): boolean => {
      const truth = truthOf(asi);
      if (truth.size !== asi.entryRefs.size) return false;
      for (const [k, n] of asi.entryRefs) if (truth.get(k) !== n) return false;
      return true;
    };
    const judge = (sys: System, asi: Asi) => (sys.options.overlapPolicy === 'refcount-entries' && refsAgree(asi) ? undefined : miscounted(sys, asi));
    const counts = perAsi(judge, (s, asi) => (s.options.overlapPolicy === 'count-ranges' ? asi.ranges.map((r) => r.overlap) : []), true);
    const countsWrong = sinceVersion((sys) => firstAsi(sys, counts));
    // A step's ghost starts with nothing cleared, and clearing an entry moves the version.
    const covered = sinceVersion(removedCovered);
    return (sys) => countsWrong(sys) ?? (sys.ghost.cleared.length === 0 ? undefined : covered(sys));
  },
};

function miscounted(sys: System, asi: Asi): string | undefined {
  if (sys.options.overlapPolicy === 'count-ranges') {
    for (const r of asi.ranges) {
      // Patch 14 counts overlaps of rounded extents, whatever extent the copy itself maps.
      const truth = asi.ranges.filter((o) => o !== r && extentsMeet(sys, r, o, rfcRangeExtent)).length;
      if (r.overlap !== truth) return `asi#${asi.id}: range ${show(sys, r)} has overlap count ${r.overlap}, but ${truth} live ranges overlap it`;
    }
    return undefined;
  }
  const truth = new Map<string, number>();
  for (const r of asi.ranges) for (const k of r.entries) truth.set(k, (truth.get(k) ?? 0) + 1);
  for (const k of new Set([...truth.keys(), ...asi.entryRefs.keys()])) {
    if ((asi.entryRefs.get(k) ?? 0) !== (truth.get(k) ?? 0)) {
      return `asi#${asi.id}: entry ${k} has ${asi.entryRefs.get(k) ?? 0} references, but ${truth.get(k) ?? 0} live ranges rely on it`;
    }
  }
  return undefined;
}

/** A translation cleared in this step that a live range still covers. */
function removedCovered(sys: System): string | undefined {
  for (const c of sys.ghost.cleared) {
    const asi = sys.asis.get(c.asi);
    if (!asi) continue;
    for (const r of asi.ranges) {
      const va = firstMissing(sys, asi, r, c.va, c.va + c.size);
      if (va !== undefined) return `asi#${asi.id}: clearing ${formatVa(sys.g, c.va)} +0x${c.size.toString(16)} removed ${formatVa(sys.g, va)}, still covered by live range ${show(sys, r)}`;
    }
  }
  return undefined;
}

/** What a range may map: its extent, and the level whose larger leaves it may reach as a whole. */
interface Explanation {
  readonly lo: number;
  readonly hi: number;
  readonly levelSize: number;
  readonly ptr: number;
  readonly end: number;
}

function explanation(sys: System, r: AsiRange): Explanation {
  const [lo, hi] = rangeExtent(sys, r);
  return { lo, hi, levelSize: levelSize(sys.g, r.level), ptr: r.ptr, end: r.ptr + r.size };
}

/** A leaf is explained by a range when it lies in the range's extent, or is a large page the range reaches. */
function explains(e: Explanation, va: number, size: number): boolean {
  return size <= e.levelSize ? e.lo <= va && va + size <= e.hi : e.ptr < va + size && va < e.end;
}

export const RANGE_NO_LEAK: Invariant = {
  id: 'RANGE-NO-LEAK',
  statement:
    'Every translation in an ASI page table lies in the effective extent of a live tracked range (no unmapped-range leaks), and every ASI page-table page belongs to a live ASI that tracks it (no frame leaks).',
  source: 'RFC v2 patches 04 (backend pages), 10, 11, 14 (asi_unmap)',
  design: 'asi-2019',
  check: (sys) => firstAsi(sys, unexplainedLeaf) ?? pgtableLeak(sys),
  // A leaf is judged against its own ASI's ranges: only the leaves inside the windows a step moved,
  // or inside a range it added or removed, are judged again.
  incremental: (views) => {
    const kept = new Map<number, { ranges: readonly AsiRange[]; stamp: number; verdicts: LeafVerdicts }>();
    const leak = (sys: System, asi: Asi) => {
      const c = kept.get(asi.id);
      const moved = c && views.changesSince(sys, asi.pgd, c.stamp)?.windows;
      const ranges = c && rangeChanges(c.ranges, asi.ranges);
      const dirty = moved && ranges && [...moved, ...[...ranges.added, ...ranges.removed].map((r) => reach(explanation(sys, r)))];
      const t = views.tree(sys, asi.pgd);
      const verdicts = c?.verdicts ?? new LeafVerdicts();
      kept.set(asi.id, { ranges: asi.ranges, stamp: t.stamp, verdicts });
      let extents: Explanation[] | undefined;
      return verdicts.judge(t.leaves, dirty, (l) => unexplained(sys, asi, (extents ??= asi.ranges.map((r) => explanation(sys, r))), l));
    };
    const pagesLeaked = sincePgtablePages(views, pgtableLeak);
    return sinceVersion((sys) => firstAsi(sys, leak) ?? pagesLeaked(sys));
  },
};

/** Where a range may explain leaves: its extent, and the large pages it reaches. */
function reach(e: Explanation): Window {
  return [Math.min(e.lo, e.ptr), Math.max(e.hi, e.end)];
}

function unexplainedLeaf(sys: System, asi: Asi): string | undefined {
  const extents = asi.ranges.map((r) => explanation(sys, r));
  for (const l of leaves(sys.g, sys.tables, asi.pgd)) {
    const m = unexplained(sys, asi, extents, l);
    if (m !== undefined) return m;
  }
  return undefined;
}

function unexplained(sys: System, asi: Asi, extents: readonly Explanation[], l: Leaf): string | undefined {
  return extents.some((e) => explains(e, l.va, l.size)) ? undefined : `asi#${asi.id} still maps ${formatVa(sys.g, l.va)} +0x${l.size.toString(16)} (pfn ${l.frame}), which no live range covers`;
}

function pgtableLeak(sys: System): string | undefined {
  for (const a of sys.mem.allocs.values()) {
    if (a.kind !== 'pgtable' || a.owner.kind !== 'asi') continue;
    const asi = sys.asis.get(a.owner.id);
    if (!asi) return `pfn ${a.frames[0]} (${a.name}) is still allocated after asi#${a.owner.id} was destroyed`;
    if (asi.pgd !== a.frames[0] && !asi.backend.some((b) => b.frame === a.frames[0])) return `pfn ${a.frames[0]} (${a.name}) is allocated but not tracked as a backend page`;
  }
  return undefined;
}

export const RANGE_EXACT: Invariant = {
  id: 'RANGE-EXACT',
  statement: 'Every tracked range is fully present: each page of it that the kernel maps, the ASI maps too.',
  source: 'RFC v2 patches 08, 10, 14 (asi_map_range)',
  design: 'asi-2019',
  check: (sys) => firstAsi(sys, (s, asi) => missing(s, asi, (r) => firstMissing(s, asi, r))),
  // A range's pages are walked in the ASI and in the kernel: its verdict stands until either
  // tree's translations move inside it (asi_enter mapping a stack does not re-walk every range).
  incremental: (views) => {
    const kept = new Map<number, { seen: SeenStamps; ranges: readonly AsiRange[]; verdicts: Map<AsiRange, number | undefined>; message: string | undefined }>();
    const judge = (sys: System, asi: Asi) => {
      const before = kept.get(asi.id);
      const { moved, now } = movedWithKernel(views, sys, asi, before?.seen);
      if (moved?.length === 0 && sameRanges(before!.ranges, asi.ranges)) {
        kept.set(asi.id, { ...before!, seen: now });
        return before!.message;
      }
      const verdicts = new Map<AsiRange, number | undefined>();
      const message = missing(sys, asi, (r) => {
        // firstMissing walks the range's pages, from the one holding r.ptr.
        const va = moved && before!.verdicts.has(r) && !meets(moved, r.ptr - PAGE_SIZE, r.ptr + r.size) ? before!.verdicts.get(r) : firstMissing(sys, asi, r);
        verdicts.set(r, va);
        return va;
      });
      kept.set(asi.id, { seen: now, ranges: asi.ranges, verdicts, message });
      return message;
    };
    return sinceVersion((sys) => firstAsi(sys, judge));
  },
};

/** Every range is judged, not only up to the first failure, so that an incremental judge keeps a verdict for each. */
function missing(sys: System, asi: Asi, firstMissingOf: (r: AsiRange) => number | undefined): string | undefined {
  let message: string | undefined;
  for (const r of asi.ranges) {
    const va = firstMissingOf(r);
    if (va !== undefined) message ??= `asi#${asi.id}: ${formatVa(sys.g, va)} of tracked range ${show(sys, r)} is not mapped`;
  }
  return message;
}
