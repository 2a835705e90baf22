// Page tables as the MMU sees them: tables are Int32Array pages keyed by their frame; `walk` is the
// hardware walk of one address, `leaves` enumerates the translations of a VA window, and
// `interpret` is the whole abstract map. The three must agree (see test/pagetable.test.ts).

import {
  type Geometry,
  type PgtLevel,
  PGT_LEVEL_PGD,
  PGT_LEVEL_PTE,
  PAGE_SIZE,
  entriesPerTable,
  indexAt,
  levelSize,
  roundDown,
  vaLimit,
} from './geometry.ts';
import { _PAGE_NX, _PAGE_RW, _PAGE_USER, entryFlags, entryFrame, isLarge, isNone, isPresent } from './pte.ts';

export type Tables = Map<number, Int32Array>;

export function cloneTables(t: Tables): Tables {
  const out: Tables = new Map();
  for (const [f, e] of t) out.set(f, e.slice());
  return out;
}

/** The next lower in-memory table level (P4D is folded into the PGD). */
export function lowerLevel(level: PgtLevel): PgtLevel {
  return (level === PGT_LEVEL_PGD ? 2 : level - 1) as PgtLevel;
}

/** One translation: a leaf entry and the VA span it covers, with permissions combined along the walk. */
export interface Leaf {
  readonly va: number;
  readonly size: number;
  /** Frame backing the first byte of the span. */
  readonly frame: number;
  /** Effective flags: RW and USER only if every level allows them, NX if any level sets it. */
  readonly flags: number;
  readonly level: PgtLevel;
  /** The table holding the leaf entry and its index there. */
  readonly table: number;
  readonly index: number;
}

export type WalkResult =
  | { readonly ok: true; readonly leaf: Leaf }
  | { readonly ok: false; readonly level: PgtLevel; readonly reason: 'not-present' | 'bad-table' };

function combine(parent: number, entry: number): number {
  const f = entryFlags(entry);
  return (
    (f & ~(_PAGE_RW | _PAGE_USER | _PAGE_NX)) |
    (parent & f & (_PAGE_RW | _PAGE_USER)) |
    ((parent | f) & _PAGE_NX)
  );
}

const TOP_FLAGS = _PAGE_RW | _PAGE_USER;

/** The hardware page walk of one address. */
export function walk(g: Geometry, tables: Tables, root: number, va: number): WalkResult {
  let table = root;
  let level: PgtLevel = PGT_LEVEL_PGD;
  let flags = TOP_FLAGS;
  for (;;) {
    const entries = tables.get(table);
    if (!entries) return { ok: false, level, reason: 'bad-table' };
    const index = indexAt(g, level, va);
    const e = entries[index];
    if (isNone(e) || !isPresent(e)) return { ok: false, level, reason: 'not-present' };
    flags = combine(flags, e);
    if (level === PGT_LEVEL_PTE || isLarge(e)) {
      const size = levelSize(g, level);
      return { ok: true, leaf: { va: roundDown(va, size), size, frame: entryFrame(e), flags, level, table, index } };
    }
    table = entryFrame(e);
    level = lowerLevel(level);
  }
}

/** Frame that backs byte `va` inside a leaf. */
export function frameAt(leaf: Leaf, va: number): number {
  return leaf.frame + Math.floor((va - leaf.va) / PAGE_SIZE);
}

/** The first answer `judge` gives for a page of the leaf (its frame and address), in address order. */
export function firstPageOf(leaf: Leaf, judge: (frame: number, va: number) => string | undefined): string | undefined {
  for (let va = leaf.va; va < leaf.va + leaf.size; va += PAGE_SIZE) {
    const m = judge(frameAt(leaf, va), va);
    if (m !== undefined) return m;
  }
  return undefined;
}

/** Where a table was read while listing leaves: its level, the address its first entry maps, and the flags its parents grant. */
export interface TableRead {
  readonly table: number;
  readonly level: PgtLevel;
  readonly base: number;
  readonly flags: number;
}

/**
 * Every leaf that intersects [lo, hi), in address order. Tables that are not tables (a pointer to a
 * frame the model holds no table for) are skipped here; PT-WF reports them. `reads` collects every
 * frame looked up as a table, present or not, where it was read: what the leaves depend on.
 */
export function leaves(g: Geometry, tables: Tables, root: number, lo = 0, hi = vaLimit(g), reads?: TableRead[]): Leaf[] {
  return subtreeLeaves(g, tables, { table: root, level: PGT_LEVEL_PGD, base: 0, flags: TOP_FLAGS }, lo, hi, reads);
}

/** The leaves under one table, read where `at` says it sits in its tree. */
export function subtreeLeaves(g: Geometry, tables: Tables, at: TableRead, lo = 0, hi = vaLimit(g), reads?: TableRead[]): Leaf[] {
  const out: Leaf[] = [];
  visitLeaves(g, tables, at.table, at.level, at.base, at.flags, lo, hi, out, reads);
  return out;
}

