// Physical memory: frames, the allocations that own them, and the objects inside allocations that
// carry a sensitivity label. Sensitivity belongs to the data (the frame's owner), never to the
// address used to reach it, so the same frame seen through the direct map or through vmalloc is
// equally sensitive.

import { PAGE_SIZE } from './geometry.ts';

export type AllocKind =
  | 'kernel-image'
  | 'cpu-entry-area'
  | 'pgtable'
  | 'percpu'
  | 'task-stack'
  | 'task-struct'
  | 'vmalloc'
  | 'kmalloc'
  // The ASI's own bookkeeping: struct asi and its range records.
  | 'asi'
  // A SLUB slab: objects of one kmem_cache side by side (its parts, each with its own owner).
  | 'slab'
  // The vmemmap: struct page of every frame, mapped at boot.
  | 'memmap'
  | 'module'
  // memfd_secret() memory (./secretmem.ts): out of the direct map while a process holds it.
  | 'secretmem'
  // KVM objects (src/model/kvm) and the guest memory of a VM.
  | 'kvm'
  | 'guest-memory';

/** Who an allocation belongs to: the kernel, task n, CPU n, ASI n. */
export interface Owner {
  readonly kind: 'kernel' | 'task' | 'cpu' | 'asi' | 'vm';
  readonly id: number;
}

/** The kernel's own memory: boot allocations, slabs, and objects no task or VM owns. */
export const KERNEL: Owner = { kind: 'kernel', id: 0 };

/** A named part of an allocation, at a byte offset (percpu variables side by side in one page). */
export interface Part {
  /**
   * Unique within its allocation, never reused: a part made with the allocation has its index; one
   * added later (a slab object, a dynamic percpu object) an id from Memory.nextAllocId, so ids
   * tell which objects existed when (see AsiRange.ghostStamp).
   */
  readonly id: number;
  readonly name: string;
  readonly offset: number;
  readonly size: number;
  readonly sensitive: boolean;
  /** An object on a slab page: its own owner (the slab page is the kernel's). */
  readonly owner?: Owner;
}

export interface Allocation {
  readonly id: number;
  readonly kind: AllocKind;
  readonly owner: Owner;
  readonly frames: readonly number[];
  readonly name: string;
  /** Page-table pages: the level of table this page holds. */
  readonly level?: number;
  /** Without parts the allocation is one object with this label. */
  readonly sensitive: boolean;
  readonly parts?: readonly Part[];
  /** A slab: its kmem_cache and the size of its object slots. */
  readonly slab?: { readonly cache: string; readonly size: number };
  /** One block of contiguous frames (AllocRequest.contiguousAlign), freed as one; absent, its frames are order-0 pages (vmalloc's) or boot's. */
  readonly contiguous?: true;
}

export interface Memory {
  /** Allocation id per frame, -1 when the frame is free. */
  readonly frameAlloc: Int32Array;
  /**
   * Per free frame, 1 + the CPU whose per-CPU page list holds it (./pcp.ts), 0 when it is on none:
   * the free lists allocFrames and findFrames take from are the free frames on no CPU's list.
   */
  readonly pcpFrame: Uint8Array;
  /** No frame below this one is free: where alloc_pages starts looking for the lowest free frames. */
  firstFree: number;
  readonly allocs: Map<number, Allocation>;
  nextAllocId: number;
  /** Fault injection: the allocation this many allocations from now fails (-1: none armed). */
  failIn: number;
  /**
   * Bumped by every change to what the page-table invariants read: allocations, page-table
   * entries and the ranges ASIs track (see touch). A checker may skip re-judging those invariants
   * at a micro-step where it has not moved.
   */
  version: number;
  /**
   * Bumped when an allocation is made or freed (not when objects come or go inside one): a checker
   * judging which allocations live may skip a check where it has not moved.
   */
  allocEpoch: number;
  /**
   * What the current step changed, for a checker that judges only what a change can affect: the
   * frames whose page table was written, created or dropped, and the frames allocated or freed,
   * in order, repeats included. Emptied when a step begins (stepBegins); `logStart` is the
   * position of the first entry counted over the whole run, so a reader that keeps its own
   * position can tell whether entries were dropped before it read them.
   */
  readonly tableLog: number[];
  readonly frameLog: number[];
  tableLogStart: number;
  frameLogStart: number;
}

export function newMemory(frames: number): Memory {
  return { frameAlloc: new Int32Array(frames).fill(-1), pcpFrame: new Uint8Array(frames), firstFree: 0, allocs: new Map(), nextAllocId: 1, failIn: -1, version: 0, allocEpoch: 0, tableLog: [], frameLog: [], tableLogStart: 0, frameLogStart: 0 };
}

