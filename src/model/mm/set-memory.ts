// arch/x86/mm/pat/set_memory.c, what the model needs of it: change_page_attr_set_clr() over a range
// of kernel addresses (set_memory_ro/rw/np/p/4k), which sets and clears flags of the leaf entries:
// a large page whole where the change covers it (try_preserve_large_page), split one level at a
// time otherwise (split_large_page); the same for the direct-map alias of a page reached through
// another address (cpa_process_alias); one flush at the end (cpa_flush). On the 2025 design, what
// follows each change into the global nonsensitive pgd is src/model/asi25/pageblock.ts's
// (asiFollowCpa: the September series' mirror of the direct map, patch 05).

import { PAGE_SIZE, PGT_LEVEL_PGD, PGT_LEVEL_PTE, type PgtLevel, indexAt, levelSize } from './geometry.ts';
import { _KERNPG_TABLE, _PAGE_PRESENT, _PAGE_PSE, _PAGE_RW, entryFlags, entryFrame, isLarge, isNone, mkEntry } from './pte.ts';
import { lowerLevel, walk } from './pagetable.ts';
import { tableChanged } from './memory.ts';
import { EFAULT, ENOMEM, allocKernelTable, directMapVa } from './kernel.ts';
import { flushTlbKernelRange } from '../x86/entry.ts';
import type { Exec } from '../asi/session.ts';
import type { System } from '../system.ts';
import { asiFollowCpa, asiPrepareCpa } from '../asi25/pageblock.ts';

/** struct cpa_data's mask_set and mask_clr, and the flags the model's callers pass. */
export interface Cpa {
  readonly set: number;
  readonly clr: number;
  /** set_memory_4k: split down to 4K even where nothing changes. */
  readonly forceSplit?: boolean;
  /** CPA_NO_CHECK_ALIAS. */
  readonly noCheckAlias?: boolean;
  /** The set_direct_map_*_noflush() callers: __change_page_attr_set_clr() alone, the caller flushes. */
  readonly noFlush?: boolean;
  /** Split the large pages the change needs split, and change nothing else (mirrorSplitsFirst). */
  readonly splitOnly?: boolean;
}

/** lookup_address_in_pgd: the slot of the leaf entry mapping `va` (present or not) and its level, or undefined at a none entry. */
export function lookupAddressIn(sys: System, root: number, va: number): { readonly table: number; readonly index: number; readonly level: PgtLevel } | undefined {
  for (let table = root, level: PgtLevel = PGT_LEVEL_PGD; ; level = lowerLevel(level)) {
    const index = indexAt(sys.g, level, va);
    const e = sys.tables.get(table)![index];
    if (isNone(e)) return undefined;
    if (level === PGT_LEVEL_PTE || isLarge(e)) return { table, index, level };
    table = entryFrame(e);
  }
}

/**
 * __split_large_page: a table of the next level down, each entry mapping its part of the large
 * page with the large page's flags (no PSE at PTE level), in place of the large entry. The
 * translations do not change, so the model's TLB, which holds 4K translations, needs no flush.
 */
function splitLargePage(sys: System, slot: { readonly table: number; readonly index: number; readonly level: PgtLevel }): boolean {
  const e = sys.tables.get(slot.table)![slot.index];
  const lower = lowerLevel(slot.level);
  const t = allocKernelTable(sys, lower, false);
  if (t === undefined) return false;
  const pages = levelSize(sys.g, lower) / PAGE_SIZE;
  const flags = lower === PGT_LEVEL_PTE ? entryFlags(e) & ~_PAGE_PSE : entryFlags(e);
  sys.tables.get(t)!.forEach((_, i, entries) => (entries[i] = mkEntry(entryFrame(e) + i * pages, flags)));
  tableChanged(sys.mem, t);
  sys.tables.get(slot.table)![slot.index] = mkEntry(t, _KERNPG_TABLE);
  tableChanged(sys.mem, slot.table);
  return true;
}

/**
 * __change_page_attr on the page table under `root`: the entry mapping `va` takes the change, and
 * the number of pages it covered comes back (up to `numpages`), or -errno (-EFAULT: nothing maps
 * `va`, __cpa_process_fault's answer for an address outside the direct map).
 */
export function changePageAttr(sys: System, root: number, va: number, numpages: number, cpa: Cpa): number {
  for (;;) {
    const slot = lookupAddressIn(sys, root, va);
    if (!slot) return EFAULT;
    const size = levelSize(sys.g, slot.level);
    const e = sys.tables.get(slot.table)![slot.index];
    const flags = (entryFlags(e) & ~cpa.clr) | cpa.set;
    const left = Math.min(numpages, (size - (va % size)) / PAGE_SIZE);
    // try_preserve_large_page: nothing to change in this large page keeps it, as does a change of all of it.
    const whole = slot.level === PGT_LEVEL_PTE || (!cpa.forceSplit && (flags === entryFlags(e) || (va % size === 0 && numpages >= size / PAGE_SIZE)));
    if (whole) {
      if (flags !== entryFlags(e) && !cpa.splitOnly) {
        sys.tables.get(slot.table)![slot.index] = mkEntry(entryFrame(e), flags);
        tableChanged(sys.mem, slot.table);
      }
      return left;
    }
    if (!splitLargePage(sys, slot)) return ENOMEM;
  }
}

