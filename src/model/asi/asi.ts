// struct asi and its page table: RFC v2 patches 01, 04-16, 19-20 (arch/x86/mm/asi.c and
// asi_pagetable.c), function by function. The `rfc-v2` profile runs the posted code as written;
// each design option of options.ts changes one named place, marked `// fixed: <option>`.

import {
  type PgtLevel,
  PAGE_SIZE,
  PGT_LEVEL_P4D,
  PGT_LEVEL_PGD,
  PGT_LEVEL_PMD,
  PGT_LEVEL_PTE,
  PGT_LEVEL_PUD,
  LEVEL_NAMES,
  addrEnd,
  entriesPerTable,
  formatVa,
  indexAt,
  levelSize,
  roundDown,
  roundUp,
} from '../mm/geometry.ts';
import { type Allocation, KERNEL, allocFrames, allocationFails, allocationOfFrame, freeAllocation, objectsInFrame, tableChanged, touch, unitKey } from '../mm/memory.ts';
import { kfree, kmalloc, objectMemory, slabPageHeldBy } from '../mm/slab.ts';
import { type PercpuVar, perCpuOffsetPtr, percpuVar } from '../mm/percpu.ts';
import { framesReached, lowerLevel, mappedPages, reachableTables } from '../mm/pagetable.ts';
import { _KERNPG_TABLE, _PAGE_NX, _PAGE_PSE, entryFlags, entryFrame, formatEntry, isLarge, isNone, isPresent, mkEntry } from '../mm/pte.ts';
import { type Log, log } from '../trace.ts';
import { ASI_SESSION_STATE_INACTIVE, asiPcid, flushTlbRange } from '../x86/cpu.ts';
import { accessVa, onEachCpu } from '../x86/entry.ts';
import { leaveIsolationFirst } from './session.ts';
import { freesMemory, mightSleep, spinLock, spinUnlock } from '../x86/context.ts';
import { type ApiCall, type Asi, type AsiRange, type System, legacyMemory, mutant, thpEnabled } from '../system.ts';
import { EBUSY, EFAULT, EINVAL, ENOMEM, type EntrySlot, directMapVa, taskStackVa } from '../mm/kernel.ts';

// asi_create() map flags (patches 15, 16, 19, 20).
export const ASI_MAP_STACK_CANARY = 0x01;
export const ASI_MAP_CPU_PTR = 0x02;
export const ASI_MAP_CURRENT_TASK = 0x04;
export const ASI_MAP_RCU_DATA = 0x08;
export const ASI_MAP_CPU_HW_EVENTS = 0x10;
export const ASI_MAP_ALL = 0x1f;

/** asi_map_percpu_options[] (patches 15, 16, 19, 20). */
const ASI_MAP_PERCPU_OPTIONS: readonly { flag: number; var: PercpuVar }[] = [
  { flag: ASI_MAP_STACK_CANARY, var: 'fixed_percpu_data' },
  { flag: ASI_MAP_CPU_PTR, var: 'this_cpu_off' },
  { flag: ASI_MAP_CURRENT_TASK, var: 'current_task' },
  { flag: ASI_MAP_RCU_DATA, var: 'rcu_data' },
  { flag: ASI_MAP_CPU_HW_EVENTS, var: 'cpu_hw_events' },
];

export function formatMapFlags(flags: number): string {
  const names = ['STACK_CANARY', 'CPU_PTR', 'CURRENT_TASK', 'RCU_DATA', 'CPU_HW_EVENTS'];
  const set = names.filter((_, i) => flags & (1 << i));
  return set.length ? set.join('|') : '0';
}

// ---- entries and ownership ------------------------------------------------------------------

/**
 * An entry as the ASI code reads it. A slot in a frame that holds no page table (an unvalidated
 * offset, the offset-not-validated mutant, points into a data page) reads as zeros: data contents
 * are not modelled, as in srcTable.
 */
function entryAt(sys: System, slot: EntrySlot): number {
  return sys.tables.get(slot.table)?.[slot.index] ?? 0;
}

export function ownsTable(asi: Asi, frame: number): boolean {
  return frame === asi.pgd || asi.backend.some((b) => b.frame === frame);
}

/** Every ASI page-table write goes through here; a write to a table the ASI does not own is PT-OWN's. */
function asiWrite(sys: System, asi: Asi, slot: EntrySlot, value: number): void {
  const table = sys.tables.get(slot.table);
  if (!ownsTable(asi, slot.table)) {
    sys.ghost.events.push({
      invariant: 'PT-OWN',
      message: `ASI ${asi.id} wrote ${formatEntry(value)} into ${table ? 'table' : 'data page'} pfn ${slot.table} (${allocationOfFrame(sys.mem, slot.table)?.name ?? 'free'}), which it does not own`,
    });
  }
  // A data page: the write corrupts contents the model does not hold (PT-OWN above says so).
  if (!table) return;
  table[slot.index] = value;
  tableChanged(sys.mem, slot.table);
}

/** A translation the ASI loses: ghost history for RANGE-OVERLAP-ACCOUNTED. */
function asiClear(sys: System, asi: Asi, slot: EntrySlot, va: number, level: PgtLevel): void {
  if (isNone(entryAt(sys, slot))) return;
  asiWrite(sys, asi, slot, 0);
  sys.ghost.cleared.push({ asi: asi.id, va, size: levelSize(sys.g, level) });
}

/** asi_valid_offset (patch 04): the pointer is in a backend page. asi->pgd is not one. */
function asiValidOffset(asi: Asi, table: number): boolean {
  return asi.backend.some((b) => b.frame === table);
}

function slotIn(sys: System, table: number, level: PgtLevel, addr: number): EntrySlot {
  return { table, index: indexAt(sys.g, level, addr) };
}

/** asi_pmd_offset/asi_pud_offset/asi_pte_offset (patch 05): the lower table must be the ASI's. */
function asiOffset(sys: System, asi: Asi, parent: EntrySlot, level: PgtLevel, addr: number, out: Log): EntrySlot | number {
  const e = entryAt(sys, parent);
  const table = entryFrame(e);
  const wrongKind = sys.options.offsetChecksLevel && (isLarge(e) || asi.backend.find((b) => b.frame === table)?.level !== level); // fixed: offsetChecksLevel
  if ((wrongKind || !asiValidOffset(asi, table)) && !mutant(sys, 'offset-not-validated')) {
    log(out, 'pr_err', `ASI ${asi.id}: ${LEVEL_NAMES[level].toUpperCase()} pfn ${table} not found`);
    return EINVAL;
  }
  return slotIn(sys, table, level, addr);
}

/** asi_add_backend_page (patch 04). */
function allocBackendPage(sys: System, asi: Asi, level: PgtLevel): number | undefined {
  mightSleep(sys, `alloc_page for an asi#${asi.id} ${LEVEL_NAMES[level]} table`);
  const a = allocFrames(sys.mem, { kind: 'pgtable', owner: { kind: 'asi', id: asi.id }, name: `ASI ${asi.id} ${LEVEL_NAMES[level]} table`, pages: 1, sensitive: false, level });
  if (!a) return undefined;
  sys.tables.set(a.frames[0], new Int32Array(entriesPerTable(sys.g)));
  tableChanged(sys.mem, a.frames[0]);
  asi.backend.push({ frame: a.frames[0], level });
  return a.frames[0];
}

