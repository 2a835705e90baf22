// __alloc_pages and __free_pages for the kernel's runtime page allocations (vmalloc's pages, slab
// pages, alloc_pages and kmalloc_large, guest memory): the buddy allocator (allocFrames,
// freeAllocation) with the hooks the 2025 design adds to it on a system that runs that design
// (src/model/asi25/alloc.ts), or the September 2025 allocator (src/model/asi25/pageblock.ts).
// Boot allocations (memblock) and page-table pages call allocFrames.

import { type Allocation, type AllocRequest, allocFrames, freeAllocation } from './memory.ts';
import { asiAsyncFreeEnqueue, asiPostAlloc } from '../asi25/alloc.ts';
import { ASI_GLOBAL_NONSENSITIVE, asiMap, asiUnmap } from '../asi25/map.ts';
import { freePagesAsi, rmqueue } from '../asi25/pageblock.ts';
import { PAGE_SIZE } from './geometry.ts';
import type { Log } from '../trace.ts';
import type { Observer } from '../asi/session.ts';
import type { System } from '../system.ts';

/**
 * The path the allocation runs on: the CPU's, or process context (which the model runs on cpu0's
 * state), whose micro-steps `observe` sees.
 */
export function execOf(sys: System, out: Log, observe?: Observer) {
  return sys.onCpu ?? { sys, cpu: sys.cpus[Math.max(0, sys.exec.id)], out, ...(observe ? { observe } : {}) };
}

/** __alloc_pages: `zeroed` says the caller asked for __GFP_ZERO. */
export function allocPages(sys: System, req: AllocRequest & { readonly zeroed?: boolean }, out: Log = sys.ghost.log): Allocation | undefined {
  if (!sys.asi25) return allocFrames(sys.mem, req);
  if (sys.options.pageblockDirectMap) return rmqueue(execOf(sys, out), req);
  const a = allocFrames(sys.mem, req);
  return a && asiPostAlloc(execOf(sys, out), a, req) ? a : undefined;
}

/** __free_pages. */
export function freePages(sys: System, id: number, out: Log = sys.ghost.log): void {
  const a = sys.mem.allocs.get(id);
  if (a && sys.asi25 && asiAsyncFreeEnqueue(sys, a)) return;
  if (a && sys.asi25 && sys.options.pageblockDirectMap) freePagesAsi(execOf(sys, out), a);
  else freeAllocation(sys.mem, id);
}

/** vmalloc's asi_map of a new area (the 2025 design's patch 17): 0 or -errno. */
export function asiMapArea(sys: System, va: number, pages: number, out: Log): number {
  return asiMap(execOf(sys, out), ASI_GLOBAL_NONSENSITIVE, va, pages * PAGE_SIZE);
}

/** vfree's asi_unmap of an area (patch 17), before its pages go. */
export function asiUnmapArea(sys: System, va: number, pages: number, out: Log): void {
  asiUnmap(execOf(sys, out), ASI_GLOBAL_NONSENSITIVE, va, pages * PAGE_SIZE);
}
