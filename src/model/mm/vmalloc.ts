// vmalloc space as Linux 5.2 manages it (mm/vmalloc.c, kernel/module.c): first-fit vmap areas with a
// guard page, pages mapped 4K by the kernel, and the lazy free. vfree clears the PTEs and frees the
// pages at once, but leaves the area on vmap_purge_list: its VA is not handed out again, and the TLB
// flush is not done, until a purge flushes the whole span of the list with one
// flush_tlb_kernel_range. A purge runs when the lazily freed pages pass lazy_max_pages(), when
// vmalloc finds no VA, and at vm_unmap_aliases() (set_memory_* when a module's text is made
// read-only) and the flush of a module's area (VM_FLUSH_RESET_PERMS) when it is freed. On the 2025
// design, set_memory_ro() and vm_reset_perms() run through change_page_attr (./set-memory.ts).

import { PAGE_SIZE, PGT_LEVEL_PTE, fls } from './geometry.ts';
import { type AllocKind, type Owner, KERNEL } from './memory.ts';
import { allocPages, asiMapArea, asiUnmapArea, execOf, freePages } from './page-alloc.ts';
import { changePageAttrSetClr, flushDirectMapPage, setDirectMapDefaultNoflush, setDirectMapInvalidNoflush } from './set-memory.ts';
import { gfpSensitive } from '../asi25/alloc.ts';
import { ENOMEM, directMapVa, kernelMap, kernelUnmapPage, nextId } from './kernel.ts';
import { PAGE_KERNEL, PAGE_KERNEL_ROX, _PAGE_RW } from './pte.ts';
import { type Log } from '../trace.ts';
import { type System, type VmArea, legacyMemory, mutant } from '../system.ts';
import { type Observer } from '../asi/session.ts';
import { flushTlbKernelRange } from '../x86/entry.ts';

export type { VmArea } from '../system.ts';

/** The step's log and micro-step observer, for the flush IPIs a purge sends. */
export interface FlushCtx {
  readonly out: Log;
  readonly observe?: Observer;
}

/** First fit in [start, end) among the areas in use: freed VA is reused, as vmalloc does. */
function findVa(start: number, end: number, used: Iterable<VmArea>, span: number): number | undefined {
  const busy = [...used].sort((a, b) => a.va - b.va);
  let va = start;
  for (const a of busy) {
    if (a.va - va >= span * PAGE_SIZE) break;
    va = Math.max(va, a.va + a.span * PAGE_SIZE);
  }
  return va + span * PAGE_SIZE <= end ? va : undefined;
}

/** The VA the vmap areas hold: live ones, and those freed lazily and not yet purged. */
function reservedVa(sys: System): VmArea[] {
  const k = sys.kernel;
  return [...k.vmAreas.values(), ...k.modules.values(), ...k.vmapPurge];
}

interface VmRequest {
  readonly kind: AllocKind;
  readonly owner: Owner;
  readonly name: string;
  readonly pages: number;
  readonly sensitive: boolean;
  readonly flags: number;
  readonly boot?: boolean;
}

/**
 * __vmalloc_node_range: VA first (alloc_vmap_area purges the lazy list once and retries when none
 * is free), then frames, then the PTEs; ENOMEM undoes what was done.
 */
function vmAlloc(sys: System, area: Map<number, VmArea>, start: number, end: number, guard: number, req: VmRequest, ctx: FlushCtx): VmArea | number {
  let va = findVa(start, end, reservedVa(sys), req.pages + guard);
  if (va === undefined && sys.kernel.vmapPurge.length) {
    purgeVmapAreaLazy(sys, ctx);
    va = findVa(start, end, reservedVa(sys), req.pages + guard);
  }
  if (va === undefined) return ENOMEM;
  const a = allocPages(sys, { ...req, ...(req.boot ? { boot: true } : {}) }, ctx.out);
  if (!a) return ENOMEM;
  for (let i = 0; i < req.pages; i++) {
    if (!kernelMap(sys, va + i * PAGE_SIZE, a.frames[i], req.flags, PGT_LEVEL_PTE, req.boot ?? false)) {
      for (let j = 0; j < i; j++) kernelUnmapPage(sys, va + j * PAGE_SIZE);
      freePages(sys, a.id);
      return ENOMEM;
    }
  }
  // The 2025 design (its patch 17): every vmalloc and module area is mapped nonsensitive (F44's
  // fix: unless its pages are __GFP_SENSITIVE); the asi_unmap a failure needs is vfree's.
  if (sys.asi25 && !(sys.options.vmallocKeepsSensitive && gfpSensitive(a)) && asiMapArea(sys, va, req.pages, ctx.out) !== 0) {
    asiUnmapArea(sys, va, req.pages, ctx.out);
    for (let i = 0; i < req.pages; i++) kernelUnmapPage(sys, va + i * PAGE_SIZE);
    freePages(sys, a.id);
    return ENOMEM;
  }
  const vm: VmArea = { id: nextId(sys), va, pages: req.pages, span: req.pages + guard, alloc: a.id };
  area.set(vm.id, vm);
  return vm;
}

/** vunmap_page_range and __free_pages: the PTEs go, and the pages are free for anyone at once. */
function vmFree(sys: System, area: Map<number, VmArea>, id: number): VmArea | undefined {
  const vm = area.get(id);
  if (!vm) return undefined;
  if (sys.asi25 && !mutant(sys, 'asi25-vfree-skips-asi-unmap')) asiUnmapArea(sys, vm.va, vm.pages, []);
  for (let i = 0; i < vm.pages; i++) kernelUnmapPage(sys, vm.va + i * PAGE_SIZE);
  freePages(sys, vm.alloc);
  area.delete(id);
  return vm;
}