/** asi_pud_alloc/asi_pmd_alloc/asi_pte_alloc (patch 06). */
function asiAlloc(sys: System, asi: Asi, parent: EntrySlot, level: PgtLevel, addr: number, out: Log): EntrySlot | number {
  if (!isNone(entryAt(sys, parent))) return asiOffset(sys, asi, parent, level, addr, out);
  const table = allocBackendPage(sys, asi, level);
  if (table === undefined) return ENOMEM;
  asiWrite(sys, asi, parent, mkEntry(table, _KERNPG_TABLE));
  return slotIn(sys, table, level, addr);
}

/**
 * asi_set_pmd/asi_set_pud/asi_set_p4d (patch 07): equal is fine, overwriting is -EBUSY.
 * asi_set_pgd has the same shape but tests pgd_none(), which is always false with 4-level paging,
 * so with an empty destination it still refuses: the posted code cannot map at PGT_LEVEL_PGD.
 */
function asiSet(sys: System, asi: Asi, slot: EntrySlot, value: number, level: PgtLevel, out: Log): number {
  const cur = entryAt(sys, slot);
  if (cur === value) return 0;
  const destNone = level === PGT_LEVEL_PGD ? false : isNone(cur);
  if (!destNone) {
    log(out, 'pr_err', `ASI ${asi.id}: ${LEVEL_NAMES[level].toUpperCase()} overwriting ${formatEntry(cur)} with ${formatEntry(value)}`);
    return EBUSY;
  }
  asiWrite(sys, asi, slot, value);
  return 0;
}

// ---- copy (patch 08) ------------------------------------------------------------------------

/** What one copy did: entries it relies on ("level:va") and entries it changed from none. */
interface CopyCtx {
  readonly keys: string[];
  readonly newlySet: { slot: EntrySlot; va: number; level: PgtLevel }[];
}

function entryKey(sys: System, level: PgtLevel, va: number): string {
  return `${level}:${roundDown(va, levelSize(sys.g, level))}`;
}

/** asi_set_pXX as called by the copy loops, recording what the range now relies on. */
function copySet(sys: System, asi: Asi, slot: EntrySlot, value: number, level: PgtLevel, va: number, ctx: CopyCtx, out: Log): number {
  const wasNone = isNone(entryAt(sys, slot));
  const err = level === PGT_LEVEL_PTE ? (asiWrite(sys, asi, slot, value), 0) : asiSet(sys, asi, slot, value, level, out);
  if (err || isNone(value)) return err;
  ctx.keys.push(entryKey(sys, level, va));
  if (wasNone) ctx.newlySet.push({ slot, va: roundDown(va, levelSize(sys.g, level)), level });
  return 0;
}

/**
 * pmd_trans_huge()/pud_trans_huge() on a kernel entry: without CONFIG_TRANSPARENT_HUGEPAGE they are
 * 0 (include/asm-generic/pgtable.h), whatever the PSE bit says.
 */
function transHuge(sys: System, e: number): boolean {
  return isLarge(e) && (thpEnabled(sys) || sys.options.pmdLargeNotTransHuge); // fixed: pmdLargeNotTransHuge
}

/**
 * The lower table a kernel entry points to, as pmd_offset()/pte_offset_map() read it. An entry the
 * copy walks into although it is a large page (transHuge above) has a data page there: it is read
 * as a table, page-table pages as what they hold and any other frame as zeros (data contents are
 * not modelled; in the kernel whatever the page holds becomes entries).
 */
function srcTable(sys: System, asi: Asi, parent: number, level: PgtLevel): Int32Array {
  const frame = entryFrame(parent);
  const table = sys.tables.get(frame);
  if (isLarge(parent)) {
    const name = allocationOfFrame(sys.mem, frame)?.name ?? 'nobody (free)';
    sys.ghost.events.push({
      invariant: 'PT-OWN',
      message: `ASI ${asi.id} copy reads pfn ${frame}, ${table ? name : `a data page of ${name}`}, as a ${LEVEL_NAMES[level]} table (a kernel ${LEVEL_NAMES[level + 1]} large page that pmd_trans_huge/pud_trans_huge do not see without CONFIG_TRANSPARENT_HUGEPAGE)`,
    });
  }
  return table ?? new Int32Array(entriesPerTable(sys.g));
}

function copyPteRange(sys: System, asi: Asi, dstPmd: EntrySlot, srcPmd: number, addr: number, end: number, ctx: CopyCtx, out: Log): number {
  const dst = asiAlloc(sys, asi, dstPmd, PGT_LEVEL_PTE, addr, out);
  if (typeof dst === 'number') return dst;
  addr = roundDown(addr, PAGE_SIZE);
  const src = srcTable(sys, asi, srcPmd, PGT_LEVEL_PTE);
  const stop = mutant(sys, 'pte-copy-stops-early') ? end - PAGE_SIZE : end;
  do {
    let value = src[indexAt(sys.g, PGT_LEVEL_PTE, addr)];
    if (mutant(sys, 'copy-drops-nx')) value = value & ~_PAGE_NX;
    copySet(sys, asi, slotIn(sys, dst.table, PGT_LEVEL_PTE, addr), value, PGT_LEVEL_PTE, addr, ctx, out);
    addr += PAGE_SIZE;
  } while (addr < stop);
  return 0;
}

/**
 * fixed: splitLargePages. The ASI builds its own lower tables under `parent` and maps only the
 * requested part of the kernel large page `large` (at largeLevel) in entries of the requested level.
 */
function splitLarge(sys: System, asi: Asi, parent: EntrySlot, large: number, largeLevel: PgtLevel, addr: number, end: number, req: PgtLevel, ctx: CopyCtx, out: Log): number {
  const level = lowerLevel(largeLevel);
  const dst = asiAlloc(sys, asi, parent, level, addr, out);
  if (typeof dst === 'number') return dst;
  const largeBase = roundDown(addr, levelSize(sys.g, largeLevel));
  const flags = entryFlags(large);
  const everything = mutant(sys, 'split-maps-whole-large-page');
  let a = everything ? largeBase : addr;
  const stop = everything ? largeBase + levelSize(sys.g, largeLevel) : end;
  do {
    const next = addrEnd(sys.g, level, a, stop);
    const frame = entryFrame(large) + (roundDown(a, levelSize(sys.g, level)) - largeBase) / PAGE_SIZE;
    const slot = slotIn(sys, dst.table, level, a);
    const err =
      level === PGT_LEVEL_PTE || (everything ? level <= req : takesWholeEntry(sys, req, level, a, next))
        ? copySet(sys, asi, slot, mkEntry(frame, level === PGT_LEVEL_PTE ? flags & ~_PAGE_PSE : flags), level, a, ctx, out)
        : splitLarge(sys, asi, slot, mkEntry(frame, flags), level, a, next, req, ctx, out);
    if (err) return err;
    a = next;
  } while (a < stop);
  return 0;
}

