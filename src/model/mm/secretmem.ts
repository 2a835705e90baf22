// mm/secretmem.c (Linux 5.14 on, so the 2025 design's kernel only): memfd_secret() memory, whose
// pages leave the direct map while a process holds them. secretmem_fault allocates a page
// (GFP_HIGHUSER, so __GFP_SENSITIVE on the 2025 design), removes it from the direct map
// (set_direct_map_invalid_noflush) and flushes; secretmem_free_folio puts it back
// (set_direct_map_default_noflush) and zeroes it before the page allocator has it again.

import { PAGE_SIZE } from './geometry.ts';
import { KERNEL } from './memory.ts';
import { ENOENT, ENOMEM, directMapVa, nextId } from './kernel.ts';
import { allocPages, execOf, freePages } from './page-alloc.ts';
import { flushDirectMapPage, setDirectMapDefaultNoflush, setDirectMapInvalidNoflush } from './set-memory.ts';
import { kernelInitPages } from '../asi25/alloc.ts';
import type { System } from '../system.ts';
import type { FlushCtx } from './vmalloc.ts';

/** secretmem_fault: a secret page for a process, out of the direct map. Its id, or -errno. */
export function secretmemFault(sys: System, ctx: FlushCtx): number {
  const a = allocPages(sys, { kind: 'secretmem', owner: KERNEL, name: 'secretmem page', pages: 1, sensitive: true }, ctx.out);
  if (!a) return ENOMEM;
  const va = directMapVa(sys, a.frames[0]);
  const k = execOf(sys, ctx.out, ctx.observe);
  const err = setDirectMapInvalidNoflush(k, va);
  if (err < 0) {
    freePages(sys, a.id, ctx.out);
    return err;
  }
  flushDirectMapPage(k, va);
  const id = nextId(sys);
  sys.kernel.kmallocs.set(id, { id, va, size: PAGE_SIZE, alloc: a.id, kind: 'secretmem' });
  return id;
}

/** secretmem_free_folio: back into the direct map, zeroed, then freed. 0 or -ENOENT. */
export function secretmemFree(sys: System, id: number, ctx: FlushCtx): number {
  const obj = sys.kernel.kmallocs.get(id);
  if (obj?.kind !== 'secretmem') return ENOENT;
  setDirectMapDefaultNoflush(execOf(sys, ctx.out), obj.va);
  const frames = sys.mem.allocs.get(obj.alloc)!.frames;
  sys.kernel.kmallocs.delete(id);
  freePages(sys, obj.alloc, ctx.out);
  // folio_zero_segment(): what the page held is gone before anyone else can have it.
  kernelInitPages(sys, frames);
  return 0;
}
