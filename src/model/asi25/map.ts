// What a domain of the 2025 design maps: asi_map and asi_unmap (patches 09 and 11), which copy the
// unrestricted page table's leaves into a domain's at the largest size the source leaf and the
// range allow, and the global nonsensitive pgd (patch 12), whose kernel half asi_init copies into
// every domain. Mapping into ASI_GLOBAL_NONSENSITIVE after a domain was made reaches it through the
// lower tables they share: the direct map's and vmalloc's are preallocated at boot for that.

import { KERNEL, allocFrames } from '../mm/memory.ts';
import { PAGE_SIZE, PGT_LEVEL_PGD, PGT_LEVEL_PMD, PGT_LEVEL_PTE, PGT_LEVEL_PUD, type PgtLevel, entriesPerTable, indexAt, levelSize, roundDown, roundUp } from '../mm/geometry.ts';
import { frameAt, lowerLevel, walk } from '../mm/pagetable.ts';
import { PAGE_KERNEL, _KERNPG_TABLE, _PAGE_GLOBAL, _PAGE_NX, _PAGE_PRESENT, _PAGE_PSE, _PAGE_USER, entryFlags, entryFrame, isLarge, isNone, mkEntry } from '../mm/pte.ts';
import { EBUSY, ENOMEM } from '../mm/kernel.ts';
import { flushTlbKernelRange } from '../x86/entry.ts';
import { tableChanged } from '../mm/memory.ts';
import type { Exec } from '../asi/session.ts';
import { type System, mutant } from '../system.ts';
import { type Domain, bugOn, rt, warnOn } from './runtime.ts';
import { perCpuOffsetPtr } from '../mm/percpu.ts';

/** The key of __asi_global_nonsensitive (ASI_GLOBAL_NONSENSITIVE) among the domains: mm is init_mm. */
export const ASI_GLOBAL_NONSENSITIVE = 'global nonsensitive';

/** _PAGE_TABLE: the table-pointer entries asi_*_alloc installs (user-accessible, unlike _KERNPG_TABLE). */
const _PAGE_TABLE = _KERNPG_TABLE | _PAGE_USER;

/**
 * KERNEL_PGD_BOUNDARY: the first pgd entry of the kernel half. The small geometry puts the direct
 * map at entry 1 of 8, so the boundary is the lower of half the table and the direct map's entry.
 */
export function kernelPgdBoundary(sys: System): number {
  return Math.min(entriesPerTable(sys.g) / 2, indexAt(sys.g, PGT_LEVEL_PGD, sys.kernel.layout.directMap));
}

function newTable(sys: System, name: string, level: PgtLevel, boot = false): number | undefined {
  const a = allocFrames(sys.mem, { kind: 'pgtable', owner: KERNEL, name, pages: 1, sensitive: false, level, ...(boot ? { boot } : {}) });
  if (!a) return undefined;
  sys.tables.set(a.frames[0], new Int32Array(entriesPerTable(sys.g)));
  tableChanged(sys.mem, a.frames[0]);
  return a.frames[0];
}

function setEntry(sys: System, table: number, index: number, e: number): void {
  sys.tables.get(table)![index] = e;
  tableChanged(sys.mem, table);
}

/**
 * asi_global_init (patch 12, a subsys_initcall): the pseudo-PGD asi_global_nonsensitive_pgd, with
 * the level below it preallocated over the direct map and the vmalloc area
 * (preallocate_sub_pgd_pages), "to avoid needing to synchronize new mappings into pre-existing
 * domains". Its page is static data of the kernel image; the model allocates one at boot.
 */
export function asiGlobalInit(sys: System): Domain {
  const l = sys.kernel.layout;
  const pgd = newTable(sys, 'asi_global_nonsensitive_pgd', PGT_LEVEL_PGD, true)!;
  const pgdirSize = levelSize(sys.g, PGT_LEVEL_PGD);
  for (const [start, end] of [[l.directMap, l.directMap + l.physFrames * PAGE_SIZE - 1], [l.vmallocStart, l.vmallocEnd - 1]]) {
    for (let addr = start; addr <= end; addr = roundDown(addr + pgdirSize, pgdirSize)) {
      const index = indexAt(sys.g, PGT_LEVEL_PGD, addr);
      // p4d_alloc is the pgd entry itself (the P4D is folded); pud_alloc makes the table below it.
      if (isNone(sys.tables.get(pgd)![index])) setEntry(sys, pgd, index, mkEntry(newTable(sys, 'ASI global nonsensitive pud', lowerLevel(PGT_LEVEL_PGD), true)!, _PAGE_TABLE));
    }
  }
  if (sys.options.pageblockDirectMap) asiPhysmapInit(sys, pgd);
  return { pgd, mm: 0, refCount: 0, classId: 0 };
}