/**
 * fixed: privateLowerTables. A whole kernel entry that points to a lower table is not copied (the
 * ASI would share the kernel's table, and whatever the kernel maps there later appears in the
 * ASI): the copy descends and builds the ASI's own tables, down to the leaves.
 */
function descendsPrivately(sys: System, src: number): boolean {
  return sys.options.privateLowerTables && !isNone(src) && !isLarge(src);
}

/** asi_copy_pmd_range and asi_copy_pud_range: the same loop one level apart. */
function copyMidRange(sys: System, asi: Asi, level: typeof PGT_LEVEL_PMD | typeof PGT_LEVEL_PUD, dstParent: EntrySlot, srcParent: number, addr: number, end: number, req: PgtLevel, ctx: CopyCtx, out: Log): number {
  const dst = asiAlloc(sys, asi, dstParent, level, addr, out);
  if (typeof dst === 'number') return dst;
  const srcEntries = srcTable(sys, asi, srcParent, level);
  do {
    const next = addrEnd(sys.g, level, addr, end);
    const dstSlot = slotIn(sys, dst.table, level, addr);
    const src = srcEntries[indexAt(sys.g, level, addr)];
    let err: number;
    const whole = takesWholeEntry(sys, req, level, addr, next);
    if (transHuge(sys, src) && !whole && sys.options.splitLargePages) {
      err = splitLarge(sys, asi, dstSlot, src, level, addr, next, req, ctx, out); // fixed: splitLargePages
    } else if ((whole && !descendsPrivately(sys, src)) || isNone(src) || transHuge(sys, src)) {
      err = copySet(sys, asi, dstSlot, src, level, addr, ctx, out);
    } else if (level === PGT_LEVEL_PMD && !isPresent(src)) {
      // RFC v2 patch 08: `if (!pmd_present(*src_pmd)) { pr_warn(...); pmd_clear(dst_pmd); continue; }`
      log(out, 'pr_warn', `ASI ${asi.id}: PMD not present for [${formatVa(sys.g, addr)},${formatVa(sys.g, next - 1)}]`);
      asiClear(sys, asi, dstSlot, roundDown(addr, levelSize(sys.g, level)), level);
      err = 0;
    } else {
      err = level === PGT_LEVEL_PMD ? copyPteRange(sys, asi, dstSlot, src, addr, next, ctx, out) : copyMidRange(sys, asi, PGT_LEVEL_PMD, dstSlot, src, addr, next, req, ctx, out);
      if (err) log(out, 'pr_err', `ASI ${asi.id}: ${LEVEL_NAMES[level].toUpperCase()} error copying ${LEVEL_NAMES[level - 1].toUpperCase()} addr=${formatVa(sys.g, addr)} next=${formatVa(sys.g, next)}`);
    }
    if (err) return err;
    addr = next;
  } while (addr < end);
  return 0;
}

/**
 * The table asi_copy_pgd_range copies from: `current->mm->pgd` in patches 08, 10 and 14. A user
 * task's pgd shares init_mm's kernel half: pgd_alloc copied its top-level entries
 * (clone_pgd_range), and every top-level slot the kernel uses at run time is populated at boot, so
 * the model reads init_mm.pgd for it. A kernel thread has no mm: undefined, after the oops.
 */
function copySource(sys: System, asi: Asi, out: Log): number | undefined {
  const kthread = sys.exec.id < 0 && sys.config.kernel?.apiCaller === 'kernel-thread';
  if (!kthread || sys.options.copyFromInitMm) return sys.kernel.pgd; // fixed: copyFromInitMm
  const bug = `BUG: kernel NULL pointer dereference: asi_map_range of asi#${asi.id} reads current->mm->pgd in a kernel thread (current->mm == NULL), holding asi#${asi.id}->lock`;
  log(out, 'pr_err', bug);
  sys.ghost.events.push({ invariant: 'NO-WARN', message: bug });
  return undefined;
}

/**
 * asi_copy_pgd_range, with asi_copy_p4d_range folded in: asi_p4d_alloc() returns the pgd itself
 * when 5-level paging is off, and pgd_none() is always false then, so only PGT_LEVEL_PGD takes the
 * asi_set_pgd() branch.
 */
function copyPgdRange(sys: System, asi: Asi, addr: number, end: number, req: PgtLevel, ctx: CopyCtx, out: Log): number {
  const srcPgd = copySource(sys, asi, out);
  if (srcPgd === undefined) return EFAULT;
  do {
    const next = addrEnd(sys.g, PGT_LEVEL_PGD, addr, end);
    const dst = slotIn(sys, asi.pgd, PGT_LEVEL_PGD, addr);
    const src = slotIn(sys, srcPgd, PGT_LEVEL_PGD, addr);
    let err: number;
    if (req === PGT_LEVEL_PGD && !sys.options.exactExtent) {
      err = asiSet(sys, asi, dst, entryAt(sys, src), PGT_LEVEL_PGD, out);
      if (!err && !isNone(entryAt(sys, src))) ctx.keys.push(entryKey(sys, PGT_LEVEL_PGD, addr));
    } else if ((takesWholeEntry(sys, Math.min(req, PGT_LEVEL_P4D) as PgtLevel, PGT_LEVEL_P4D, addr, next) && !descendsPrivately(sys, entryAt(sys, src))) || isNone(entryAt(sys, src))) {
      err = copySet(sys, asi, dst, entryAt(sys, src), PGT_LEVEL_P4D, addr, ctx, out);
    } else {
      err = copyMidRange(sys, asi, PGT_LEVEL_PUD, dst, entryAt(sys, src), addr, next, req, ctx, out);
      if (err) log(out, 'pr_err', `ASI ${asi.id}: PGD error copying P4D addr=${formatVa(sys.g, addr)} next=${formatVa(sys.g, next)}`);
    }
    if (err) return err;
    addr = next;
  } while (addr < end);
  return 0;
}

// ---- range tracking (patches 10, 14) --------------------------------------------------------

/** sizeof(struct asi_range_mapping) (patches 10, 14): list_head, ptr, size, level, overlap: kmalloc-64. */
const ASI_RANGE_MAPPING_SIZE = 40;
/** sizeof(struct asi) (patches 01, 03, 04, 10): the locks, pgd, mapping_list, backend_pages and the 128-entry fault_log: kmalloc-2k. */
const ASI_STRUCT_SIZE = 0x458;

/**
 * kmalloc(size, GFP_KERNEL) of the ASI's own bookkeeping (struct asi, a range_mapping), from the
 * kmalloc caches every kernel caller shares: its kmalloc id, or -ENOMEM. asi-check 0.1 kept them
 * out of memory (-1) and only took the fault-injection tick.
 */
