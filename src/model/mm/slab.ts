// SLUB as Linux 5.2 runs it on x86-64 (mm/slub.c, mm/slab_common.c, mm/memcontrol.c), and the
// allocation calls built on it: kmalloc, kmem_cache_alloc, kzalloc's page-sized cousins and kvzalloc.
// What matters to isolation is where an object lands: beside whom, on which page. So the model keeps
// 5.2's caches and slab geometry (calculate_order), the memcg copies that GFP_KERNEL_ACCOUNT and
// SLAB_ACCOUNT allocations of a task outside the root memcg go to, a freelist per slab handed out
// last-freed first, the active slab and the partial list, and the empty slabs a cache keeps
// (min_partial). Not modelled: per-CPU slabs (every op runs in one process context), the freelist
// pointer inside free objects, debug and red zones, CONFIG_SLAB_FREELIST_RANDOM (off by default).

import { PAGE_SIZE, fls } from './geometry.ts';
import { type AllocKind, type Allocation, type Owner, type Part, KERNEL, allocationFails, allocationOfFrame, frameOffset, newPartId, objectFrames, partMeets, setParts } from './memory.ts';
import { allocPages, freePages } from './page-alloc.ts';
import { type KernelObject, type KmemCache, type System, kmemcgEnabled, legacyMemory, slabEnabled } from '../system.ts';
import { ENOMEM, directMapVa, nextId } from './kernel.ts';
import { type FlushCtx, vfree, vmalloc } from './vmalloc.ts';

/** What a kmem_cache is built from: kmem_cache_create(name, size, ...), s->size after alignment. */
export interface CacheDef {
  readonly name: string;
  readonly size: number;
  /** SLAB_ACCOUNT: every object is charged to the allocating task's memcg. */
  readonly account?: boolean;
}

/**
 * kmalloc_caches[KMALLOC_NORMAL] on x86-64 (KMALLOC_MIN_SIZE 8, with the 96 and 192 byte caches);
 * KMALLOC_SHIFT_HIGH for SLUB is PAGE_SHIFT + 1, so bigger requests go to kmalloc_large.
 */
const KMALLOC_SIZES = [8, 16, 32, 64, 96, 128, 192, 256, 512, 1024, 2048, 4096, 8192] as const;

/** asi-check 0.1 had kmalloc-64 ... kmalloc-4k only (KernelConfig.layout 1). */
const LEGACY_KMALLOC_SIZES = [64, 128, 256, 512, 1024, 2048, 4096] as const;

function kmallocName(size: number): string {
  return size >= 1024 ? `kmalloc-${size / 1024}k` : `kmalloc-${size}`;
}

/** kmalloc_slab(): the cache kmalloc(size) takes its object from, or undefined above kmalloc-8k. */
export function kmallocCache(sys: System, size: number): CacheDef | undefined {
  const sizes: readonly number[] = legacyMemory(sys) ? LEGACY_KMALLOC_SIZES : KMALLOC_SIZES;
  const fit = sizes.find((s) => s >= size);
  return fit === undefined ? undefined : { name: kmallocName(fit), size: fit };
}

// ---- slab geometry (5.2 calculate_order, slub_max_order = PAGE_ALLOC_COSTLY_ORDER) --------------

const SLUB_MAX_ORDER = 3;
const MAX_ORDER = 11;
const MIN_PARTIAL = 5;
const MAX_PARTIAL = 10;

/** get_order(size): the smallest order of pages that holds size bytes. */
function getOrder(size: number): number {
  let order = 0;
  while (PAGE_SIZE << order < size) order++;
  return order;
}

function orderObjects(order: number, size: number): number {
  return Math.floor((PAGE_SIZE << order) / size);
}

/** slab_order(): the lowest order from the one min_objects need whose leftover is at most 1/fract. */
function slabOrder(size: number, minObjects: number, maxOrder: number, fract: number): number {
  let order = getOrder(minObjects * size);
  for (; order <= maxOrder; order++) {
    const slabSize = PAGE_SIZE << order;
    if (slabSize % size <= slabSize / fract) break;
  }
  return order;
}

/**
 * calculate_order() with slub_min_objects = 4 * (fls(nr_cpu_ids) + 1): with 2 CPUs kmalloc-512 is
 * an order-1 slab of 16, kmalloc-8k an order-3 slab of 4, kvm_vcpu an order-3 slab of one.
 */
