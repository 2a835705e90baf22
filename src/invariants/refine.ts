// REFINE: what an ASI maps is a sub-map of what the kernel maps, now, not when it was copied.

import { PAGE_SIZE, formatVa } from '../model/mm/geometry.ts';
import { type Leaf, leaves, walk } from '../model/mm/pagetable.ts';
import { _PAGE_NX, _PAGE_RW, _PAGE_USER, formatFlags } from '../model/mm/pte.ts';
import type { Asi, System } from '../model/system.ts';
import type { Invariant } from './types.ts';
import { LeafVerdicts, type SeenStamps, firstAsi, movedWithKernel, perAsi, sinceVersion } from './views.ts';
import { unitAlloc } from '../model/mm/memory.ts';

/** Flags of `asi` that `kernel` does not grant: RW, USER, or a missing NX. */
function wider(asi: number, kernel: number): boolean {
  return (asi & ~kernel & (_PAGE_RW | _PAGE_USER)) !== 0 || (kernel & _PAGE_NX & ~asi) !== 0;
}

/** The allocations a range reached when it was mapped, once per range (its ghost never changes). */
const reachedCache = new WeakMap<readonly string[], readonly number[]>();
export function allocsReached(units: readonly string[]): readonly number[] {
  let ids = reachedCache.get(units);
  if (!ids) reachedCache.set(units, (ids = [...new Set(units.map(unitAlloc))]));
  return ids;
}

export const REFINE: Invariant = {
  id: 'REFINE',
  statement:
    'Every ASI translation is a kernel translation: same frame, no wider permissions; and no tracked range reaches memory the kernel has freed since it was mapped.',
  source: 'RFC v2 patch 08 (entries are copies of the kernel page table), patch 10 (ranges outlive nothing)',
  design: 'asi-2019',
  check: (sys) => firstAsi(sys, (s, asi) => unrefined(s, asi) ?? stale(s, asi)),
  // The leaves judged against the kernel's walk change with either tree; a range's stale memory
  // changes with the ranges and with allocations.
  incremental: (views) => {
    // A leaf's verdict stands while the leaf is the same and the kernel's translations under it
    // have not moved: only the leaves inside windows either tree moved are judged again.
    const kept = new Map<number, { seen?: SeenStamps; verdicts: LeafVerdicts }>();
    const leavesWrong = (sys: System, asi: Asi) => {
      let c = kept.get(asi.id);
      if (!c) kept.set(asi.id, (c = { verdicts: new LeafVerdicts() }));
      const { moved, now } = movedWithKernel(views, sys, asi, c.seen);
      c.seen = now;
      return c.verdicts.judge(views.tree(sys, asi.pgd).leaves, moved, (l) => leafUnrefined(sys, `asi#${asi.id}`, l));
    };
    const staleRange = perAsi(stale, () => [views.allocGen], true);
    return sinceVersion((sys) => firstAsi(sys, (s, asi) => leavesWrong(s, asi) ?? staleRange(s, asi)));
  },
};

function unrefined(sys: System, asi: Asi): string | undefined {
  for (const l of leaves(sys.g, sys.tables, asi.pgd)) {
    const m = leafUnrefined(sys, `asi#${asi.id}`, l);
    if (m !== undefined) return m;
  }
  return undefined;
}

/** Whether a leaf of the page table `who` names maps what the kernel maps there: the same frames, no wider permissions. */
export function leafUnrefined(sys: System, who: string, l: Leaf): string | undefined {
  for (let va = l.va; va < l.va + l.size; ) {
    const k = walk(sys.g, sys.tables, sys.kernel.pgd, va);
    const asiFrame = l.frame + (va - l.va) / PAGE_SIZE;
    if (!k.ok) return `${who} maps ${formatVa(sys.g, va)} -> pfn ${asiFrame}, which the kernel no longer maps`;
    const kFrame = k.leaf.frame + (va - k.leaf.va) / PAGE_SIZE;
    if (kFrame !== asiFrame) return `${who} maps ${formatVa(sys.g, va)} -> pfn ${asiFrame}, the kernel maps it to pfn ${kFrame}`;
    if (wider(l.flags, k.leaf.flags)) return `${who} maps ${formatVa(sys.g, va)} ${formatFlags(l.flags)}, wider than the kernel's ${formatFlags(k.leaf.flags)}`;
    va = Math.min(l.va + l.size, k.leaf.va + k.leaf.size);
  }
  return undefined;
}

function stale(sys: System, asi: Asi): string | undefined {
  for (const r of asi.ranges) {
    const gone = allocsReached(r.ghostReached).find((id) => !sys.mem.allocs.has(id));
    if (gone !== undefined) return `asi#${asi.id}: range [${formatVa(sys.g, r.ptr)}, +0x${r.size.toString(16)}) still maps memory of allocation #${gone}, which the kernel has freed (stale mapping)`;
  }
  return undefined;
}