function kernelRecord(sys: System, size: number, name: string): number {
  if (legacyMemory(sys)) return allocationFails(sys.mem) ? ENOMEM : -1;
  const o = kmalloc(sys, size, { sensitive: false, name, owner: KERNEL, kind: 'asi', boot: false });
  return typeof o === 'number' ? o : o.id;
}

/** kfree of what kernelRecord allocated. */
function freeRecord(sys: System, id: number): void {
  if (id >= 0) kfree(sys, id);
}

/** ASI_RANGE_MAP_ADDR / ASI_RANGE_MAP_END (patch 14): the range rounded out to its level. */
export function rfcRangeExtent(sys: System, r: { ptr: number; size: number; level: PgtLevel }): [number, number] {
  const s = levelSize(sys.g, r.level);
  return [roundDown(r.ptr, s), roundUp(r.ptr + r.size, s)];
}

/** What a range's mapping can reach: its RFC extent, or only its pages with exactExtent. */
export function rangeExtent(sys: System, r: { ptr: number; size: number; level: PgtLevel }): [number, number] {
  return sys.options.exactExtent ? [roundDown(r.ptr, PAGE_SIZE), roundUp(r.ptr + r.size, PAGE_SIZE)] : rfcRangeExtent(sys, r);
}

/**
 * Whether the copy (or clear) takes the whole entry at this level for [addr, next): the RFC does at
 * exactly the requested level; with exactExtent only where the request covers the entry.
 */
function takesWholeEntry(sys: System, req: PgtLevel, level: PgtLevel, addr: number, next: number): boolean {
  if (!sys.options.exactExtent) return req === level;
  const size = levelSize(sys.g, level);
  return req >= level && addr % size === 0 && next - addr === size; // fixed: exactExtent
}

function describe(sys: System, r: { ptr: number; size: number; level: PgtLevel }): string {
  return `${formatVa(sys.g, r.ptr)}/${r.size.toString(16)}/${r.level}`;
}

/** Ghost: the objects, frame by frame, that the range's bytes reach through the kernel page table now. */
function reachedUnits(sys: System, ptr: number, size: number): string[] {
  const units = new Set<string>();
  for (const fb of framesReached(sys.g, sys.tables, sys.kernel.pgd, ptr, ptr + size)) {
    for (const o of objectsInFrame(sys.mem, fb.frame, fb.lo, fb.hi)) units.add(unitKey(fb.frame, o));
  }
  return [...units];
}

/** asi_map_overlap (patch 14), as posted: counts raw new range against existing rounded extents. */
function asiMapOverlap(sys: System, asi: Asi, ptr: number, size: number, level: PgtLevel, ctx: CopyCtx, out: Log): number {
  const addr = ptr;
  const end = ptr + size;
  let needMapping = true;
  let overlap = 0;
  for (const range of asi.ranges) {
    if (range.ptr === ptr && range.size === size) {
      log(out, 'pr_debug', `ASI ${asi.id}: MAP ${describe(sys, { ptr, size, level })} already mapped`);
      return EBUSY;
    }
    const [mapAddr, mapEnd] = rfcRangeExtent(sys, range);
    if (end <= mapAddr || addr >= mapEnd) continue;
    log(out, 'pr_debug', `ASI ${asi.id}: MAP ${describe(sys, { ptr, size, level })} overlaps with ${describe(sys, range)}`);
    range.overlap++;
    touch(sys.mem); // a count taken stays taken when the map fails later without rollback
    overlap++;
    if (addr >= mapAddr && end <= mapEnd) {
      log(out, 'pr_debug', `ASI ${asi.id}: MAP ${describe(sys, { ptr, size, level })} implicitly mapped`);
      needMapping = false;
    }
  }
  if (needMapping) {
    const err = copyPgdRange(sys, asi, addr, end, level, ctx, out);
    if (err) return err;
  }
  return overlap;
}

/** Ranges whose extents meet [lo, hi) (the refuse policy's test). */
function overlapping(sys: System, asi: Asi, lo: number, hi: number): AsiRange[] {
  return asi.ranges.filter((r) => {
    const [a, b] = rangeExtent(sys, r);
    return a < hi && lo < b;
  });
}

/** The map step of each overlap policy; returns the overlap count or -errno. */
function mapWithPolicy(sys: System, asi: Asi, ptr: number, size: number, level: PgtLevel, ctx: CopyCtx, out: Log): number {
  const policy = sys.options.overlapPolicy;
  if (policy === 'count-ranges') return asiMapOverlap(sys, asi, ptr, size, level, ctx, out);
  if (asi.ranges.some((r) => r.ptr === ptr && r.size === size)) {
    log(out, 'pr_debug', `ASI ${asi.id}: MAP ${describe(sys, { ptr, size, level })} already mapped`);
    return EBUSY;
  }
  if (policy === 'refuse' && !mutant(sys, 'overlap-check-skipped')) {
    const [lo, hi] = rangeExtent(sys, { ptr, size, level });
    const other = overlapping(sys, asi, lo, hi)[0];
    if (other) {
      log(out, 'pr_debug', `ASI ${asi.id}: MAP ${describe(sys, { ptr, size, level })} refused: overlaps ${describe(sys, other)}`);
      return EBUSY;
    }
  }
  return copyPgdRange(sys, asi, ptr, ptr + size, level, ctx, out) || 0;
}

/** fixed: rollbackOnError. Undo what a failed map set, and the counts it took. */
function rollback(sys: System, asi: Asi, ctx: CopyCtx, countsTaken: AsiRange[]): void {
  if (mutant(sys, 'rollback-forgets-tables')) return;
  for (const s of ctx.newlySet) asiClear(sys, asi, s.slot, s.va, s.level);
  for (const r of countsTaken) r.overlap--;
  touch(sys.mem);
}

/**
 * Why asi_map_range refuses a request, if it does. fixed: mapRequiresLiveMemory, a request that
 * reaches a free frame (no caller owns what will be allocated there later, yet the ASI would map
 * it); fixed: mapRefusesSharedSlabPages, a request whose pages, on a slab page, hold a free slot or
 * an object it does not reach (the page would bring them, and what fills the slot later).
 */
function refusal(sys: System, ptr: number, size: number): string | undefined {
  const { mapRequiresLiveMemory, mapRefusesSharedSlabPages } = sys.options;
  if (!mapRequiresLiveMemory && !mapRefusesSharedSlabPages) return undefined;
  const reached = framesReached(sys.g, sys.tables, sys.kernel.pgd, ptr, ptr + size);
  const free = mapRequiresLiveMemory ? reached.find((fb) => !allocationOfFrame(sys.mem, fb.frame)) : undefined;
  if (free) return `pfn ${free.frame} is free memory`;
  const shared = mapRefusesSharedSlabPages ? reached.find((fb) => !slabPageHeldBy(sys, fb.frame, fb.lo, fb.hi)) : undefined;
  return shared && `pfn ${shared.frame} is a slab page with a free slot or another object on it`;
}