export function calculateOrder(size: number, cpus: number): number {
  let minObjects = Math.min(4 * (fls(cpus) + 1), orderObjects(SLUB_MAX_ORDER, size));
  for (; minObjects > 1; minObjects--) {
    for (let fraction = 16; fraction >= 4; fraction /= 2) {
      const order = slabOrder(size, minObjects, SLUB_MAX_ORDER, fraction);
      if (order <= SLUB_MAX_ORDER) return order;
    }
  }
  const order = slabOrder(size, 1, SLUB_MAX_ORDER, 1);
  return order <= SLUB_MAX_ORDER ? order : slabOrder(size, 1, MAX_ORDER, 1);
}

/** set_min_partial(s, ilog2(s->size) / 2): how many partial slabs a cache keeps before it frees an empty one. */
function minPartial(size: number): number {
  return Math.min(MAX_PARTIAL, Math.max(MIN_PARTIAL, Math.floor((fls(size) - 1) / 2)));
}

// ---- caches -----------------------------------------------------------------------------------

/** A slab's allocation is named after its cache: "kmalloc-64 slab". */
const SLAB_SUFFIX = ' slab';

/** What an allocation call asks for: the object, and who allocates it. */
export interface ObjectRequest {
  readonly sensitive: boolean;
  readonly name: string;
  readonly owner: Owner;
  readonly kind: AllocKind;
  readonly boot: boolean;
  /** GFP_KERNEL_ACCOUNT: charged to the memcg of the allocating task. */
  readonly account?: boolean;
  /** GFP_ATOMIC (see AllocRequest): the slab's new pages are asked for with it too. */
  readonly atomic?: boolean;
  /** The allocating task's memcg (0: the root, or a kernel thread). */
  readonly memcg?: number;
}

/**
 * memcg_kmem_get_cache(): an accounted allocation of a task in memcg N uses N's copy of the cache.
 * A copy that does not exist yet is created by a work item (memcg_schedule_kmem_cache_create), and
 * until it has run the allocation is served by the root cache. asi-check 0.1 kept one kind of
 * object to a slab instead.
 */
function cacheKey(sys: System, def: CacheDef, req: ObjectRequest): string {
  if (legacyMemory(sys)) return `${def.name}/${req.kind}`;
  if (!kmemcgEnabled(sys) || !req.memcg || !(req.account || def.account)) return def.name;
  const copy = `${def.name}(memcg ${req.memcg})`;
  if (sys.kernel.caches.has(copy)) return copy;
  if (!sys.kernel.kmemcgWork.includes(copy)) sys.kernel.kmemcgWork.push(copy);
  return def.name;
}

/** kmem_cache_create: a cache with no slab yet. */
function newCache(name: string, size: number, order: number): KmemCache {
  return { name, size, order, slabs: new Map(), active: -1, partial: [] };
}

function cacheOf(sys: System, key: string, def: CacheDef): KmemCache {
  let c = sys.kernel.caches.get(key);
  if (!c) {
    c = newCache(key.split('/')[0], def.size, calculateOrder(def.size, legacyMemory(sys) ? 2 : sys.config.cpus));
    sys.kernel.caches.set(key, c);
  }
  return c;
}

/** The kworker's memcg_kmem_cache_create_func: every memcg copy asked for so far now exists. */
export function runKmemcgWork(sys: System): void {
  for (const key of sys.kernel.kmemcgWork.splice(0)) {
    const root = sys.kernel.caches.get(key.slice(0, key.indexOf('(')))!;
    sys.kernel.caches.set(key, newCache(key, root.size, root.order));
  }
}

function slabObjects(c: KmemCache): number {
  return orderObjects(c.order, c.size);
}

/**
 * The slab the next object comes from: the active one while it has free objects, then the partial
 * list (the last slab put there first), then a new slab. asi-check 0.1 took the oldest slab with a
 * free slot.
 */
function slabWithRoom(sys: System, c: KmemCache): number | undefined {
  if (legacyMemory(sys)) return [...c.slabs].find(([, free]) => free.length > 0)?.[0];
  if (c.slabs.get(c.active)?.length) return c.active;
  while (c.partial.length) {
    const id = c.partial.pop()!;
    if (c.slabs.get(id)?.length) return (c.active = id);
  }
  return undefined;
}

function atomicOf(req: ObjectRequest): { atomic?: true } {
  return req.atomic ? { atomic: true } : {};
}