export function cloneMemory(m: Memory): Memory {
  return { ...m, frameAlloc: m.frameAlloc.slice(), pcpFrame: m.pcpFrame.slice(), allocs: new Map(m.allocs), tableLog: [...m.tableLog], frameLog: [...m.frameLog] };
}

/** Records a change to allocations, page-table entries or tracked ranges. */
export function touch(m: Memory): void {
  m.version++;
}

/** Records a write to the page table held in `frame`, or that table being created or dropped. */
export function tableChanged(m: Memory, frame: number): void {
  m.tableLog.push(frame);
  touch(m);
}

/** A step begins: what the previous one changed has been judged (see tableLog). */
export function stepBegins(m: Memory): void {
  m.tableLogStart += m.tableLog.length;
  m.tableLog.length = 0;
  m.frameLogStart += m.frameLog.length;
  m.frameLog.length = 0;
}

export function frameCount(m: Memory): number {
  return m.frameAlloc.length;
}

/** Consumes one allocation attempt from the fault-injection budget; true when this one must fail. */
export function allocationFails(m: Memory): boolean {
  if (m.failIn < 0) return false;
  m.failIn -= 1;
  return m.failIn === -1;
}

export interface AllocRequest {
  readonly kind: AllocKind;
  readonly owner: Owner;
  readonly name: string;
  readonly pages: number;
  readonly sensitive: boolean;
  readonly level?: number;
  readonly parts?: readonly Part[];
  readonly slab?: Allocation['slab'];
  /** Physically contiguous, starting at a multiple of this many frames (slab pages, percpu chunks). */
  readonly contiguousAlign?: number;
  /** Boot-time allocations (memblock) are not subject to fault injection. */
  readonly boot?: boolean;
  /** GFP_ATOMIC: no __GFP_DIRECT_RECLAIM, so the caller may be atomic (ALLOC_NOBLOCK, September 2025 patch 16). */
  readonly atomic?: boolean;
}

/**
 * alloc_pages: lowest free frames first, so that a frame freed by one owner is the next one handed
 * to another (the reuse that makes stale mappings dangerous). Returns undefined on failure.
 */
export function allocFrames(m: Memory, req: AllocRequest): Allocation | undefined {
  if (!req.boot && allocationFails(m)) return undefined;
  const frames = findFrames(m, req);
  return frames && commitAllocation(m, req, frames);
}

/**
 * The frames allocFrames would take, among those `usable` allows (a free list: the 2025 design's
 * allocator keeps sensitive and nonsensitive pages apart), or undefined.
 */
export function findFrames(m: Memory, req: AllocRequest, usable?: (frame: number) => boolean): number[] | undefined {
  return req.contiguousAlign ? findContiguous(m, req.pages, req.contiguousAlign, usable) : findAny(m, req.pages, usable);
}

/** The allocation of `frames`, found free by findFrames. */
export function commitAllocation(m: Memory, req: AllocRequest, frames: number[]): Allocation {
  const a: Allocation = {
    id: m.nextAllocId++,
    kind: req.kind,
    owner: req.owner,
    frames,
    name: req.name,
    sensitive: req.sensitive,
    ...(req.level !== undefined ? { level: req.level } : {}),
    ...(req.parts ? { parts: req.parts } : {}),
    ...(req.slab ? { slab: req.slab } : {}),
    ...(req.contiguousAlign ? { contiguous: true as const } : {}),
  };
  m.allocs.set(a.id, a);
  for (const f of frames) m.frameAlloc[f] = a.id;
  while (m.firstFree < m.frameAlloc.length && m.frameAlloc[m.firstFree] !== -1) m.firstFree++;
  m.frameLog.push(...frames);
  m.allocEpoch++;
  touch(m);
  return a;
}

/** A free frame in the buddy allocator's free lists: free, and on no CPU's per-CPU list. */
export function inFreeLists(m: Memory, frame: number): boolean {
  return m.frameAlloc[frame] === -1 && m.pcpFrame[frame] === 0;
}

function findAny(m: Memory, pages: number, usable?: (frame: number) => boolean): number[] | undefined {
  const out: number[] = [];
  for (let f = m.firstFree; f < m.frameAlloc.length && out.length < pages; f++) if (inFreeLists(m, f) && (!usable || usable(f))) out.push(f);
  return out.length === pages ? out : undefined;
}

function findContiguous(m: Memory, pages: number, align: number, usable?: (frame: number) => boolean): number[] | undefined {
  for (let start = m.firstFree - (m.firstFree % align); start + pages <= m.frameAlloc.length; start += align) {
    let ok = true;
    for (let f = start; f < start + pages; f++) if (!inFreeLists(m, f) || (usable && !usable(f))) { ok = false; break; }
    if (ok) return Array.from({ length: pages }, (_, i) => start + i);
  }
  return undefined;
}

