// PT-WF and PT-OWN: the page tables are trees of live page-table pages, and ASI code touches only
// the pages it allocated.

import { type PgtLevel, PGT_LEVEL_PGD, PGT_LEVEL_PTE, LEVEL_NAMES, PAGE_SIZE, levelSize } from '../model/mm/geometry.ts';
import { allocationOfFrame, frameCount } from '../model/mm/memory.ts';
import { lowerLevel } from '../model/mm/pagetable.ts';
import { entryFrame, isLarge, isNone, isPresent } from '../model/mm/pte.ts';
import type { System } from '../model/system.ts';
import { type Invariant, ghostEvent } from './types.ts';
import { meets, sincePgtablePages, sinceVersion } from './views.ts';

/** A table's verdict, on itself and everything under it, as read at `base` (see malformed). */
interface Verdict {
  readonly level: PgtLevel;
  readonly base: number;
  readonly end: number;
  readonly message: string | undefined;
}

/**
 * The first defect of the tree under `root`, if any. `memo` keeps each table's verdict across
 * calls: only for a tree that reads no frame as a table twice, and with the verdicts of tables
 * changed since (and of the tables above them) taken out by the caller.
 */
function malformed(sys: System, root: number, memo?: Map<number, Verdict>): string | undefined {
  const seenAt = new Map<number, PgtLevel>();
  const visit = (table: number, level: PgtLevel, base: number): string | undefined => {
    const a = allocationOfFrame(sys.mem, table);
    if (!a || a.kind !== 'pgtable' || !sys.tables.has(table)) return `pfn ${table} used as a ${LEVEL_NAMES[level]} table is ${a ? a.name : 'free'}`;
    if (a.level !== level) return `pfn ${table} (${a.name}) used as a ${LEVEL_NAMES[level]} table`;
    const prev = seenAt.get(table);
    if (prev !== undefined) return prev === level ? undefined : `pfn ${table} is both a ${LEVEL_NAMES[prev]} and a ${LEVEL_NAMES[level]} table`;
    seenAt.set(table, level);
    const known = memo?.get(table);
    if (known?.level === level && known.base === base) return known.message;
    const size = levelSize(sys.g, level);
    const entries = sys.tables.get(table)!;
    let message: string | undefined;
    for (let i = 0; i < entries.length && message === undefined; i++) {
      const e = entries[i];
      if (isNone(e) || !isPresent(e)) continue;
      const f = entryFrame(e);
      if (level === PGT_LEVEL_PTE || isLarge(e)) {
        const n = size / PAGE_SIZE;
        if (f + n > frameCount(sys.mem) || f % n !== 0) message = `${LEVEL_NAMES[level]} entry ${i} of pfn ${table} maps pfn ${f}, outside memory or misaligned`;
      } else message = visit(f, lowerLevel(level), base + i * size);
    }
    memo?.set(table, { level, base, end: base + size * entries.length, message });
    return message;
  };
  return visit(root, PGT_LEVEL_PGD, 0);
}

export const PT_WF: Invariant = {
  id: 'PT-WF',
  statement: 'Every table an entry points to is a live page-table page of the right level; leaves map existing, aligned frames.',
  source: 'x86-64 paging; RFC v2 patch 06 (asi_pXX_alloc)',
  check: (sys) => firstMalformed(sys, (s, root) => malformed(s, root)),
  // A tree's defects change only with the tables it reads and their allocations (its generation);
  // a table's verdict, only with the tables in its window. The windows of the tables read again
  // since hold every table that changed, and every table above one holds it in its window.
  incremental: (views) => {
    const kept = new Map<number, { gen: number; stamp: number; memo: Map<number, Verdict>; message: string | undefined }>();
    return sinceVersion((sys) =>
      firstMalformed(sys, (s, root) => {
        const t = views.tree(s, root);
        const c = kept.get(root);
        if (c?.gen === t.gen) return c.message;
        const memo = c?.memo ?? new Map<number, Verdict>();
        const reread = t.readOnce ? c && views.changesSince(s, root, c.stamp)?.reread : undefined;
        if (reread === undefined) memo.clear();
        else for (const [table, v] of memo) if (meets(reread, v.base, v.end)) memo.delete(table);
        const message = malformed(s, root, t.readOnce ? memo : undefined);
        kept.set(root, { gen: t.gen, stamp: t.stamp, memo, message });
        return message;
      }),
    );
  },
};

/** The first defect of the kernel's page table, then of each ASI's. */
function firstMalformed(sys: System, judge: (sys: System, root: number) => string | undefined): string | undefined {
  const err = judge(sys, sys.kernel.pgd);
  if (err) return `kernel page table: ${err}`;
  for (const asi of sys.asis.values()) {
    const m = judge(sys, asi.pgd);
    if (m) return `asi#${asi.id} page table: ${m}`;
  }
  return undefined;
}

export const PT_OWN: Invariant = {
  id: 'PT-OWN',
  statement: 'An ASI writes and frees only page-table pages it allocated; kernel tables are never changed by ASI code.',
  source: 'RFC v2 patch 04 (backend_pages), patch 05 (asi_valid_offset)',
  design: 'asi-2019',
  check: (sys) => ghostEvent(sys, 'PT-OWN') ?? misowned(sys),
  incremental: (views) => {
    const owned = sincePgtablePages(views, misowned);
    return (sys) => ghostEvent(sys, 'PT-OWN') ?? owned(sys);
  },
};

function misowned(sys: System): string | undefined {
  for (const asi of sys.asis.values()) {
    for (const f of [asi.pgd, ...asi.backend.map((b) => b.frame)]) {
      const a = allocationOfFrame(sys.mem, f);
      if (!a || a.kind !== 'pgtable' || a.owner.kind !== 'asi' || a.owner.id !== asi.id) {
        return `asi#${asi.id} counts pfn ${f} as its own page-table page, but it is ${a ? a.name : 'free'}`;
      }
    }
  }
  return undefined;
}