/** allocate_slab(): 2^order contiguous pages, every slot free, handed out from slot 0 up. */
function newSlab(sys: System, key: string, c: KmemCache, req: ObjectRequest): number | undefined {
  const pages = 1 << c.order;
  // Fault injection ticked once for the object (failslab); this page allocation is not ticked again.
  const a = allocPages(sys, { kind: legacyMemory(sys) ? req.kind : 'slab', owner: KERNEL, name: `${c.name}${SLAB_SUFFIX}`, pages, sensitive: false, parts: [], slab: { cache: key, size: c.size }, contiguousAlign: pages, boot: true, ...atomicOf(req) });
  if (!a) return undefined;
  c.slabs.set(a.id, Array.from({ length: slabObjects(c) }, (_, i) => slabObjects(c) - 1 - i));
  if (!legacyMemory(sys)) c.active = a.id;
  return a.id;
}

/** The free slot handed out: the last one freed (asi-check 0.1: the lowest). */
function takeSlot(sys: System, free: number[]): number {
  if (!legacyMemory(sys)) return free.pop()!;
  const lowest = Math.min(...free);
  free.splice(free.indexOf(lowest), 1);
  return lowest;
}

/** kmem_cache_alloc (slab_alloc): fault injection takes one tick per object (failslab). */
export function kmemCacheAlloc(sys: System, def: CacheDef, req: ObjectRequest): KernelObject | number {
  if (!req.boot && allocationFails(sys.mem)) return ENOMEM;
  const key = cacheKey(sys, def, req);
  const c = cacheOf(sys, key, def);
  const slabId = slabWithRoom(sys, c) ?? newSlab(sys, key, c, req);
  if (slabId === undefined) return ENOMEM;
  const slot = takeSlot(sys, c.slabs.get(slabId)!);
  const slab = sys.mem.allocs.get(slabId)!;
  const part: Part = { id: newPartId(sys.mem), name: req.name, offset: slot * c.size, size: c.size, sensitive: req.sensitive, owner: req.owner };
  setParts(sys.mem, slab, [...slab.parts!, part]);
  const obj: KernelObject = { id: nextId(sys), va: directMapVa(sys, slab.frames[0]) + part.offset, size: c.size, alloc: slabId, kind: req.kind, part: part.id };
  sys.kernel.kmallocs.set(obj.id, obj);
  return obj;
}

/**
 * kmem_cache_free (__slab_free): the object's slot goes back on its slab's freelist, its owner and
 * secret with it. A slab that had no free slot joins the partial list; one left empty goes back to
 * the page allocator once the cache holds min_partial partial slabs besides it (discard_slab), and
 * is kept otherwise. asi-check 0.1 freed an empty slab at once.
 */
function kmemCacheFree(sys: System, obj: KernelObject): void {
  const slab = sys.mem.allocs.get(obj.alloc)!;
  const c = sys.kernel.caches.get(slab.slab!.cache)!;
  const part = slab.parts!.find((p) => p.id === obj.part)!;
  const free = c.slabs.get(slab.id)!;
  free.push(part.offset / c.size);
  setParts(sys.mem, slab, slab.parts!.filter((p) => p !== part));
  const partials = () => [...c.slabs].filter(([id, f]) => id !== slab.id && id !== c.active && f.length > 0).length;
  const empty = free.length === slabObjects(c);
  if (empty && (legacyMemory(sys) || (slab.id !== c.active && partials() >= minPartial(c.size)))) {
    c.slabs.delete(slab.id);
    const i = c.partial.indexOf(slab.id);
    if (i >= 0) c.partial.splice(i, 1);
    freePages(sys, slab.id);
  } else if (!legacyMemory(sys) && slab.id !== c.active && free.length === 1) {
    c.partial.push(slab.id);
  }
}

/**
 * Whether every object slot on `frame`, a page of a slab, holds a live object that bytes [lo, hi)
 * of the frame reach: no free slot and no other object shares the page. True of any other page.
 */
export function slabPageHeldBy(sys: System, frame: number, lo: number, hi: number): boolean {
  const a = allocationOfFrame(sys.mem, frame);
  if (!a?.slab) return true;
  const { size } = a.slab;
  const base = frameOffset(a, frame);
  const held = new Set<number>();
  for (const p of a.parts!) if (partMeets(p, base + lo, base + hi)) held.add(p.offset);
  // The slots that meet the frame: from the one holding its first byte to the last whole slot of the slab.
  const end = Math.min(Math.floor((a.frames.length * PAGE_SIZE) / size), Math.ceil((base + PAGE_SIZE) / size));
  for (let i = Math.floor(base / size); i < end; i++) if (!held.has(i * size)) return false;
  return true;
}

// ---- the allocation calls ---------------------------------------------------------------------