/**
 * The September series' __kernel_physical_mapping_init (its patch 04): phys_pgd_init() into
 * asi_nonsensitive_pgd with at most 2M leaves, "so that regions can be mapped and unmapped at
 * pageblock granularity without requiring allocations", and "start with everything unmapped":
 * PAGE_KERNEL without _PAGE_PRESENT (nor _PAGE_GLOBAL, patch 20).
 */
function asiPhysmapInit(sys: System, pgd: number): void {
  const { directMap, physFrames } = sys.kernel.layout;
  const pmdSize = levelSize(sys.g, PGT_LEVEL_PMD);
  const pudSize = levelSize(sys.g, PGT_LEVEL_PUD);
  for (let va = directMap; va < directMap + physFrames * PAGE_SIZE; va += pmdSize) {
    const pud = entryFrame(sys.tables.get(pgd)![indexAt(sys.g, PGT_LEVEL_PGD, va)]);
    if (va % pudSize === 0) setEntry(sys, pud, indexAt(sys.g, PGT_LEVEL_PUD, va), mkEntry(newTable(sys, 'ASI physmap pmd', PGT_LEVEL_PMD, true)!, _KERNPG_TABLE));
    const { table, index } = physmapLeafIn(sys, pgd, va);
    setEntry(sys, table, index, mkEntry((va - directMap) / PAGE_SIZE, (PAGE_KERNEL & ~(_PAGE_PRESENT | _PAGE_GLOBAL)) | _PAGE_PSE));
  }
}

function physmapLeafIn(sys: System, pgd: number, va: number): { readonly table: number; readonly index: number } {
  const pud = entryFrame(sys.tables.get(pgd)![indexAt(sys.g, PGT_LEVEL_PGD, va)]);
  return { table: entryFrame(sys.tables.get(pud)![indexAt(sys.g, PGT_LEVEL_PUD, va)]), index: indexAt(sys.g, PGT_LEVEL_PMD, va) };
}

/** The restricted physmap's 2M entry for a direct-map address (present or not): its table and index. */
export function physmapLeaf(sys: System, va: number): { readonly table: number; readonly index: number } {
  return physmapLeafIn(sys, globalNonsensitivePgd(sys), va);
}

/** asi_nonsensitive_pgd / ASI_GLOBAL_NONSENSITIVE's pgd: the kernel half of every domain. */
export function globalNonsensitivePgd(sys: System): number {
  return rt(sys).domains.get(ASI_GLOBAL_NONSENSITIVE)!.pgd!;
}

/** asi_clone_pgd / asi_clone_p4d (patch 16, the same with 4-level paging): share the kernel's entry for `addr`. */
function asiClonePgd(k: Exec, dst: number, addr: number): void {
  const index = indexAt(k.sys.g, PGT_LEVEL_PGD, addr);
  const src = k.sys.tables.get(k.sys.kernel.pgd)![index];
  const e = k.sys.tables.get(dst)![index];
  if (isNone(e)) setEntry(k.sys, dst, index, src);
  else warnOn(k, e !== src, 'WARN_ON_ONCE(pgd_val(*dst) != pgd_val(*src))');
}

/**
 * The rest of asi_global_init (patch 16): kernel text and static data, every CPU's static percpu
 * data, and the cpu_entry_area, espfix and vmemmap areas by sharing the kernel's tables. The model
 * has no fixmap to map.
 */