/** changePageAttr over all of [va, va + numpages pages): 0 or -errno. */
export function changePageAttrRange(sys: System, root: number, va: number, numpages: number, cpa: Cpa): number {
  for (let done = 0; done < numpages; ) {
    const n = changePageAttr(sys, root, va + done * PAGE_SIZE, numpages - done, cpa);
    if (n < 0) return n;
    done += n;
  }
  return 0;
}

/** is_direct_map (September patch 05). */
export function inDirectMap(sys: System, va: number): boolean {
  return va >= directMapVa(sys, 0) && va < directMapVa(sys, sys.kernel.layout.physFrames);
}

/** One __change_page_attr of the unrestricted page table and what the 2025 design makes follow it: the pages it covered, or -errno. */
function changeAndFollow(k: Exec, va: number, numpages: number, cpa: Cpa): number {
  const prepared = asiPrepareCpa(k, va, numpages, cpa);
  if (prepared < 0) return prepared;
  const n = changePageAttr(k.sys, k.sys.kernel.pgd, va, numpages, cpa);
  if (n < 0) return n;
  const err = asiFollowCpa(k, va, n, cpa);
  return err < 0 ? err : n;
}

/**
 * cpa_process_alias: a page changed through an address outside the direct map (vmalloc, vmap) has
 * its direct-map alias changed too (__change_page_attr_set_clr(&alias_cpa, 0): followed, no alias
 * of its own), and flushed (Linux sets force_flush_all for cpa_flush). 0 or -errno.
 */
function cpaProcessAlias(k: Exec, va: number, numpages: number, cpa: Cpa): number {
  for (let i = 0; i < numpages; i++) {
    const w = walk(k.sys.g, k.sys.tables, k.sys.kernel.pgd, va + i * PAGE_SIZE);
    if (!w.ok) continue;
    const alias = directMapVa(k.sys, w.leaf.frame + Math.floor((va + i * PAGE_SIZE - w.leaf.va) / PAGE_SIZE));
    const err = changeAndFollow(k, alias, 1, cpa);
    if (err < 0) return err;
    flushTlbKernelRange(k.sys, alias, alias + PAGE_SIZE, k.out, k.observe);
  }
  return 0;
}

/**
 * change_page_attr_set_clr: every page of [va, va + numpages pages) in the unrestricted page table,
 * followed by the 2025 design's copies (asiFollowCpa), its aliases, then cpa_flush. 0 or -errno.
 */
export function changePageAttrSetClr(k: Exec, va: number, numpages: number, cpa: Cpa): number {
  let err = 0;
  for (let done = 0; done < numpages && err === 0; ) {
    const addr = va + done * PAGE_SIZE;
    const n = changeAndFollow(k, addr, numpages - done, cpa);
    if (n < 0) err = n;
    else {
      if (!cpa.noCheckAlias && !inDirectMap(k.sys, addr)) err = cpaProcessAlias(k, addr, n, cpa);
      done += n;
    }
  }
  if (!cpa.noFlush) flushTlbKernelRange(k.sys, va, va + numpages * PAGE_SIZE, k.out, k.observe);
  return err;
}

/**
 * set_direct_map_invalid_noflush (__set_pages_np): the page at direct-map address `va` out of the
 * direct map, unflushed. Its caller owes the flush (flushDirectMapPage) before the page is reused;
 * until then TLB-COHERENT allows the stale entries (Ghost.noflushPending). 0 or -errno.
 */
export function setDirectMapInvalidNoflush(k: Exec, va: number): number {
  k.sys.ghost.noflushPending.add(va);
  const err = changePageAttrSetClr(k, va, 1, { set: 0, clr: _PAGE_PRESENT | _PAGE_RW, noCheckAlias: true, noFlush: true });
  if (err < 0) k.sys.ghost.noflushPending.delete(va);
  return err;
}

/** The flush a set_direct_map_invalid_noflush() caller owes: flush_tlb_kernel_range() of the page. */
export function flushDirectMapPage(k: Exec, va: number): void {
  flushTlbKernelRange(k.sys, va, va + PAGE_SIZE, k.out, k.observe);
  k.sys.ghost.noflushPending.delete(va);
}

/** set_direct_map_default_noflush (__set_pages_p): the page back in the direct map, read-write. 0 or -errno. */
export function setDirectMapDefaultNoflush(k: Exec, va: number): number {
  return changePageAttrSetClr(k, va, 1, { set: _PAGE_PRESENT | _PAGE_RW, clr: 0, noCheckAlias: true, noFlush: true });
}
