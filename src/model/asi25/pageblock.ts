// The direct map of the September 2025 series ("[PATCH 00/21] mm: ASI direct map management",
// option pageblockDirectMap). Whether a page is mapped in the restricted address spaces is a
// property of its pageblock (PB_nonsensitive, patch 12), changed only when the allocator flips a
// whole free pageblock from one sensitivity to the other (__rmqueue_asi, patch 18); the global
// nonsensitive pgd's physmap is preallocated down to 2M leaves (patch 04), so a flip never
// allocates a page table. The model's allocator is not a buddy allocator: a freetype's free list
// is the free frames of the pageblocks of its sensitivity that no CPU's per-CPU list holds
// (../mm/pcp.ts), lowest first, and pageblocks of different sensitivity never merge because no
// allocation spans two.

import { type AllocRequest, type Allocation, allocationFails, commitAllocation, findFrames, freeAllocation, inFreeLists, touch } from '../mm/memory.ts';
import { MIGRATE_UNMOVABLE, drainAllPages, freeToPcp, migrateToFreetype, orderToPindex, pcpAllowedOrder, rmqueuePcplist } from '../mm/pcp.ts';
import { PAGE_SIZE, PGT_LEVEL_PMD, levelSize } from '../mm/geometry.ts';
import { directMapVa } from '../mm/kernel.ts';
import { walk } from '../mm/pagetable.ts';
import { _PAGE_PRESENT } from '../mm/pte.ts';
import { flushTlbKernelRange } from '../x86/entry.ts';
import { log } from '../trace.ts';
import type { Exec } from '../asi/session.ts';
import { type System, mutant } from '../system.ts';
import { gfpSensitive, kernelInitPages } from './alloc.ts';
import { globalNonsensitivePgd } from './map.ts';
import { type Cpa, changePageAttrRange, inDirectMap, lookupAddressIn } from '../mm/set-memory.ts';
import { rt, warnOn } from './runtime.ts';

/** pageblock_nr_pages: pageblock_order is the PMD's order on x86 (HPAGE_PMD_ORDER), one 2M leaf of the restricted physmap. */
export function pageblockNrPages(sys: System): number {
  return levelSize(sys.g, PGT_LEVEL_PMD) / PAGE_SIZE;
}

function pageblockOf(sys: System, frame: number): number {
  return Math.floor(frame / pageblockNrPages(sys));
}

/** get_pageblock_freetype()'s sensitivity: a pageblock without PB_nonsensitive is sensitive, "so that the initial value of 0 is correct at boot". */
export function pageblockSensitive(sys: System, frame: number): boolean {
  return rt(sys).pbNonsensitive[pageblockOf(sys, frame)] === 0;
}

/** set_pageblock_sensitive (patch 18). */
function setPageblockSensitive(sys: System, block: number, sensitive: boolean): void {
  rt(sys).pbNonsensitive[block] = sensitive ? 0 : 1;
  touch(sys.mem);
}

/** direct_map_sensitive (patch 19): whether the page is absent from the restricted address spaces. */
export function directMapSensitive(sys: System, frame: number): boolean {
  return !walk(sys.g, sys.tables, globalNonsensitivePgd(sys), directMapVa(sys, frame)).ok;
}

/**
 * set_direct_map_sensitive (patch 18): the pageblocks' leaves in asi_nonsensitive_pgd made present
 * or not, by __change_page_attr_set_clr() with `.pgd = asi_nonsensitive_pgd` (so not mirrored).
 * That function only sets CPA_FLUSHTLB for its caller (change_page_attr_set_clr flushes after
 * it); as posted, no caller here does (F47; flipPageblocks flushes with its fix).
 */