export function asiGlobalMapKernel(k: Exec): void {
  const { sys } = k;
  const l = sys.kernel.layout;
  const pgd = globalNonsensitivePgd(sys);
  warnOn(k, asiMap(k, ASI_GLOBAL_NONSENSITIVE, l.startKernelMap, l.kernelImageSize) !== 0, 'WARN_ON(err) mapping the kernel image');
  // asi_map_percpu(__per_cpu_start, __per_cpu_end - __per_cpu_start): each unit's static part,
  // page-aligned (ASI_ALIGN() in PERCPU_INPUT). Patch 18 maps the dynamic chunks percpu-vm makes
  // and leaves the first chunk's dynamic area, memblock's, to "the following patch", which the
  // series does not have (F45; its fix maps the area here).
  const bytes = roundUp(sys.options.mapsFirstChunkDynamic ? sys.kernel.percpuDynamic.end : sys.kernel.percpuDynamic.start, PAGE_SIZE);
  for (let cpu = 0; cpu < sys.cpus.length; cpu++) {
    warnOn(k, asiMap(k, ASI_GLOBAL_NONSENSITIVE, perCpuOffsetPtr(sys, 0, cpu), bytes) !== 0, 'WARN_ON(err) mapping static percpu data');
  }
  for (const addr of [l.ceaBase, l.espfixBase, l.vmemmap, l.vmemmap + levelSize(sys.g, PGT_LEVEL_PGD)]) asiClonePgd(k, pgd, addr);
}

/** asi_init's copy (patch 12): the kernel half of the global nonsensitive pgd into the new domain's. */
export function copyGlobalNonsensitive(sys: System, pgd: number): void {
  const from = sys.tables.get(globalNonsensitivePgd(sys))!;
  const end = from.length - (mutant(sys, 'asi25-init-skips-last-pgd-entry') ? 1 : 0);
  for (let i = kernelPgdBoundary(sys); i < end; i++) setEntry(sys, pgd, i, from[i]);
}

/**
 * follow_physaddr (patch 11): the leaf entry mapping `virt` in the page table under `root` (its
 * frame at `virt` and its own flags), and the size of the level it was found at, or the walk
 * stopped at.
 */
function followPhysaddr(sys: System, root: number, virt: number): { readonly pageSize: number; readonly leaf?: { readonly frame: number; readonly flags: number } } {
  const w = walk(sys.g, sys.tables, root, virt);
  if (!w.ok) return { pageSize: levelSize(sys.g, w.level) };
  return { pageSize: w.leaf.size, leaf: { frame: frameAt(w.leaf, virt), flags: entryFlags(sys.tables.get(w.leaf.table)![w.leaf.index]) } };
}

/**
 * asi_map / asi_map_gfp (patch 11): [start, start + len) into the domain, leaf by leaf, each at the
 * largest level where the source leaf is at least that large and the range covers that page whole.
 * 0, -ENOMEM (partial mappings stay: "You must asi_unmap them") or -EBUSY (an entry already maps
 * another frame).
 */
export function asiMap(k: Exec, key: string, start: number, len: number): number {
  const { sys } = k;
  const asi = rt(sys).domains.get(key)!;
  if (bugOn(k, start % PAGE_SIZE !== 0 || len % PAGE_SIZE !== 0, 'VM_BUG_ON(!IS_ALIGNED(start, PAGE_SIZE) || !IS_ALIGNED(len, PAGE_SIZE))')) return EBUSY;
  if (bugOn(k, indexAt(sys.g, PGT_LEVEL_PGD, start) < kernelPgdBoundary(sys), 'VM_BUG_ON(!fault_in_kernel_space(start))')) return EBUSY;
  const end = start + len;
  let pageSize = PAGE_SIZE;
  // "for (virt = start; virt < end; virt = ALIGN(virt + 1, page_size))"
  for (let virt = start; virt < end; virt = roundUp(virt + 1, pageSize)) {
    // The source is asi->mm->pgd: the kernel half of every mm is init_mm's.
    const src = followPhysaddr(sys, sys.kernel.pgd, virt);
    pageSize = src.pageSize;
    if (!src.leaf) continue;
    let flags = src.leaf.flags;
    let table = asi.pgd!;
    // MAP_AT_LEVEL(base, level): `base` is the entry at `baseLevel` in `table`.
    for (let baseLevel: PgtLevel = PGT_LEVEL_PGD; ; ) {
      const base = sys.tables.get(table)![indexAt(sys.g, baseLevel, virt)];
      if (baseLevel !== PGT_LEVEL_PGD && isLarge(base)) {
        if (warnOn(k, entryFrame(base) !== src.leaf.frame - Math.floor((virt % levelSize(sys.g, baseLevel)) / PAGE_SIZE), 'WARN_ON_ONCE(PHYS_PFN(phys & BASE##_MASK) != base##_pfn(*base))')) return EBUSY;
        break;
      }
      // asi_<level>_alloc (patch 09): a zeroed page installed under a none entry.
      if (isNone(base)) {
        const t = newTable(sys, `ASI ${key} ${['pte', 'pmd', 'pud', 'p4d'][lowerLevel(baseLevel)]}`, lowerLevel(baseLevel));
        if (t === undefined) return ENOMEM;
        setEntry(sys, table, indexAt(sys.g, baseLevel, virt), mkEntry(t, _PAGE_TABLE));
      }
      table = entryFrame(sys.tables.get(table)![indexAt(sys.g, baseLevel, virt)]);
      const level = lowerLevel(baseLevel);
      const size = levelSize(sys.g, level);
      // "If a large page is going to be partially mapped in 4k pages, convert the PSE/PAT bits."
      if (level === PGT_LEVEL_PTE && pageSize >= levelSize(sys.g, PGT_LEVEL_PMD)) flags = protvalLarge2_4k(flags);
      const e = sys.tables.get(table)![indexAt(sys.g, level, virt)];
      const whole = roundDown(virt, size) >= start && roundDown(virt, size) + size <= end;
      if (pageSize >= size && (isNone(e) || level === PGT_LEVEL_PTE || isLarge(e)) && whole) {
        pageSize = size;
        const frame = src.leaf.frame - Math.floor((virt % size) / PAGE_SIZE);
        if (!isNone(e)) {
          if (warnOn(k, entryFrame(e) !== frame, 'WARN_ON_ONCE(level##_pfn(*level) != PHYS_PFN(phys))')) return EBUSY;
        } else setEntry(sys, table, indexAt(sys.g, level, virt), mkEntry(frame, mutant(sys, 'asi25-map-drops-nx') ? flags & ~_PAGE_NX : flags));
        break;
      }
      baseLevel = level;
    }
  }
  return 0;
}