/**
 * lazy_max_pages(): fls(num_online_cpus()) * (32 MB >> PAGE_SHIFT) in 5.2, where 32 MB is an eighth
 * of a 256 MB machine; scaled to the model's memory as an eighth of its frames per fls(cpus).
 */
function lazyMaxPages(sys: System): number {
  return fls(sys.config.cpus) * Math.floor(sys.kernel.layout.physFrames / 8);
}

/**
 * __purge_vmap_area_lazy: one flush_tlb_kernel_range over the span of every lazily freed area
 * (their guard pages, never mapped, left out), then their VA is free again.
 */
export function purgeVmapAreaLazy(sys: System, ctx: FlushCtx): void {
  const list = sys.kernel.vmapPurge;
  if (!list.length) return;
  const start = Math.min(...list.map((a) => a.va));
  const end = Math.max(...list.map((a) => a.va + a.pages * PAGE_SIZE));
  flushTlbKernelRange(sys, start, end, ctx.out, ctx.observe);
  list.length = 0;
}

/**
 * free_vmap_area_noflush: the area joins the purge list, and a purge runs once the list holds more
 * than lazy_max_pages(). asi-check 0.1 flushed the area's pages at once, except on the error paths
 * that free an area no one had used yet (`published` false).
 */
function freeVmapAreaNoflush(sys: System, vm: VmArea, ctx: FlushCtx, published: boolean): void {
  if (legacyMemory(sys)) {
    if (published) flushTlbKernelRange(sys, vm.va, vm.va + vm.pages * PAGE_SIZE, ctx.out, ctx.observe);
    return;
  }
  sys.kernel.vmapPurge.push(vm);
  if (sys.kernel.vmapPurge.reduce((n, a) => n + a.span, 0) > lazyMaxPages(sys)) purgeVmapAreaLazy(sys, ctx);
}

export function vmalloc(sys: System, pages: number, sensitive: boolean, name: string, owner: Owner, kind: AllocKind, ctx: FlushCtx, boot = false): VmArea | number {
  const l = sys.kernel.layout;
  return vmAlloc(sys, sys.kernel.vmAreas, l.vmallocStart, l.vmallocEnd, 1, { kind, owner, name, pages, sensitive, flags: PAGE_KERNEL, boot }, ctx);
}

/** vfree; `published` false: an error path freeing an area it has just made (see freeVmapAreaNoflush). */
export function vfree(sys: System, id: number, ctx: FlushCtx, published = true): VmArea | undefined {
  const vm = vmFree(sys, sys.kernel.vmAreas, id);
  if (!vm) return undefined;
  freeVmapAreaNoflush(sys, vm, ctx, published);
  sys.ghost.freedOn.set(id, sys.exec.id);
  return vm;
}

/**
 * load_module: core_layout from module_alloc in the modules area, text RX then data RW; making it
 * read-only (set_memory_ro, whose change_page_attr calls vm_unmap_aliases) purges the lazy list.
 */
export function moduleLoad(sys: System, pages: number, ctx: FlushCtx): VmArea | number {
  const l = sys.kernel.layout;
  const m = vmAlloc(sys, sys.kernel.modules, l.modulesStart, l.modulesEnd, 0, { kind: 'module', owner: KERNEL, name: 'module', pages, sensitive: false, flags: PAGE_KERNEL_ROX }, ctx);
  if (typeof m !== 'number' && !legacyMemory(sys)) purgeVmapAreaLazy(sys, ctx);
  // The 2025 design's kernel runs module_enable_rodata_ro()'s set_memory_ro() through
  // change_page_attr: the area is ROX already, so the change lands on its pages' direct-map alias
  // (cpa_process_alias). The 2019 model maps the area ROX and leaves the alias as it was.
  // module_enable_rodata_ro()'s error fails the load (complete_formation), which frees the module.
  if (typeof m !== 'number' && sys.asi25 && changePageAttrSetClr(execOf(sys, ctx.out), m.va, m.pages, { set: 0, clr: _PAGE_RW }) < 0) {
    moduleUnload(sys, m.id, ctx);
    return ENOMEM;
  }
  return m;
}

/**
 * vm_reset_perms (the 2025 design's kernel, for a VM_FLUSH_RESET_PERMS area): each page's direct-map
 * alias set_direct_map_invalid_noflush(), the aliases flushed (_vm_unmap_aliases with flush_dmap),
 * then set_direct_map_default_noflush(), before the pages go back.
 */
function vmResetPerms(sys: System, vm: VmArea, ctx: FlushCtx): void {
  const k = execOf(sys, ctx.out, ctx.observe);
  const aliases = sys.mem.allocs.get(vm.alloc)!.frames.map((f) => directMapVa(sys, f));
  for (const va of aliases) setDirectMapInvalidNoflush(k, va);
  for (const va of aliases) flushDirectMapPage(k, va);
  for (const va of aliases) setDirectMapDefaultNoflush(k, va);
}

/**
 * module_memfree: the area was allocated VM_FLUSH_RESET_PERMS (5.2), so vfree flushes it before its
 * pages go, purging the lazy list with it (vm_remove_mappings -> _vm_unmap_aliases).
 */
export function moduleUnload(sys: System, id: number, ctx: FlushCtx, published = true): VmArea | undefined {
  const area = sys.kernel.modules.get(id);
  if (area && sys.asi25) vmResetPerms(sys, area, ctx);
  const m = vmFree(sys, sys.kernel.modules, id);
  if (!m || legacyMemory(sys)) {
    if (m) freeVmapAreaNoflush(sys, m, ctx, published);
    return m;
  }
  sys.kernel.vmapPurge.push(m);
  purgeVmapAreaLazy(sys, ctx);
  return m;
}