function setDirectMapSensitive(k: Exec, block: number, nrPageblocks: number, sensitive: boolean): void {
  const { sys } = k;
  const first = mutant(sys, 'asi25-flip-maps-next-block') ? block + 1 : block;
  const pages = nrPageblocks * pageblockNrPages(sys);
  const va = directMapVa(sys, first * pageblockNrPages(sys));
  changePageAttrRange(sys, globalNonsensitivePgd(sys), va, pages, sensitive ? { set: 0, clr: _PAGE_PRESENT } : { set: _PAGE_PRESENT, clr: 0 });
}

/**
 * mirror_asi_direct_map (September patch 05), after each __change_page_attr() of the unrestricted
 * direct map (with no `cpa->pgd` of its own): the same change in asi_nonsensitive_pgd. As posted
 * it builds `asi_cpa` with that pgd and then calls `__change_page_attr(cpa, primary)` on the
 * original (F48): the unrestricted page table takes the change twice, the restricted one never.
 * With mirrorTargetsAsiPgd it changes asi_cpa, a set _PAGE_PRESENT included (F49: a
 * set_memory_p() maps sensitive memory), unless mirrorMapsNonsensitiveOnly keeps it out of
 * sensitive pageblocks. Its VM_WARN_ON_ONCE tests the byte after the range (F51), unless
 * mirrorWarnsOnLastByte tests the last one. 0 or -errno.
 */
function mirrorAsiDirectMap(k: Exec, va: number, numpages: number, cpa: Cpa): number {
  const { sys } = k;
  const end = va + numpages * PAGE_SIZE - (sys.options.mirrorWarnsOnLastByte ? 1 : 0);
  warnOn(k, !inDirectMap(sys, end), 'VM_WARN_ON_ONCE(!is_direct_map(*cpa->vaddr + (cpa->numpages * PAGE_SIZE)))');
  const target = sys.options.mirrorTargetsAsiPgd ? globalNonsensitivePgd(sys) : sys.kernel.pgd;
  const nr = pageblockNrPages(sys);
  for (let done = 0; done < numpages; ) {
    const frame = (va - directMapVa(sys, 0)) / PAGE_SIZE + done;
    const inBlock = Math.min(numpages - done, nr - (frame % nr));
    const set = sys.options.mirrorMapsNonsensitiveOnly && pageblockSensitive(sys, frame) ? cpa.set & ~_PAGE_PRESENT : cpa.set;
    const clr = mutant(sys, 'asi25-mirror-drops-clr') ? 0 : cpa.clr;
    const err = changePageAttrRange(sys, target, va + done * PAGE_SIZE, inBlock, { ...cpa, set, clr });
    if (err < 0) return err;
    done += inBlock;
  }
  return 0;
}

/**
 * Before a __change_page_attr() of the unrestricted direct map, with mirrorSplitsFirst: the
 * restricted leaves the mirror will change are split first, so that an -ENOMEM leaves both page
 * tables as they were. As posted the mirror runs after the unrestricted change stands; its split
 * allocates, and when that fails __change_page_attr_set_clr() returns the error with the
 * unrestricted change made (F52). 0 or -errno.
 */
export function asiPrepareCpa(k: Exec, va: number, numpages: number, cpa: Cpa): number {
  const { sys } = k;
  if (!sys.asi25 || !sys.options.pageblockDirectMap || !sys.options.mirrorSplitsFirst || !sys.options.mirrorTargetsAsiPgd || !inDirectMap(sys, va)) return 0;
  return changePageAttrRange(sys, globalNonsensitivePgd(sys), va, numpages, { ...cpa, splitOnly: true });
}

/**
 * What follows a __change_page_attr() of the unrestricted page table into the global nonsensitive
 * pgd on the 2025 design: on the September direct map, the mirror of a direct-map change. Nothing
 * else, as posted: the leaves asi_map() copied (vmalloc and module areas, January patch 17; the
 * January direct map, patch 14) keep the flags they were copied with (F50);
 * setMemoryReachesAsiCopies changes the copy too. 0 or -errno.
 */