/** protval_large_2_4k: the large page's flags for a 4K entry (no PSE; the model has no PAT bit). */
function protvalLarge2_4k(flags: number): number {
  return flags & ~_PAGE_PSE;
}

/**
 * asi_unmap (patch 11): vunmap_pgd_range() over the domain's page table, which clears a large entry
 * whole even where the range covers part of it ("Unmapping a partial subset of a previously mapped
 * region is not supported"), the WARNs that say so, then asi_flush_tlb_range():
 * flush_tlb_kernel_range() of the range. Page-table pages stay.
 */
export function asiUnmap(k: Exec, key: string, start: number, len: number): void {
  const { sys } = k;
  const asi = rt(sys).domains.get(key)!;
  if (len === 0) return;
  if (bugOn(k, start % PAGE_SIZE !== 0 || len % PAGE_SIZE !== 0, 'VM_BUG_ON(start & ~PAGE_MASK || len & ~PAGE_MASK)')) return;
  const end = start + len;
  let modified: PgtLevel | undefined;
  const clear = (table: number, level: PgtLevel, lo: number, hi: number): void => {
    const size = levelSize(sys.g, level);
    for (let addr = lo; addr < hi; addr = roundDown(addr + size, size)) {
      const next = Math.min(roundDown(addr + size, size), hi);
      const index = indexAt(sys.g, level, addr);
      const e = sys.tables.get(table)![index];
      if (isNone(e)) continue;
      if (level === PGT_LEVEL_PTE) setEntry(sys, table, index, 0);
      else if (isLarge(e)) {
        // pmd_clear_huge / pud_clear_huge; "WARN_ON(next - addr < PMD_SIZE)".
        warnOn(k, next - addr < size, 'WARN_ON(next - addr < PMD_SIZE) in vunmap_pmd_range');
        setEntry(sys, table, index, 0);
        if (modified === undefined || level > modified) modified = level;
      } else clear(entryFrame(e), lowerLevel(level), addr, next);
    }
  };
  clear(asi.pgd!, PGT_LEVEL_PGD, start, end);
  // "We don't support partial unmappings."
  if (modified !== undefined) {
    const size = levelSize(sys.g, modified);
    warnOn(k, start % size !== 0 || len % size !== 0, `VM_WARN_ON(!IS_ALIGNED(addr/len, ${modified === PGT_LEVEL_PMD ? 'PMD' : 'PUD'}_SIZE))`);
  }
  if (!mutant(sys, 'asi25-unmap-skips-flush')) flushTlbKernelRange(sys, start, end, k.out, k.observe);
}