/** asi_map_range (patches 08, 10, 14). */
export function asiMapRange(sys: System, asi: Asi, ptr: number, size: number, level: PgtLevel, out: Log): number {
  const why = refusal(sys, ptr, size);
  if (why !== undefined) {
    log(out, 'pr_err', `ASI ${asi.id}: MAP ${describe(sys, { ptr, size, level })} refused: ${why}`);
    return EINVAL;
  }
  const [mapAddr, mapEnd] = rfcRangeExtent(sys, { ptr, size, level });
  const quiet = isCurrentStackOrTask(sys, ptr);
  if (!quiet) {
    log(out, 'pr_debug', () => `ASI ${asi.id}: MAP ${describe(sys, { ptr, size, level })} -> ${formatVa(sys.g, mapAddr)}-${formatVa(sys.g, mapEnd)}`);
    if (mapAddr < ptr) log(out, 'pr_debug', () => `ASI ${asi.id}: MAP LEAK ${formatVa(sys.g, mapAddr)}-${formatVa(sys.g, ptr)}`);
    if (mapEnd > ptr + size) log(out, 'pr_debug', () => `ASI ${asi.id}: MAP LEAK ${formatVa(sys.g, ptr + size)}-${formatVa(sys.g, mapEnd)}`);
  }
  asiLockIrqsave(sys, asi);
  asiPoint(sys, 'spin_lock_irqsave(&asi->lock)');
  // The copy's first read under the lock: asi_pgd_offset() in the ASI pgd, through the direct map.
  asiTouch(sys, directMapVa(sys, asi.pgd), 'read');
  const ret = asiMapRangeLocked(sys, asi, ptr, size, level, out);
  spinUnlock(sys, asiLock(asi));
  asiPoint(sys, 'spin_unlock_irqrestore(&asi->lock)');
  return ret;
}

/** spin_lock_irqsave(&asi->lock) is held from the copy to list_add (patches 08, 10, 14). */
function asiMapRangeLocked(sys: System, asi: Asi, ptr: number, size: number, level: PgtLevel, out: Log): number {
  const ctx: CopyCtx = { keys: [], newlySet: [] };
  const before = asi.ranges.map((r) => r.overlap);
  const overlap = mapWithPolicy(sys, asi, ptr, size, level, ctx, out);
  const countsTaken = () => asi.ranges.filter((r, i) => r.overlap !== before[i]);
  if (overlap < 0) {
    if (sys.options.rollbackOnError) rollback(sys, asi, ctx, countsTaken());
    return overlap;
  }
  // kmalloc(sizeof(*range_mapping), GFP_KERNEL): after the copy in patch 14, still under the lock.
  mightSleep(sys, `kmalloc(range_mapping) in asi_map_range of asi#${asi.id}`);
  const record = kernelRecord(sys, ASI_RANGE_MAPPING_SIZE, `asi_range_mapping of asi#${asi.id}`);
  if (record === ENOMEM) {
    if (sys.options.rollbackOnError) rollback(sys, asi, ctx, countsTaken());
    return ENOMEM;
  }
  // A range holds one reference per entry it relies on, however many of its pages the entry serves.
  const newlySet = new Set(ctx.newlySet.map((s) => entryKey(sys, s.level, s.va)));
  const keys = [...new Set(ctx.keys)].filter((k) => !mutant(sys, 'refcount-not-taken') || newlySet.has(k));
  if (sys.options.overlapPolicy === 'refcount-entries') for (const k of keys) asi.entryRefs.set(k, (asi.entryRefs.get(k) ?? 0) + 1);
  touch(sys.mem);
  asi.ranges = [{ ptr, size, level, overlap, entries: keys, caller: sys.caller, record, ghostReached: reachedUnits(sys, ptr, size), ghostPages: mappedPages(sys.g, sys.tables, sys.kernel.pgd, ptr, ptr + size), ghostStamp: sys.mem.nextAllocId }, ...asi.ranges];
  return 0;
}

/** asi_map (patch 08). */
export function asiMap(sys: System, asi: Asi, ptr: number, size: number, out: Log): number {
  return asiMapRange(sys, asi, ptr, size, PGT_LEVEL_PTE, out);
}

function isCurrentStackOrTask(sys: System, ptr: number): boolean {
  const t = sys.kernel.tasks.get(sys.kernel.current[0]);
  return t !== undefined && (ptr === taskStackVa(sys, t) || ptr === t.structVa);
}

// ---- clear (patch 11) -----------------------------------------------------------------------

function clearPteRange(sys: System, asi: Asi, pmd: EntrySlot, addr: number, end: number, out: Log): void {
  const pte = asiOffset(sys, asi, pmd, PGT_LEVEL_PTE, addr, out);
  if (typeof pte === 'number') return;
  if (sys.options.clearAlignedStart) addr = roundDown(addr, PAGE_SIZE); // fixed: clearAlignedStart
  const first = indexAt(sys.g, PGT_LEVEL_PTE, addr);
  let i = 0;
  do {
    asiClear(sys, asi, { table: pte.table, index: first + i }, roundDown(addr, PAGE_SIZE), PGT_LEVEL_PTE);
    i++;
    addr += PAGE_SIZE;
  } while (addr < end && first + i < entriesPerTable(sys.g));
}

/** asi_clear_pmd_range and asi_clear_pud_range. */
function clearMidRange(sys: System, asi: Asi, level: typeof PGT_LEVEL_PMD | typeof PGT_LEVEL_PUD, parent: EntrySlot, addr: number, end: number, req: PgtLevel, out: Log): void {
  const dst = asiOffset(sys, asi, parent, level, addr, out);
  if (typeof dst === 'number') return;
  do {
    const next = addrEnd(sys.g, level, addr, end);
    const slot = slotIn(sys, dst.table, level, addr);
    const e = entryAt(sys, slot);
    const skip = isNone(e) || (level === PGT_LEVEL_PMD && !sys.options.clearPresentPmd);
    if (skip) {
      // Patch 11 skips `pmd_none(*pmd) || pmd_present(*pmd)`: every populated PMD entry.
    } else if (takesWholeEntry(sys, req, level, addr, next) || transHuge(sys, e)) {
      asiClear(sys, asi, slot, addr, level);
    } else if (level === PGT_LEVEL_PMD) {
      clearPteRange(sys, asi, slot, addr, next, out);
    } else {
      clearMidRange(sys, asi, PGT_LEVEL_PMD, slot, addr, next, req, out);
    }
    addr = next;
  } while (addr < end);
}

/**
 * asi_clear_pgd_range with asi_clear_p4d_range folded in: pgd_none() is 0 with 4 levels, and
 * pgd_clear() does nothing (the P4D is folded: include/asm-generic/pgtable-nop4d.h, or
 * pgtable_l5_enabled() false), while p4d_clear() clears the same top-level entry.
 */