export function asiFollowCpa(k: Exec, va: number, numpages: number, cpa: Cpa): number {
  const { sys } = k;
  if (!sys.asi25) return 0;
  if (sys.options.pageblockDirectMap && inDirectMap(sys, va)) return mirrorAsiDirectMap(k, va, numpages, cpa);
  if (!sys.options.setMemoryReachesAsiCopies || !lookupAddressIn(sys, globalNonsensitivePgd(sys), va)) return 0;
  return changePageAttrRange(sys, globalNonsensitivePgd(sys), va, numpages, cpa);
}

/**
 * The flip of __rmqueue_asi (patch 18) over whole free pageblocks: "These pages were formerly
 * sensitive so we need to clear them out before exposing them" (kernel_init_pages), then the
 * mapping and the PB bits; what the caller does not take goes to the new sensitivity's free lists.
 */
function flipPageblocks(k: Exec, block: number, nrPageblocks: number, sensitive: boolean): void {
  const { sys } = k;
  const nr = pageblockNrPages(sys);
  log(k.out, 'note', `__rmqueue_asi: pageblock${nrPageblocks > 1 ? 's' : ''} of pfn ${block * nr}-${(block + nrPageblocks) * nr - 1} become ${sensitive ? 'sensitive' : 'nonsensitive'}`);
  if (!sensitive && !mutant(sys, 'asi25-flip-skips-zeroing')) kernelInitPages(sys, Array.from({ length: nrPageblocks * nr }, (_, i) => block * nr + i));
  setDirectMapSensitive(k, block, nrPageblocks, sensitive);
  if (!mutant(sys, 'asi25-flip-keeps-pageblock-bit')) for (let b = block; b < block + nrPageblocks; b++) setPageblockSensitive(sys, b, sensitive);
  // F47's fix: the shootdown, with IRQs on as __rmqueue_asi asserts, before the pages are handed out.
  if (sensitive && sys.options.sensitiveFlipFlushesTlb) flushTlbKernelRange(sys, directMapVa(sys, block * nr), directMapVa(sys, (block + nrPageblocks) * nr), k.out, k.observe);
}

/**
 * The pageblocks of what boot allocated before the model attached the runtime: boot allocated
 * nothing __GFP_SENSITIVE, and the model packs its allocations (memblock's and the buddy
 * allocator's) side by side, where Linux's early allocations would have flipped pageblocks of
 * their own (__rmqueue_asi allows it "unlikely(early_boot_irqs_disabled)"); each pageblock holding
 * any becomes nonsensitive, with nothing to zero yet. The entry code reads what they hold (a
 * task's asi_state, percpu data) while restricted.
 */
export function pageblocksAtBoot(k: Exec): void {
  const { sys } = k;
  const nr = pageblockNrPages(sys);
  const blocks = new Set<number>();
  for (const a of sys.mem.allocs.values()) if (!gfpSensitive(a)) for (const f of a.frames) blocks.add(Math.floor(f / nr));
  for (const b of [...blocks].sort((x, y) => x - y)) if (pageblockSensitive(sys, b * nr)) flipPageblocks(k, b, 1, false);
}

/** The lowest `count` aligned pageblocks all free in the buddy allocator and of sensitivity `other`, by first block. */
function freePageblocks(sys: System, count: number, other: boolean): number | undefined {
  const nr = pageblockNrPages(sys);
  const whole = (b: number) => {
    if (pageblockSensitive(sys, b * nr) !== other) return false;
    for (let f = b * nr; f < (b + 1) * nr; f++) if (!inFreeLists(sys.mem, f)) return false;
    return true;
  };
  for (let b = 0; (b + count) * nr <= sys.mem.frameAlloc.length; b += count) {
    let ok = true;
    for (let i = b; i < b + count && ok; i++) ok = whole(i);
    if (ok) return b;
  }
  return undefined;
}

