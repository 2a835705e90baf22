// An ASI's page table as rows a person can read (pgd -> pud -> pmd -> pte, present entries only),
// each compared with the kernel's translation and marked when a violation message names it.
// Violation messages are text: they name addresses as the kernel prints them (0xffff...), frames as
// "pfn N", refcounted entries as "entry LEVEL:VA", CPUs as "cpuN", ASIs as "asi#N" (or "ASI N") and
// a task's stack as "stack of task#N", so that is what `focusOf` reads.

import { type Geometry, type PgtLevel, PAGE_SIZE, PGT_LEVEL_PGD, PGT_LEVEL_PTE, entriesPerTable, levelSize, parseVa } from '../model/mm/geometry.ts';
import { allocationOfFrame } from '../model/mm/memory.ts';
import { frameAt, lowerLevel, walk } from '../model/mm/pagetable.ts';
import { _PAGE_PSE, entryFlags, entryFrame, formatFlags, isLarge, isNone, isPresent } from '../model/mm/pte.ts';
import type { Asi, System } from '../model/system.ts';
import { ownsTable } from '../model/asi/asi.ts';

/** What a violation names: addresses, frames, CPUs, ASIs and allocations (by their model name). */
export interface Focus {
  readonly vas: readonly number[];
  readonly pfns: readonly number[];
  readonly cpus: readonly number[];
  readonly asis: readonly number[];
  readonly allocations: readonly string[];
}