/** The VA window a table's entries map, where `at` says it sits. */
export function tableWindow(g: Geometry, at: TableRead): readonly [number, number] {
  return [at.base, at.base + levelSize(g, at.level) * entriesPerTable(g)];
}

// A module function rather than a closure in `leaves`: the invariants enumerate every ASI's leaves
// at every check, and a closure per call costs an allocation (and tsx's __name wrapper) each time.
function visitLeaves(g: Geometry, tables: Tables, table: number, level: PgtLevel, base: number, parentFlags: number, lo: number, hi: number, out: Leaf[], reads?: TableRead[]): void {
  reads?.push({ table, level, base, flags: parentFlags });
  const entries = tables.get(table);
  if (!entries) return;
  const size = levelSize(g, level);
  const n = entriesPerTable(g);
  const first = Math.max(0, Math.floor((lo - base) / size));
  for (let i = first; i < n; i++) {
    const va = base + i * size;
    if (va >= hi) break;
    if (va + size <= lo) continue;
    const e = entries[i];
    if (isNone(e) || !isPresent(e)) continue;
    const flags = combine(parentFlags, e);
    if (level === PGT_LEVEL_PTE || isLarge(e)) {
      out.push({ va, size, frame: entryFrame(e), flags, level, table, index: i });
    } else {
      visitLeaves(g, tables, entryFrame(e), lowerLevel(level), va, flags, lo, hi, out, reads);
    }
  }
}

/** One mapped page of the abstract map. */
export interface PageMapping {
  readonly frame: number;
  readonly flags: number;
}

/** The abstract map va-page -> (frame, flags) of a page table. */
export function interpret(g: Geometry, tables: Tables, root: number): Map<number, PageMapping> {
  const map = new Map<number, PageMapping>();
  for (const l of leaves(g, tables, root)) {
    for (let off = 0; off < l.size; off += PAGE_SIZE) {
      map.set(l.va + off, { frame: l.frame + off / PAGE_SIZE, flags: l.flags });
    }
  }
  return map;
}

/** Page-table pages reachable from a root, with the level each is used at. */
export function reachableTables(g: Geometry, tables: Tables, root: number): Map<number, PgtLevel> {
  const out = new Map<number, PgtLevel>();
  const visit = (table: number, level: PgtLevel): void => {
    if (out.has(table)) return;
    out.set(table, level);
    const entries = tables.get(table);
    if (!entries || level === PGT_LEVEL_PTE) return;
    for (const e of entries) if (!isNone(e) && isPresent(e) && !isLarge(e)) visit(entryFrame(e), lowerLevel(level));
  };
  visit(root, PGT_LEVEL_PGD);
  return out;
}

/** A byte window of one frame: what a VA window reaches in physical memory. */
export interface FrameBytes {
  readonly frame: number;
  readonly lo: number;
  readonly hi: number;
}

/** The frames (and the bytes of each) that [lo, hi) reaches through a page table. */
export function framesReached(g: Geometry, tables: Tables, root: number, lo: number, hi: number): FrameBytes[] {
  const out: FrameBytes[] = [];
  for (const l of leaves(g, tables, root, lo, hi)) {
    const a = Math.max(lo, l.va);
    const b = Math.min(hi, l.va + l.size);
    for (let p = roundDown(a, PAGE_SIZE); p < b; p += PAGE_SIZE) {
      out.push({ frame: frameAt(l, p), lo: Math.max(a, p) - p, hi: Math.min(b, p + PAGE_SIZE) - p });
    }
  }
  return out;
}

/** The VA pages of [lo, hi) that a page table maps. */
export function mappedPages(g: Geometry, tables: Tables, root: number, lo: number, hi: number): number[] {
  const out: number[] = [];
  for (const l of leaves(g, tables, root, lo, hi)) {
    const a = Math.max(lo, l.va);
    for (let p = roundDown(a, PAGE_SIZE); p < Math.min(hi, l.va + l.size); p += PAGE_SIZE) out.push(p);
  }
  return out;
}

/** Each frame a page table (its leaves) reaches, once, with the first address and leaf that reach it. */
export function* framesOf(g: Geometry, tables: Tables, root: number, of: readonly Leaf[] = leaves(g, tables, root)): Generator<{ readonly frame: number; readonly va: number; readonly leaf: Leaf }> {
  const seen = new Set<number>();
  for (const leaf of of) {
    for (let va = leaf.va; va < leaf.va + leaf.size; va += PAGE_SIZE) {
      const frame = frameAt(leaf, va);
      if (seen.has(frame)) continue;
      seen.add(frame);
      yield { frame, va, leaf };
    }
  }
}