function freeFramesOf(sys: System, sensitive: boolean): number {
  let n = 0;
  for (let f = 0; f < sys.mem.frameAlloc.length; f++) if (inFreeLists(sys.mem, f) && pageblockSensitive(sys, f) === sensitive) n++;
  return n;
}

/**
 * __rmqueue_asi (patch 18): rmqueue found no free page of the request's sensitivity, so whole free
 * pageblocks of the other change sides, alloc_order = max(order, pageblock_order). The model's
 * non-contiguous request is vmalloc's order-0 allocations one after another: each that finds its
 * list empty flips one pageblock. False: none left to flip, or an ALLOC_NOBLOCK caller (GFP_ATOMIC,
 * patch 16), for whom the flip's TLB shootdown is not safe: "Even if IRQs are on this isn't safe if
 * the caller holds a lock".
 */
function rmqueueAsi(k: Exec, req: AllocRequest, sensitive: boolean): boolean {
  const { sys } = k;
  if (req.atomic && !mutant(sys, 'asi25-rmqueue-asi-ignores-noblock')) {
    log(k.out, 'note', '__rmqueue_asi: ALLOC_NOBLOCK (GFP_ATOMIC), no pageblock flipped');
    return false;
  }
  warnOn(k, sys.exec.irqsDisabled, 'lockdep_assert(!irqs_disabled() || unlikely(early_boot_irqs_disabled)) in __rmqueue_asi');
  const nr = pageblockNrPages(sys);
  if (req.contiguousAlign) {
    const count = Math.max(1, req.contiguousAlign / nr);
    const block = freePageblocks(sys, count, !sensitive);
    if (block === undefined) return false;
    flipPageblocks(k, block, count, sensitive);
    return true;
  }
  for (let missing = req.pages - freeFramesOf(sys, sensitive); missing > 0; missing -= nr) {
    const block = freePageblocks(sys, 1, !sensitive);
    if (block === undefined) return false;
    flipPageblocks(k, block, 1, sensitive);
  }
  return true;
}

/**
 * page_asi_mapping_bad (patch 19), from check_new_pages and free_pages_prepare: bad_page() when a
 * pageblock's restricted mapping disagrees with the sensitivity asked for (the request's at
 * allocation, the pageblock's freetype at free), looked at once per pageblock the frames touch.
 * The kernel then skips the page (alloc) or leaks it (free); the model reports it and goes on.
 */
export function pageAsiMappingBad(k: { sys: System; out: Exec['out']; cpu?: Exec['cpu'] }, frames: readonly number[], sensitiveOf: (frame: number) => boolean): boolean {
  const { sys } = k;
  const bad = frames.find((f, i) => (i === 0 || pageblockOf(sys, f) !== pageblockOf(sys, frames[i - 1])) && directMapSensitive(sys, f) !== sensitiveOf(f));
  return warnOn(k, bad !== undefined, `bad_page(pfn ${bad}): "page unexpectedly ${bad !== undefined && sensitiveOf(bad) ? 'nonsensitive' : 'sensitive'}"`);
}

/** A block of frames the allocator hands out or takes back as one: its order, when the per-CPU lists hold blocks of it. */
function pcpOrder(pages: number, contiguous: boolean): number | undefined {
  const order = contiguous ? Math.log2(pages) : 0;
  return Number.isInteger(order) && pcpAllowedOrder(order) ? order : undefined;
}

/** order_to_pindex of the freetype (every model allocation is MIGRATE_UNMOVABLE). */
function pindexOf(sys: System, sensitive: boolean, order: number): number {
  return orderToPindex(migrateToFreetype(MIGRATE_UNMOVABLE, sensitive && !mutant(sys, 'asi25-pindex-ignores-sensitivity')), order);
}

/**
 * The frames of one request: from the CPU's per-CPU list of the freetype where the order allows
 * (rmqueue_pcplist), and what that list cannot give from the free lists of the request's freetype
 * (patch 12's gfp_freetype: __GFP_SENSITIVE picks the sensitive lists), then __rmqueue_asi.
 * Vmalloc's pages are order-0 allocations one after another, the first ones from the list; when a
 * later one fails, vmalloc's error path gives the earlier ones back to it, so the model takes them
 * off the list only once the rest is found.
 */