export function focusOf(g: Geometry, texts: readonly string[]): Focus {
  const vas: number[] = [];
  const all = <T>(re: RegExp, f: (m: RegExpMatchArray) => T): T[] => [...new Set(texts.flatMap((t) => [...t.matchAll(re)].map(f)))];
  for (const t of texts) {
    for (const m of t.matchAll(/\b0xffff[0-9a-f]{12}\b/gi)) {
      const va = parseVa(g, m[0]);
      if (va !== undefined) vas.push(va);
    }
    for (const m of t.matchAll(/\bentry \d:(\d+)\b/g)) vas.push(Number(m[1]));
  }
  return {
    vas: [...new Set(vas)],
    pfns: all(/\bpfn (\d+)\b/g, (m) => Number(m[1])),
    cpus: all(/\bcpu(\d+)\b/g, (m) => Number(m[1])),
    asis: all(/\b(?:asi#|ASI )(\d+)\b/g, (m) => Number(m[1])),
    allocations: all(/\bstack of task#(\d+)\b/g, (m) => `stack of task ${m[1]}`),
  };
}

export interface PtRow {
  /** 0 for pgd entries, one more per level down. */
  readonly depth: number;
  readonly level: PgtLevel;
  /** The table page holding the entry, and the entry's index in it. */
  readonly table: number;
  readonly index: number;
  readonly va: number;
  readonly size: number;
  /**
   * A pointer to a lower table, a large leaf (PSE), a 4K pte leaf, or an empty entry where a named
   * address should have been translated (frame and flags then mean nothing).
   */
  readonly kind: 'table' | 'large' | 'pte' | 'none';
  readonly frame: number;
  /** The entry's own flags (not combined along the walk). */
  readonly flags: string;
  /** What the frame is: the owning allocation's name, or "free". */
  readonly frameName: string;
  /** Table entries: the lower table belongs to the kernel (or anyone but this ASI) and is shared. */
  readonly shared: boolean;
  /** Leaf entries: how the kernel's translation differs, or undefined when it agrees. */
  readonly kernel?: string;
  /** The entry covers an address or a frame the violation names. */
  readonly hit: boolean;
}

export function covers(focus: Focus, va: number, size: number): boolean {
  return focus.vas.some((v) => v >= va && v < va + size);
}

/**
 * The kernel's view of a leaf, at the named addresses inside it (or its first byte): undefined
 * when the kernel maps the same frame with the same flags there.
 */
function kernelDiffers(sys: System, pgd: number, va: number, size: number, focus: Focus): string | undefined {
  const named = focus.vas.filter((v) => v >= va && v < va + size);
  for (const at of named.length ? named : [va]) {
    const mine = walk(sys.g, sys.tables, pgd, at);
    const k = walk(sys.g, sys.tables, sys.kernel.pgd, at);
    if (!mine.ok) {
      if (k.ok) return `pfn ${frameAt(k.leaf, at)} ${formatFlags(k.leaf.flags)}`;
      continue;
    }
    if (!k.ok) return 'not mapped';
    const [myFrame, kFrame] = [frameAt(mine.leaf, at), frameAt(k.leaf, at)];
    if (myFrame !== kFrame) return `pfn ${kFrame}`;
    const [myFlags, kFlags] = [mine.leaf.flags & ~_PAGE_PSE, k.leaf.flags & ~_PAGE_PSE];
    if (myFlags !== kFlags) return formatFlags(kFlags);
  }
  return undefined;
}

/**
 * What the entry's frames hold. A large entry spans many allocations, so it names the frame the
 * violation is about (at a named address or a named pfn) rather than its first frame.
 */
function describeFrames(sys: System, focus: Focus, va: number, frame: number, frames: number): string {
  const atVa = focus.vas.find((v) => v >= va && v < va + frames * PAGE_SIZE);
  const named = atVa !== undefined ? frame + Math.floor((atVa - va) / PAGE_SIZE) : focus.pfns.find((p) => p >= frame && p < frame + frames);
  const shown = frames > 1 ? (named ?? frame) : frame;
  const name = allocationOfFrame(sys.mem, shown)?.name ?? 'free';
  return shown === frame && frames === 1 ? name : `pfn ${shown}: ${name}`;
}

type Position = Pick<PtRow, 'depth' | 'level' | 'table' | 'index' | 'va' | 'size'>;

/** The empty entry where a named address is not translated (RANGE-EXACT's "is not mapped"). */
function missingRow(sys: System, pgd: number, focus: Focus, at: Position): PtRow {
  const kernel = kernelDiffers(sys, pgd, at.va, at.size, focus);
  return { ...at, kind: 'none', frame: 0, flags: '', frameName: '', shared: false, hit: true, ...(kernel ? { kernel } : {}) };
}

/**
 * Present entries of the ASI's page table (and empty ones the violation names), depth first. Tables the ASI does not own (kernel tables
 * its entries point into) are expanded only when the violation names something inside them, so a
 * shared direct-map pmd does not bury the ASI's own entries.
 */
export function asiTableRows(sys: System, asi: Asi, focus: Focus): PtRow[] {
  return tableRows(sys, { pgd: asi.pgd, owns: (frame) => ownsTable(asi, frame) }, focus);
}

/** A page table to show: its root, and which of the tables under it are its own (the rest are shared with the kernel's). */
export interface PtRoot {
  readonly pgd: number;
  owns(frame: number): boolean;
}

/**
 * The 2025 design's global nonsensitive pgd (every domain's kernel half): its own tables are those
 * the ASI code allocated for it (named "ASI ..."), the rest the kernel's.
 */
export function globalNonsensitiveRoot(sys: System, pgd: number): PtRoot {
  return { pgd, owns: (frame) => frame === pgd || (allocationOfFrame(sys.mem, frame)?.name.startsWith('ASI ') ?? false) };
}

/** The rows of any page table under `root` (see asiTableRows). */
export function tableRows(sys: System, root: PtRoot, focus: Focus): PtRow[] {
  const rows: PtRow[] = [];
  const visit = (table: number, level: PgtLevel, base: number, depth: number): void => {
    const entries = sys.tables.get(table);
    if (!entries) return;
    const size = levelSize(sys.g, level);
    for (let index = 0; index < entriesPerTable(sys.g); index++) {
      const e = entries[index];
      const va = base + index * size;
      if (isNone(e) || !isPresent(e)) {
        if (covers(focus, va, size)) rows.push(missingRow(sys, root.pgd, focus, { depth, level, table, index, va, size }));
        continue;
      }
      const frame = entryFrame(e);
      const kind = level === PGT_LEVEL_PTE ? 'pte' : isLarge(e) ? 'large' : 'table';
      const frames = kind === 'table' ? 1 : size / PAGE_SIZE;
      const holdsNamed = kind === 'pte' && focus.allocations.includes(allocationOfFrame(sys.mem, frame)?.name ?? '');
      const hit = covers(focus, va, size) || focus.pfns.some((p) => p >= frame && p < frame + frames) || holdsNamed;
      const shared = kind === 'table' && !root.owns(frame);
      const kernel = kind === 'table' ? undefined : kernelDiffers(sys, root.pgd, va, size, focus);
      const frameName = describeFrames(sys, focus, va, frame, frames);
      rows.push({ depth, level, table, index, va, size, kind, frame, flags: formatFlags(entryFlags(e)), frameName, shared, hit, ...(kernel ? { kernel } : {}) });
      if (kind === 'table' && (!shared || covers(focus, va, size))) visit(frame, lowerLevel(level), va, depth + 1);
    }
  };
  visit(root.pgd, PGT_LEVEL_PGD, 0, 0);
  return rows;
}