/**
 * Pages of its own for one object (alloc_pages, kmalloc_large, or any object with slab off): a
 * buddy block of 2^order pages, aligned to its order. asi-check 0.1 took only the pages the size
 * needed, at that alignment.
 */
export function allocPagesObject(sys: System, size: number, req: ObjectRequest): KernelObject | number {
  const order = getOrder(size);
  const pages = legacyMemory(sys) ? Math.max(1, Math.ceil(size / PAGE_SIZE)) : 1 << order;
  const a = allocPages(sys, { kind: req.kind, owner: req.owner, name: req.name, pages, sensitive: req.sensitive, contiguousAlign: 1 << order, ...(req.boot ? { boot: true } : {}), ...atomicOf(req) });
  if (!a) return ENOMEM;
  const obj: KernelObject = { id: nextId(sys), va: directMapVa(sys, a.frames[0]), size, alloc: a.id, kind: req.kind };
  sys.kernel.kmallocs.set(obj.id, obj);
  return obj;
}

/**
 * kmem_cache_alloc of a dedicated cache (task_struct, kvm_vcpu, x86_fpu) with slab on; whole
 * pages without.
 */
export function cacheAlloc(sys: System, def: CacheDef, req: ObjectRequest): KernelObject | number {
  return slabEnabled(sys) ? kmemCacheAlloc(sys, def, req) : allocPagesObject(sys, def.size, req);
}

/** kmalloc: objects up to kmalloc-8k from the kmalloc caches with slab on; pages (kmalloc_large) above that and with slab off. */
export function kmalloc(sys: System, size: number, req: ObjectRequest): KernelObject | number {
  const def = slabEnabled(sys) ? kmallocCache(sys, size) : undefined;
  return def ? kmemCacheAlloc(sys, def, req) : allocPagesObject(sys, size, req);
}

export function kfree(sys: System, id: number): KernelObject | undefined {
  const obj = sys.kernel.kmallocs.get(id);
  if (!obj) return undefined;
  if (obj.part === undefined) freePages(sys, obj.alloc);
  else kmemCacheFree(sys, obj);
  sys.kernel.kmallocs.delete(id);
  sys.ghost.freedOn.set(id, sys.exec.id);
  return obj;
}

/** What kvzalloc returned: a kmalloc'd object, or a vmalloc area when kmalloc could not serve it. */
export interface KvObject {
  readonly via: 'kmalloc' | 'vmalloc';
  readonly id: number;
}

/**
 * kvzalloc (5.2 kvmalloc_node): kmalloc first, with __GFP_NORETRY above a page, so that an order
 * the buddy allocator cannot serve at once falls back to vmalloc instead of reclaiming; a failed
 * kmalloc (fault injection included) then tries vmalloc.
 */
export function kvzalloc(sys: System, size: number, req: ObjectRequest, ctx: FlushCtx): KvObject | number {
  const k = kmalloc(sys, size, req);
  if (typeof k !== 'number') return { via: 'kmalloc', id: k.id };
  const v = vmalloc(sys, Math.ceil(size / PAGE_SIZE), req.sensitive, req.name, req.owner, req.kind, ctx);
  return typeof v === 'number' ? v : { via: 'vmalloc', id: v.id };
}

/** The address kvzalloc returned. */
export function kvVa(sys: System, o: KvObject): number {
  return o.via === 'kmalloc' ? sys.kernel.kmallocs.get(o.id)!.va : sys.kernel.vmAreas.get(o.id)!.va;
}

/** The memory behind what kvzalloc returned, as the free path unmaps it from ASIs. */
export function kvMemory(sys: System, o: KvObject): Allocation | undefined {
  return o.via === 'kmalloc' ? objectMemory(sys, o.id) : sys.mem.allocs.get(sys.kernel.vmAreas.get(o.id)!.alloc);
}

/** kvfree: vfree for a vmalloc address (`published` as vfree takes it), kfree otherwise. */
export function kvfree(sys: System, o: KvObject, ctx: FlushCtx, published = true): void {
  if (o.via === 'vmalloc') vfree(sys, o.id, ctx, published);
  else kfree(sys, o.id);
}

/** The memory behind an object, as the free path unmaps it from ASIs (freeUnmapsAsi): its allocation, or on a slab the frames it lies on. */
export function objectMemory(sys: System, id: number): Allocation | undefined {
  const obj = sys.kernel.kmallocs.get(id);
  const a = obj && sys.mem.allocs.get(obj.alloc);
  if (!a || obj!.part === undefined) return a;
  const part = a.parts!.find((p) => p.id === obj!.part)!;
  return objectFrames(a, part.name, part.offset, part.size);
}