export function freeAllocation(m: Memory, id: number): Allocation | undefined {
  const a = m.allocs.get(id);
  if (!a) return undefined;
  for (const f of a.frames) {
    if (m.frameAlloc[f] !== id) continue;
    m.frameAlloc[f] = -1;
    m.firstFree = Math.min(m.firstFree, f);
  }
  m.frameLog.push(...a.frames);
  m.allocs.delete(id);
  m.allocEpoch++;
  touch(m);
  return a;
}

/**
 * Objects came or went inside an allocation (kmem_cache_alloc/free, alloc_percpu/free_percpu): the
 * frames hold other owners and secrets now, which what a frame reaches depends on as much as on an
 * allocation or a free. Returns the allocation as it is now.
 */
export function setParts(m: Memory, a: Allocation, parts: readonly Part[]): Allocation {
  const now = { ...a, parts };
  m.allocs.set(a.id, now);
  m.frameLog.push(...a.frames);
  touch(m);
  return now;
}

/**
 * The frames of `a` that bytes [offset, offset + size) lie on, named after the object there: what
 * the free path unmaps from ASIs for an object inside a shared allocation (a slab object, a percpu
 * object), so that freeing it does not unmap its neighbours on other pages.
 */
export function objectFrames(a: Allocation, name: string, offset: number, size: number): Allocation {
  return { ...a, name: `${a.name}:${name}`, frames: a.frames.slice(Math.floor(offset / PAGE_SIZE), Math.ceil((offset + size) / PAGE_SIZE)) };
}

/** An id for a part added to an allocation after it was made (see Part.id). */
export function newPartId(m: Memory): number {
  return m.nextAllocId++;
}

export function allocationOfFrame(m: Memory, frame: number): Allocation | undefined {
  const id = m.frameAlloc[frame];
  return id === undefined || id < 0 ? undefined : m.allocs.get(id);
}

/** An object in memory: a whole allocation, or one part of it. */
export interface ObjectRef {
  readonly alloc: Allocation;
  readonly part?: Part;
}

export function objectName(o: ObjectRef): string {
  return o.part ? `${o.alloc.name}:${o.part.name}` : o.alloc.name;
}

/** Whose the object is: a part's own owner (a slab object's), else the allocation's. */
export function objectOwner(o: ObjectRef): Owner {
  return o.part?.owner ?? o.alloc.owner;
}

/**
 * A unit of exposure: one object as it sits on one frame. Ghost state records the units a range
 * reached when it was mapped; allocation ids are never reused, so a frame freed and handed to a
 * new owner gives new units.
 */
export function unitKey(frame: number, o: ObjectRef): string {
  return `${frame}/${o.alloc.id}/${o.part ? o.part.id : -1}`;
}

const ZERO = 0x30;
const NINE = 0x39;

/** The allocation id of a unitKey, read in place: REFINE asks it of every unit of every range at every check. */
export function unitAlloc(key: string): number {
  let id = 0;
  for (let i = key.indexOf('/') + 1, c = key.charCodeAt(i); c >= ZERO && c <= NINE; c = key.charCodeAt(++i)) id = id * 10 + c - ZERO;
  return id;
}

/** The frame of a unitKey. */
export function unitFrame(key: string): number {
  return Number(key.slice(0, key.indexOf('/')));
}

/** The part id of a unitKey (-1: the whole allocation). */
export function unitPart(key: string): number {
  return Number(key.slice(key.lastIndexOf('/') + 1));
}

export function objectSensitive(o: ObjectRef): boolean {
  return o.part ? o.part.sensitive : o.alloc.sensitive;
}

/** Where `frame` starts inside its allocation, in bytes: the offset its parts are laid out from. */
export function frameOffset(a: Allocation, frame: number): number {
  return a.frames.indexOf(frame) * PAGE_SIZE;
}

export function objectsInFrame(m: Memory, frame: number, lo = 0, hi = PAGE_SIZE): ObjectRef[] {
  const a = allocationOfFrame(m, frame);
  if (!a) return [];
  if (!a.parts) return [{ alloc: a }];
  const base = frameOffset(a, frame);
  const out: ObjectRef[] = [];
  for (const part of a.parts) if (partMeets(part, base + lo, base + hi)) out.push({ alloc: a, part });
  return out;
}

export function partMeets(p: Pick<Part, 'offset' | 'size'>, lo: number, hi: number): boolean {
  return p.offset < hi && p.offset + p.size > lo;
}

/**
 * Whether some object on the frame is sensitive, without listing them: ISOLATION asks it of every
 * frame an ASI or a TLB reaches, and almost every answer is no.
 */
export function frameHoldsSensitive(m: Memory, frame: number): boolean {
  const a = allocationOfFrame(m, frame);
  if (!a) return false;
  if (!a.parts) return a.sensitive;
  const base = frameOffset(a, frame);
  return a.parts.some((p) => p.sensitive && partMeets(p, base, base + PAGE_SIZE));
}