function clearPgdRange(sys: System, asi: Asi, addr: number, end: number, req: PgtLevel, out: Log): void {
  do {
    const next = addrEnd(sys.g, PGT_LEVEL_PGD, addr, end);
    const slot = slotIn(sys, asi.pgd, PGT_LEVEL_PGD, addr);
    const e = entryAt(sys, slot);
    if (req === PGT_LEVEL_PGD && !sys.options.exactExtent) {
      // RFC v2 patch 11: `if (level == PGT_LEVEL_PGD) { pgd_clear(pgd); continue; }`
      if (sys.options.clearPgdAsP4d) asiClear(sys, asi, slot, addr, PGT_LEVEL_P4D); // fixed: clearPgdAsP4d
      else if (!isNone(e)) log(out, 'note', `ASI ${asi.id}: pgd_clear() is a no-op with 4-level paging: ${formatVa(sys.g, addr)} stays mapped`);
    } else if (isNone(e)) {
      // p4d_none
    } else if (takesWholeEntry(sys, Math.min(req, PGT_LEVEL_P4D) as PgtLevel, PGT_LEVEL_P4D, addr, next)) asiClear(sys, asi, slot, addr, PGT_LEVEL_P4D);
    else clearMidRange(sys, asi, PGT_LEVEL_PUD, slot, addr, next, req, out);
    addr = next;
  } while (addr < end);
}

/** asi_unmap_overlap (patch 14), as posted. */
function asiUnmapOverlap(sys: System, asi: Asi, range: AsiRange, out: Log): void {
  const addr = range.ptr;
  const end = range.ptr + range.size;
  let overlap = range.overlap;
  let needUnmapping = true;
  for (const r of asi.ranges) {
    if (!overlap) break;
    if (range.ptr === r.ptr && range.size === r.size) warnOn(sys, out, 'asi_unmap_overlap: range->ptr == r->ptr && range->size == r->size');
    const [mapAddr, mapEnd] = rfcRangeExtent(sys, r);
    if (end < mapAddr || addr >= mapEnd) continue;
    log(out, 'pr_debug', `ASI ${asi.id}: UNMAP ${describe(sys, range)} overlaps with ${describe(sys, r)}`);
    r.overlap--;
    overlap--;
    if (mapAddr <= addr && end <= mapEnd) {
      log(out, 'pr_debug', `ASI ${asi.id}: UNMAP ${describe(sys, range)} still mapped`);
      needUnmapping = false;
    }
  }
  if (overlap) warnOn(sys, out, `asi_unmap_overlap: overlap (${overlap} left of ${range.overlap})`);
  if (!needUnmapping) return;
  clearPgdRange(sys, asi, addr, end, range.level, out);
  overlap = range.overlap;
  for (const r of asi.ranges) {
    if (!overlap) break;
    const [mapAddr, mapEnd] = rfcRangeExtent(sys, r);
    if (end < mapAddr || addr >= mapEnd) continue;
    log(out, 'pr_debug', `ASI ${asi.id}: UNMAP ${describe(sys, range)} remaps ${describe(sys, r)}`);
    overlap--;
    const err = copyPgdRange(sys, asi, r.ptr, r.ptr + r.size, r.level, { keys: [], newlySet: [] }, out);
    if (err) log(out, 'pr_debug', `ASI ${asi.id}: UNMAP ${describe(sys, range)} remaps ${describe(sys, r)} error ${err}`);
  }
}

/** The ASI's slot for an entry key "level:va", walking only tables the ASI owns. */
function ownedSlot(sys: System, asi: Asi, level: PgtLevel, va: number): EntrySlot | undefined {
  let table = asi.pgd;
  for (let l: PgtLevel = PGT_LEVEL_PGD; ; l = lowerLevel(l)) {
    const slot = slotIn(sys, table, l, va);
    if (l === level || (level === PGT_LEVEL_P4D && l === PGT_LEVEL_PGD)) return slot;
    const e = entryAt(sys, slot);
    if (isNone(e) || isLarge(e) || !ownsTable(asi, entryFrame(e))) return undefined;
    table = entryFrame(e);
  }
}

/** fixed: overlapPolicy=refcount-entries. Drop the range's references; clear entries nobody holds. */
function unmapRefcounted(sys: System, asi: Asi, range: AsiRange): void {
  const keys = mutant(sys, 'unmap-first-page-only') ? range.entries.slice(0, 1) : range.entries;
  const floor = mutant(sys, 'refcount-off-by-one') ? 1 : 0;
  for (const k of keys) {
    const n = (asi.entryRefs.get(k) ?? 0) - 1;
    if (n > floor) {
      asi.entryRefs.set(k, n);
      continue;
    }
    asi.entryRefs.delete(k);
    const [l, v] = k.split(':').map(Number);
    const slot = ownedSlot(sys, asi, l as PgtLevel, v);
    if (slot) asiClear(sys, asi, slot, v, l as PgtLevel);
  }
}

/**
 * asi_unmap (patches 11, 14): the range is found by its exact start, the newest first, whoever made
 * it. With protectInternalRanges only ranges of the same maker match; with unmapMatchesCaller a
 * caller's unmap only finds that caller's ranges.
 */
export function asiUnmap(sys: System, asi: Asi, ptr: number, out: Log, madeBy?: AsiRange['madeBy']): number {
  const range = asi.ranges.find((r) => r.ptr === ptr && (!sys.options.protectInternalRanges || r.madeBy === madeBy) && (!sys.options.unmapMatchesCaller || r.madeBy !== undefined || r.caller === sys.caller || mutant(sys, 'unmap-ignores-caller')));
  if (!range) {
    log(out, 'pr_debug', `ASI ${asi.id}: UNMAP ${formatVa(sys.g, ptr)} - not mapped`);
    return 0;
  }
  asiUnmapRange(sys, asi, range, out);
  return 0;
}

/** The body of asi_unmap once the range is known: list_del, then clear as the policy says. */
export function asiUnmapRange(sys: System, asi: Asi, range: AsiRange, out: Log): void {
  if (!isCurrentStackOrTask(sys, range.ptr)) log(out, 'pr_debug', `ASI ${asi.id}: UNMAP ${describe(sys, range)}`);
  asiLockIrqsave(sys, asi);
  asiPoint(sys, 'spin_lock_irqsave(&asi->lock)');
  // list_del(&range_mapping->list) under the lock.
  asiTouch(sys, recordVa(sys, range.record), 'write');
  asi.ranges = asi.ranges.filter((r) => r !== range);
  sys.ghost.unmappedOn.set(range, { exec: sys.exec, depth: sys.exec.handlers.length });
  touch(sys.mem);
  if (sys.options.overlapPolicy === 'count-ranges') asiUnmapOverlap(sys, asi, range, out);
  else if (sys.options.overlapPolicy === 'refcount-entries') unmapRefcounted(sys, asi, range);
  else clearPgdRange(sys, asi, range.ptr, range.ptr + range.size, range.level, out);
  freesMemory(sys, `kfree(range_mapping) in asi_unmap of asi#${asi.id}`); // RFC v2 patch 14
  freeRecord(sys, range.record);
  spinUnlock(sys, asiLock(asi));
  asiPoint(sys, 'spin_unlock_irqrestore(&asi->lock)');
  if (sys.options.asiUnmapFlushesTlb) flushAsiRange(sys, asi, range, out);
}

