// The page allocator's side of the 2025 design (its patch 14, with patch 15's exact sizes): pages
// allocated without __GFP_SENSITIVE are asi_map()ped into the global nonsensitive pgd through the
// direct map (asi_map_alloced_pages) and marked PageGlobalNonSensitive; freed, they go to a list
// that a worker unmaps, flushes and only then frees (asi_async_free_enqueue and
// asi_async_free_work_fn), since the flush needs IRQs on. What a frame holds outlives its owner:
// the ghost staleData says whose sensitive data a frame still holds, until an allocation zeroes it.

import { type Allocation, type AllocRequest, freeAllocation, touch } from '../mm/memory.ts';
import { PAGE_SIZE } from '../mm/geometry.ts';
import { directMapVa } from '../mm/kernel.ts';
import type { Exec } from '../asi/session.ts';
import { type System, mutant } from '../system.ts';
import { ASI_GLOBAL_NONSENSITIVE, asiMap, asiUnmap } from './map.ts';
import { rt } from './runtime.ts';
import { pageblocksAtBoot } from './pageblock.ts';

/** The direct-map ranges one allocation's mapping takes: its block whole, or each order-0 page (vmalloc's). */
function blocks(sys: System, a: Allocation, contiguous: boolean): { readonly va: number; readonly size: number }[] {
  return contiguous ? [{ va: directMapVa(sys, a.frames[0]), size: a.frames.length * PAGE_SIZE }] : a.frames.map((f) => ({ va: directMapVa(sys, f), size: PAGE_SIZE }));
}

/**
 * Whether the allocation was made with __GFP_SENSITIVE, which GFP_USER includes (patch 14). The
 * model labels a task's stack sensitive data (RFC v2's STACK); the 2025 series allocates it with
 * THREADINFO_GFP, without the flag, and maps it (patches 14 and 17).
 */
export function gfpSensitive(a: Pick<Allocation, 'sensitive' | 'kind'>): boolean {
  return a.sensitive && a.kind !== 'task-stack';
}

/**
 * asi_map_alloced_pages (patches 14, 15): false if a mapping failed. A block (one __alloc_pages of
 * order n) is naturally aligned, so all its 4K entries share one PTE table, allocated before any of
 * them is set: a failed asi_map_gfp leaves none of the block mapped. Page by page (vmalloc's pages,
 * each its own order-0 allocation), the pages mapped before the failure are PageGlobalNonSensitive,
 * and vmalloc's error path frees them through asi_async_free_work_fn, which unmaps them first.
 */
function asiMapAllocedPages(k: Exec, a: Allocation, contiguous: boolean): boolean {
  const bs = blocks(k.sys, a, contiguous);
  for (const [i, b] of bs.entries()) {
    if (asiMap(k, ASI_GLOBAL_NONSENSITIVE, b.va, b.size) === 0) continue;
    for (const mapped of bs.slice(0, i)) asiUnmap(k, ASI_GLOBAL_NONSENSITIVE, mapped.va, mapped.size);
    return false;
  }
  // __SetPageGlobalNonSensitive on each page, and how they were mapped, for the unmap.
  rt(k.sys).globalNonsensitive.set(a.id, contiguous);
  return true;
}

/**
 * __alloc_pages_noprof after the buddy allocator found `a` (patch 14): whether the allocation
 * zeroes the pages, then asi_map_alloced_pages(). False: the mapping failed, and the pages are
 * freed (__free_pages), as the allocation fails.
 */
export function asiPostAlloc(k: Exec, a: Allocation, req: AllocRequest & { readonly zeroed?: boolean }): boolean {
  // "Clear out old (maybe sensitive) data before reallocating as nonsensitive", as posted:
  // `if (!static_asi_enabled() && !(gfp & __GFP_SENSITIVE)) gfp |= __GFP_ZERO;`, which zeroes only
  // with ASI off. asi25-fixed (zeroesNonsensitive) zeroes what becomes nonsensitive with ASI on.
  if (req.zeroed || (k.sys.options.zeroesNonsensitive && !gfpSensitive(a))) kernelInitPages(k.sys, a.frames);
  if (gfpSensitive(a) || asiMapAllocedPages(k, a, req.contiguousAlign !== undefined)) return true;
  // __free_pages(): nothing of it is mapped any more (asiMapAllocedPages), so it is freed at once.
  freeAllocation(k.sys.mem, a.id);
  return false;
}

/** kernel_init_pages (clear_highpage of each): whatever data the frames held is gone. */
export function kernelInitPages(sys: System, frames: readonly number[]): void {
  const { staleData } = rt(sys);
  for (const f of frames) staleData.delete(f);
}

/** Made before page_alloc_init_asi's world: memblock's (mapped by patch 16, or not at all). */
const MEMBLOCK_KINDS: ReadonlySet<Allocation['kind']> = new Set(['kernel-image', 'cpu-entry-area', 'pgtable', 'percpu', 'memmap']);

/**
 * What boot allocated before the model attached the 2025 runtime, mapped as the series would have
 * mapped it when it was made: the buddy allocator's pages (patch 14: slab pages, the pages of task
 * stacks; on the September direct map, their pageblocks) and the vmalloc and module areas (patch 17).
 */
export function asiMapBootAllocations(k: Exec): void {
  const { kernel } = k.sys;
  const areas = [...kernel.vmAreas.values(), ...kernel.modules.values()];
  const pageByPage = new Set(areas.map((vm) => vm.alloc));
  if (k.sys.options.pageblockDirectMap) pageblocksAtBoot(k);
  else for (const a of [...k.sys.mem.allocs.values()]) if (!MEMBLOCK_KINDS.has(a.kind) && !gfpSensitive(a)) asiMapAllocedPages(k, a, !pageByPage.has(a.id));
  for (const vm of areas) asiMap(k, ASI_GLOBAL_NONSENSITIVE, vm.va, vm.pages * PAGE_SIZE);
}

/**
 * free_pages_prepare's end (patch 14): a sensitive allocation leaves its data in its frames (the
 * ghost); a PageGlobalNonSensitive one is queued for the worker instead of freed (true), and stays
 * allocated, under the name that says so, until the worker has unmapped it.
 */
export function asiAsyncFreeEnqueue(sys: System, a: Allocation): boolean {
  const asi = rt(sys);
  if (gfpSensitive(a)) for (const f of a.frames) asi.staleData.set(f, a.name);
  if (!asi.globalNonsensitive.has(a.id)) return false;
  sys.mem.allocs.set(a.id, { ...a, name: `${a.name} (freed, queued for asi_async_free_work_fn)` });
  touch(sys.mem);
  asi.asyncFree.push(a.id);
  return true;
}

/** asi_async_free_work_fn (patch 14): each queued page unmapped (with its TLB flush), unmarked, freed. */
export function asiAsyncFreeWork(k: Exec): void {
  const asi = rt(k.sys);
  for (const id of asi.asyncFree.splice(0)) {
    const a = k.sys.mem.allocs.get(id)!;
    if (!mutant(k.sys, 'asi25-async-free-skips-unmap')) for (const b of blocks(k.sys, a, asi.globalNonsensitive.get(id)!)) asiUnmap(k, ASI_GLOBAL_NONSENSITIVE, b.va, b.size);
    asi.globalNonsensitive.delete(id);
    freeAllocation(k.sys.mem, id);
  }
}