function takeFrames(k: Exec, req: AllocRequest, sensitive: boolean): number[] | undefined {
  const { sys } = k;
  const { pcp } = rt(sys);
  const inLists = mutant(sys, 'asi25-rmqueue-ignores-freetype') ? undefined : (f: number) => pageblockSensitive(sys, f) === sensitive;
  const buddy = (r: AllocRequest) => findFrames(sys.mem, r, inLists) ?? (rmqueueAsi(k, r, sensitive) ? findFrames(sys.mem, r, inLists) : undefined);
  const order = pcpOrder(req.pages, req.contiguousAlign !== undefined);
  if (order === undefined) return buddy(req);
  const pindex = pindexOf(sys, sensitive, order);
  const cpu = k.cpu.id;
  const fromList = Math.min(pcp.lists[cpu][pindex].length, req.pages >> order);
  const rest = fromList << order === req.pages ? [] : buddy({ ...req, pages: req.pages - (fromList << order) });
  if (!rest) return undefined;
  const got: number[] = [];
  for (let i = 0; i < fromList; i++) {
    const first = rmqueuePcplist(pcp, sys.mem, cpu, pindex)!;
    for (let f = first; f < first + (1 << order); f++) got.push(f);
  }
  return [...got, ...rest];
}

/** The slow path's drain_all_pages(): false when no CPU's list held a page. */
function drained(k: Exec): boolean {
  if (!drainAllPages(rt(k.sys).pcp, k.sys.mem)) return false;
  log(k.out, 'note', 'drain_all_pages: the per-CPU lists given back to the free lists');
  return true;
}

/**
 * __alloc_pages on the September design: takeFrames, and when that finds nothing, the slow path's
 * drain_all_pages() and one more try (for callers that may block: GFP_ATOMIC ones go to `nopage`
 * before direct reclaim); then check_new_pages (check_new_page's refcount test, patch 19's mapping
 * test).
 */
export function rmqueue(k: Exec, req: AllocRequest & { readonly zeroed?: boolean }): Allocation | undefined {
  const { sys } = k;
  if (!req.boot && allocationFails(sys.mem)) return undefined;
  const sensitive = gfpSensitive(req);
  const frames = takeFrames(k, req, sensitive) ?? (!req.atomic && drained(k) ? takeFrames(k, req, sensitive) : undefined);
  if (!frames) return undefined;
  // check_new_page(): a page handed out, from a per-CPU list or the free lists, is free (_refcount 0).
  const taken = frames.find((f) => sys.mem.frameAlloc[f] !== -1);
  warnOn(k, taken !== undefined, `bad_page(pfn ${taken}): "nonzero _refcount"`);
  pageAsiMappingBad(k, frames, () => sensitive);
  if (req.zeroed) kernelInitPages(sys, frames);
  return commitAllocation(sys.mem, req, frames);
}

/**
 * __free_pages on the September design: free_pages_prepare's bad_page() check (patch 19), then the
 * freeing CPU's per-CPU list of the pageblock's freetype (get_pfnblock_freetype) where the order
 * allows, or the buddy allocator's free lists.
 */
export function freePagesAsi(k: Exec, a: Allocation): void {
  const { sys } = k;
  pageAsiMappingBad(k, a.frames, (f) => pageblockSensitive(sys, f));
  freeAllocation(sys.mem, a.id);
  const order = pcpOrder(a.frames.length, a.contiguous === true);
  if (order === undefined) return;
  for (let i = 0; i < a.frames.length; i += 1 << order) freeToPcp(rt(sys).pcp, sys.mem, k.cpu.id, pindexOf(sys, pageblockSensitive(sys, a.frames[i]), order), a.frames[i]);
}