/**
 * fixed: asiUnmapFlushesTlb. The RFC clears entries without any TLB flush, so a CPU running
 * isolated keeps translations of what was just unmapped. The fix invalidates the range in the ASI
 * PCID (INVPCID) on this CPU, and by IPI on every other CPU whose session is on this ASI; a CPU out
 * of it flushes the ASI PCID when it enters (flushGlobalOnEnter) or resumes (resumeFlushesGlobal).
 */
function flushAsiRange(sys: System, asi: Asi, range: AsiRange, out: Log): void {
  const [lo, hi] = rangeExtent(sys, range);
  const inAsi = sys.cpus.filter((c) => c.id === sys.exec.id || (c.session.asi === asi.id && c.session.state !== ASI_SESSION_STATE_INACTIVE));
  onEachCpu(sys, inAsi, `asi_unmap of asi#${asi.id}`, (cpu) => flushTlbRange(cpu, asiPcid(sys), lo, hi), out);
}

export function asiLock(asi: Asi): string {
  return `asi#${asi.id}->lock`;
}

/**
 * A read or write by ASI code of its own data, at `va` (none for a record asi-check 0.1's memory
 * does not place): on a CPU it goes through that CPU's CR3 and TLB, so a CPU isolated on an ASI
 * that does not map the data takes the page fault there, with its abort and asi_fault's retry.
 */
function asiTouch(sys: System, va: number | undefined, access: 'read' | 'write'): void {
  if (sys.onCpu && va !== undefined) accessVa(sys.onCpu, va, access, false);
}

function recordVa(sys: System, record: number): number | undefined {
  return sys.kernel.kmallocs.get(record)?.va;
}

/** A point of an ASI API call made on a CPU, where its events land (Exec.apiPoint). */
function asiPoint(sys: System, where: string): void {
  sys.onCpu?.apiPoint?.(where);
}

/** spin_lock_irqsave(&asi->lock): the lock word is in struct asi. */
function asiLockIrqsave(sys: System, asi: Asi): void {
  leaveIsolationFirst(sys);
  asiTouch(sys, recordVa(sys, asi.struct), 'write');
  spinLock(sys, asiLock(asi), true);
}

/** asi_remap (patch 13): the caller's pointer variable is `cur`; returns what it holds afterwards. */
export function asiRemap(sys: System, asi: Asi, cur: number | null, ptr: number, size: number, out: Log): { ret: number; cur: number | null } {
  // Patch 13 compares the pointers only: a new size for the same buffer maps nothing new. The fix
  // returns early only when the caller's range for the buffer is already as asked.
  const unchanged = !sys.options.remapChecksSize || asi.ranges.some((r) => r.ptr === ptr && r.madeBy === undefined && r.caller === sys.caller && r.size === size); // fixed: remapChecksSize
  if (cur === ptr && unchanged) return { ret: 0, cur };
  if (cur !== null) asiUnmap(sys, asi, cur, out);
  const err = asiMap(sys, asi, ptr, size, out);
  return err ? { ret: err, cur: null } : { ret: 0, cur: ptr };
}

// ---- percpu (patch 12) ----------------------------------------------------------------------

/** A percpu pointer as the API takes it (a static variable's or alloc_percpu's), and the size to map. */
export interface PercpuRef {
  readonly offset: number;
  readonly size: number;
}

/** The static variable `v` of this kernel as a PercpuRef; undefined when this kernel has none. */
export function percpuRef(sys: System, v: PercpuVar): PercpuRef | undefined {
  const p = percpuVar(sys, v);
  return p && { offset: p.offset, size: p.size };
}

/** What asi_map_percpu is asked to map: the pointer on every CPU. */
export function percpuAsked(sys: System, p: PercpuRef): ApiCall['asked'] {
  return Array.from({ length: sys.config.cpus }, (_, cpu) => ({ ptr: perCpuOffsetPtr(sys, p.offset, cpu), size: p.size }));
}

export function asiUnmapPercpu(sys: System, asi: Asi, p: PercpuRef, out: Log): void {
  for (let cpu = 0; cpu < sys.config.cpus; cpu++) asiUnmap(sys, asi, perCpuOffsetPtr(sys, p.offset, cpu), out);
}

/**
 * asi_map_percpu (patch 12). Its error path calls asi_unmap_percpu(), which unmaps every CPU's
 * pointer by its start: ranges other callers made for those pointers go too. With percpuUndoesOwn
 * it undoes only the ranges this call made.
 */
export function asiMapPercpu(sys: System, asi: Asi, p: PercpuRef, out: Log): number {
  const made: AsiRange[] = [];
  for (let cpu = 0; cpu < sys.config.cpus; cpu++) {
    const err = asiMap(sys, asi, perCpuOffsetPtr(sys, p.offset, cpu), p.size, out);
    if (err) {
      if (sys.options.percpuUndoesOwn) for (const r of made) asiUnmapRange(sys, asi, r, out); // fixed: percpuUndoesOwn
      else asiUnmapPercpu(sys, asi, p, out);
      return err;
    }
    made.push(asi.ranges[0]);
  }
  return 0;
}

// ---- create / destroy (patches 01, 04, 10, 15) ----------------------------------------------

/** asi_init_mapping (patch 15). */
function asiInitMapping(sys: System, asi: Asi, out: Log): number {
  const l = sys.kernel.layout;
  let err = asiMap(sys, asi, l.startKernelMap, l.kernelImageSize, out);
  if (err) return err;
  // CPU_ENTRY_AREA_PER_CPU starts one page above the read-only IDT, which interrupt delivery reads:
  // the RFC gets the IDT only from rounding out to the P4D (see initMapsIdt).
  const cea = sys.options.initMapsIdt ? l.ceaBase : l.ceaPerCpu;
  err = asiMapRange(sys, asi, cea, levelSize(sys.g, PGT_LEVEL_P4D), PGT_LEVEL_P4D, out);
  if (err) return err;
  err = mutant(sys, 'init-skips-session') ? 0 : asiMapPercpu(sys, asi, percpuRef(sys, 'cpu_asi_session')!, out);
  if (err) return err;
  for (const option of ASI_MAP_PERCPU_OPTIONS) {
    if (asi.mappingFlags & option.flag) {
      err = asiMapPercpu(sys, asi, percpuRef(sys, option.var)!, out);
      if (err) return err;
    }
  }
  return 0;
}

/** asi_create (patches 01, 04, 10, 15, 16): the new ASI's id, or -errno where the RFC returns NULL. */
export function asiCreate(sys: System, mapFlags: number, out: Log): number {
  mightSleep(sys, 'kzalloc(struct asi) in asi_create');
  const id = sys.nextAsiId;
  const struct = kernelRecord(sys, ASI_STRUCT_SIZE, `struct asi of asi#${id}`);
  if (struct === ENOMEM) return ENOMEM;
  sys.nextAsiId++;
  const pgd = allocFrames(sys.mem, { kind: 'pgtable', owner: { kind: 'asi', id }, name: `ASI ${id} pgd`, pages: 1, sensitive: false, level: PGT_LEVEL_PGD });
  if (!pgd) {
    freeRecord(sys, struct);
    return ENOMEM;
  }
  sys.tables.set(pgd.frames[0], new Int32Array(entriesPerTable(sys.g)));
  tableChanged(sys.mem, pgd.frames[0]);
  const asi: Asi = { id, struct, pgd: pgd.frames[0], mappingFlags: mapFlags, backend: [], ranges: [], entryRefs: new Map(), users: 0, owner: null };
  sys.asis.set(id, asi);
  const err = asiInitMapping(sys, asi, out);
  if (err) {
    asiDestroy(sys, asi, out);
    return err;
  }
  for (const r of asi.ranges) r.madeBy = 'core';
  return id;
}

/** free_page() by ASI code: freeing a page it does not own is PT-OWN's. */
function asiFreePage(sys: System, asi: Asi, frame: number): void {
  const a = allocationOfFrame(sys.mem, frame);
  if (!a || a.kind !== 'pgtable' || a.owner.kind !== 'asi' || a.owner.id !== asi.id) {
    sys.ghost.events.push({ invariant: 'PT-OWN', message: `ASI ${asi.id} freed pfn ${frame} (${a?.name ?? 'already free'}), which it does not own` });
  }
  if (a) freeAllocation(sys.mem, a.id);
  sys.tables.delete(frame);
  tableChanged(sys.mem, frame);
}

/**
 * fixed: freeUnmapsAsi. Before a page is freed (by the kernel, or by asi_destroy), every ASI range
 * that reaches one of its frames through the kernel page table is unmapped, so no ASI keeps a path
 * to memory that will be reused.
 */
export function unmapFromAsis(sys: System, a: Allocation | undefined, out: Log, except?: Asi): void {
  if (!a || !sys.options.freeUnmapsAsi || (a.kind === 'vmalloc' && mutant(sys, 'vfree-skips-asi-unmap'))) return;
  const frames = new Set(a.frames);
  for (const asi of [...sys.asis.values()]) {
    if (asi === except) continue;
    for (const r of asi.ranges) {
      if (rangeFrames(sys, r).some((f) => frames.has(f))) {
        log(out, 'note', `free of ${a.name}: unmapping it from asi#${asi.id}`);
        asiUnmapRange(sys, asi, r, out);
      }
    }
  }
}

/**
 * The frames a range reaches through the kernel page table now, kept with the range until some
 * page table is written (every write is a tableChanged): each free asks it of every range of every
 * ASI, asi_destroy once for each page it frees, and most frees write no page table.
 */
const reachedByRange = new WeakMap<AsiRange, { readonly at: number; readonly frames: readonly number[] }>();

function rangeFrames(sys: System, r: AsiRange): readonly number[] {
  const at = sys.mem.tableLogStart + sys.mem.tableLog.length;
  const known = reachedByRange.get(r);
  if (known?.at === at) return known.frames;
  const frames = framesReached(sys.g, sys.tables, sys.kernel.pgd, r.ptr, r.ptr + r.size).map((fb) => fb.frame);
  reachedByRange.set(r, { at, frames });
  return frames;
}

/** kfree of a kernel object: the kernel free path, which with freeUnmapsAsi unmaps it from every ASI (but `except`) first. */
export function freeObject(sys: System, obj: number, out: Log, except?: Asi): void {
  unmapFromAsis(sys, objectMemory(sys, obj), out, except);
  kfree(sys, obj);
}

/**
 * asi_destroy (patches 01, 04, 10): the pgd, then the range list, then the backend pages, then
 * struct asi. Its kfree()s are the kernel's free path like any other: with freeUnmapsAsi, the range
 * records and struct asi leave every other ASI that maps their slab page.
 */
export function asiDestroy(sys: System, asi: Asi, out: Log): void {
  // The free path's unmap of everything asi_destroy frees runs first, while this ASI is whole: it
  // is ASI code, which may fault or leave isolation, and the paths that runs are judged.
  for (const f of [asi.pgd, ...asi.backend.map((b) => b.frame)]) unmapFromAsis(sys, allocationOfFrame(sys.mem, f), out, asi);
  for (const id of [...asi.ranges.map((r) => r.record), asi.struct]) if (id >= 0) unmapFromAsis(sys, objectMemory(sys, id), out, asi);
  const reachable = mutant(sys, 'fini-frees-kernel-tables') ? [...reachableTables(sys.g, sys.tables, asi.pgd).keys()].filter((f) => f !== asi.pgd) : [];
  asiFreePage(sys, asi, asi.pgd);
  for (const r of asi.ranges) freeRecord(sys, r.record);
  asi.ranges = [];
  touch(sys.mem);
  if (mutant(sys, 'fini-frees-kernel-tables')) for (const f of reachable) asiFreePage(sys, asi, f);
  else if (!mutant(sys, 'fini-backend-skipped')) for (const b of asi.backend) asiFreePage(sys, asi, b.frame);
  freeRecord(sys, asi.struct);
  sys.asis.delete(asi.id);
}

/**
 * An ASI API call by sys.caller, recorded as it returns for CALLER-CONTRACT: what it was asked to
 * map, which ranges it removed, and the range list it left.
 */
export function recordApiCall(sys: System, call: string, asi: Asi, asked: ApiCall['asked'], released: number | null, body: () => number): number {
  // The call's entry: the session it ends is not the call's doing, so its record starts after.
  leaveIsolationFirst(sys);
  const before = asi.ranges;
  const on = sys.exec;
  const depth = on.handlers.length;
  const ret = body();
  // Not what a handler unmapped meanwhile: an IPI's on another CPU, or the abort of a fault the call took (their asi_exit).
  const byCall = (r: AsiRange) => {
    const u = sys.ghost.unmappedOn.get(r);
    return u === undefined || (u.exec === on && u.depth === depth);
  };
  const removed = before.filter((r) => !asi.ranges.includes(r) && byCall(r));
  sys.ghost.apiCalls.push({ call, caller: sys.caller, asi: asi.id, ret, asked, removed, released, rangesAfter: asi.ranges });
  return ret;
}

/** Runs `body` as caller `caller` of the ASI API (System.caller), and back. */
export function asCaller<R>(sys: System, caller: number, body: () => R): R {
  const was = sys.caller;
  sys.caller = caller;
  try {
    return body();
  } finally {
    sys.caller = was;
  }
}

/** A WARN_ON that fires, with where it ran: the kernel's splat names the CPU. */
export function warnOn(sys: System, out: Log, what: string): void {
  log(out, 'WARN_ON', what);
  sys.ghost.events.push({ invariant: 'NO-WARN', message: `WARN_ON(${what}) on ${sys.exec.id >= 0 ? `cpu${sys.exec.id}` : 'process context'}` });
}
