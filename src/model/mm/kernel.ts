// The kernel address space (Documentation/x86/x86_64/mm.rst, scaled by the geometry) and the
// kernel's own run-time changes to it. Only the kernel writes kernel page tables.

import {
  type Geometry,
  type PgtLevel,
  PAGE_SIZE,
  PGT_LEVEL_PGD,
  PGT_LEVEL_PMD,
  PGT_LEVEL_PTE,
  PGT_LEVEL_PUD,
  entriesPerTable,
  indexAt,
  levelSize,
  roundUp,
} from './geometry.ts';
import { type AllocKind, type Allocation, type Memory, type Owner, type Part, allocFrames, allocationFails, allocationOfFrame, frameOffset, freeAllocation, newMemory, partMeets, setParts, tableChanged } from './memory.ts';
import { lowerLevel } from './pagetable.ts';
import {
  _KERNPG_TABLE,
  _PAGE_PSE,
  PAGE_KERNEL,
  PAGE_KERNEL_ROX,
  entryFrame,
  isLarge,
  isNone,
  mkEntry,
} from './pte.ts';
import {
  type Config,
  type KernelObject,
  type Layout,
  type System,
  type Task,
  type VmArea,
  geometryOf,
  newGhost,
  resolveOptions,
  slabEnabled,
} from '../system.ts';
import { bootCpus } from '../x86/cpu.ts';
import { processContext } from '../x86/context.ts';

export const ENOMEM = -12;
export const EBUSY = -16;
export const EINVAL = -22;
export const ESRCH = -3;
export const ENOENT = -2;
export const EFAULT = -14;
export const ENXIO = -6;
export const EEXIST = -17;
export const ENOSPC = -28;
/** Not an errno: the op's CPU hung or took a double fault earlier in the step, and runs nothing more. */
export const ECPUDEAD = -1000;

export const ERRNO_NAMES: Record<number, string> = {
  [ENOMEM]: '-ENOMEM',
  [EBUSY]: '-EBUSY',
  [EINVAL]: '-EINVAL',
  [ESRCH]: '-ESRCH',
  [ENOENT]: '-ENOENT',
  [EFAULT]: '-EFAULT',
  [ENXIO]: '-ENXIO',
  [EEXIST]: '-EEXIST',
  [ENOSPC]: '-ENOSPC',
  [ECPUDEAD]: 'cpu dead',
};

const KERNEL: Owner = { kind: 'kernel', id: 0 };

/**
 * Top-level slots of each region, as on x86-64 (pgd_index of each base address in mm.rst). The slot
 * after cpu_entry_area is a hole and espfix is ESPFIX_PGD_ENTRY (-2UL) = 510: asi_init_mapping's
 * P4D-sized cpu_entry_area range, which starts one page into its slot, spills into the hole only.
 */
const SLOTS: Record<Geometry['name'], { direct: number; vmalloc: number; cea: number; espfix: number; kernel: number }> = {
  real: { direct: 273, vmalloc: 402, cea: 508, espfix: 510, kernel: 511 },
  small: { direct: 1, vmalloc: 2, cea: 4, espfix: 6, kernel: 7 },
};

const PHYS_FRAMES: Record<Geometry['name'], number> = { real: 4096, small: 256 };

/** THREAD_SIZE: 4 pages (THREAD_SIZE_ORDER 2), vmalloc'd with a guard page (VMAP_STACK). */
export const THREAD_PAGES = 4;
export const TASK_STRUCT_SIZE = 0x1a40;
/** A CPU's GDT, TSS and IST/entry stack pages in cpu_entry_area. */
export const CEA_PAGES_PER_CPU = 3;
const KERNEL_BSS_PAGES = 4;

export function computeLayout(g: Geometry): Layout {
  const slot = levelSize(g, PGT_LEVEL_PGD);
  const pud = levelSize(g, PGT_LEVEL_PUD);
  const s = SLOTS[g.name];
  const startKernelMap = s.kernel * slot + (entriesPerTable(g) - 2) * pud;
  return {
    directMap: s.direct * slot,
    vmallocStart: s.vmalloc * slot,
    vmallocEnd: (s.vmalloc + 1) * slot,
    ceaBase: s.cea * slot,
    ceaPerCpu: s.cea * slot + PAGE_SIZE,
    espfixBase: s.espfix * slot,
    startKernelMap,
    kernelImageSize: pud / 2,
    modulesStart: startKernelMap + pud / 2,
    modulesEnd: startKernelMap + pud,
    physFrames: PHYS_FRAMES[g.name],
  };
}

/**
 * Static percpu variables, at their offsets in each CPU's percpu area. The order follows the
 * percpu sections: ..first (fixed_percpu_data), ..page_aligned (cpu_asi_session), ..read_mostly
 * and the rest, so mapping one variable's page shows its neighbours.
 */
export const PERCPU_VARS = {
  fixed_percpu_data: { offset: 0x0, size: 0x30 },
  cpu_asi_session: { offset: 0x1000, size: 0x1000 },
  this_cpu_off: { offset: 0x2000, size: 0x8 },
  current_task: { offset: 0x2040, size: 0x8 },
  rcu_data: { offset: 0x2080, size: 0x400 },
  batched_entropy_u64: { offset: 0x2500, size: 0x100, sensitive: true },
  cpu_hw_events: { offset: 0x3000, size: 0xa00 },
  cpu_tlbstate: { offset: 0x3c00, size: 0x100 },
  // What patch 24 maps for KVM: context_tracking, irq_stat, current_vcpu, and kvm->srcu.sda (a
  // dynamic percpu allocation, modelled as one slot shared by the VMs).
  context_tracking: { offset: 0x2600, size: 0x10 },
  irq_stat: { offset: 0x2640, size: 0x40 },
  current_vcpu: { offset: 0x2680, size: 0x8 },
  kvm_srcu_data: { offset: 0x2700, size: 0x100 },
} as const;
export type PercpuVar = keyof typeof PERCPU_VARS;
export const PERCPU_VAR_NAMES = Object.keys(PERCPU_VARS) as PercpuVar[];

/**
 * With percpuSecretsOwnPage the CSPRNG state moves to a page of its own at the end of the area and
 * fills it, so that no page-granular mapping of anything else can reach it.
 */
function percpuLayout(secretsOwnPage: boolean): { pages: number; parts: Part[] } {
  const parts = PERCPU_VAR_NAMES.map((name) => {
    const v = PERCPU_VARS[name];
    const sensitive = 'sensitive' in v && v.sensitive;
    return sensitive && secretsOwnPage ? { name, offset: 0x4000, size: PAGE_SIZE, sensitive } : { name, offset: v.offset, size: v.size, sensitive };
  });
  return { pages: secretsOwnPage ? 5 : 4, parts };
}

export function percpuVarOffset(sys: System, name: PercpuVar): number {
  return sys.mem.allocs.get(sys.kernel.percpu[0])!.parts!.find((p) => p.name === name)!.offset;
}

/** per_cpu_ptr(&var, cpu): percpu areas live in the direct map. */
export function perCpuPtr(sys: System, name: PercpuVar, cpu: number): number {
  const area = sys.mem.allocs.get(sys.kernel.percpu[cpu])!;
  return directMapVa(sys, area.frames[0]) + percpuVarOffset(sys, name);
}

export function directMapVa(sys: System, frame: number): number {
  return sys.kernel.layout.directMap + frame * PAGE_SIZE;
}

// ---- kernel page-table writes -------------------------------------------------------------

/** A page-table entry slot: the table page and the index in it. */
export interface EntrySlot {
  readonly table: number;
  readonly index: number;
}

function allocKernelTable(sys: System, level: PgtLevel, boot: boolean): number | undefined {
  const a = allocFrames(sys.mem, { kind: 'pgtable', owner: KERNEL, name: `kernel ${levelName(level)} table`, pages: 1, sensitive: false, level, boot });
  if (!a) return undefined;
  sys.tables.set(a.frames[0], new Int32Array(entriesPerTable(sys.g)));
  tableChanged(sys.mem, a.frames[0]);
  return a.frames[0];
}

function levelName(level: PgtLevel): string {
  return ['pte', 'pmd', 'pud', 'p4d', 'pgd'][level];
}

/** The kernel's slot for va at `level`, allocating missing tables on the way (pXX_alloc). */
function kernelSlot(sys: System, va: number, level: PgtLevel, boot: boolean): EntrySlot | undefined {
  let table = sys.kernel.pgd;
  for (let l: PgtLevel = PGT_LEVEL_PGD; ; l = lowerLevel(l)) {
    const index = indexAt(sys.g, l, va);
    if (l === level) return { table, index };
    const entries = sys.tables.get(table)!;
    if (isNone(entries[index])) {
      const t = allocKernelTable(sys, lowerLevel(l), boot);
      if (t === undefined) return undefined;
      entries[index] = mkEntry(t, _KERNPG_TABLE);
      tableChanged(sys.mem, table);
    } else if (isLarge(entries[index])) {
      throw new Error(`model bug: kernel mapping ${va.toString(16)} under a large page`);
    }
    table = entryFrame(entries[index]);
  }
}

function kernelMap(sys: System, va: number, frame: number, flags: number, level: PgtLevel, boot: boolean): boolean {
  const slot = kernelSlot(sys, va, level, boot);
  if (!slot) return false;
  sys.tables.get(slot.table)![slot.index] = mkEntry(frame, level === PGT_LEVEL_PTE ? flags : flags | _PAGE_PSE);
  tableChanged(sys.mem, slot.table);
  return true;
}

/** The kernel clears a 4K mapping (vunmap); its page-table pages stay, as in Linux. */
function kernelUnmapPage(sys: System, va: number): void {
  const slot = kernelSlot(sys, va, PGT_LEVEL_PTE, true)!;
  sys.tables.get(slot.table)![slot.index] = 0;
  tableChanged(sys.mem, slot.table);
}

/** Map frames with the largest aligned pages up to `largest` (the direct map, the kernel image). */
function mapLargest(sys: System, va: number, firstFrame: number, pages: number, flags: number, largest: PgtLevel): void {
  let done = 0;
  while (done < pages) {
    let level = largest;
    for (; level > PGT_LEVEL_PTE; level = (level - 1) as PgtLevel) {
      const n = levelSize(sys.g, level) / PAGE_SIZE;
      if ((va + done * PAGE_SIZE) % levelSize(sys.g, level) === 0 && (firstFrame + done) % n === 0 && pages - done >= n) break;
    }
    kernelMap(sys, va + done * PAGE_SIZE, firstFrame + done, flags, level, true);
    done += levelSize(sys.g, level) / PAGE_SIZE;
  }
}

// ---- boot ----------------------------------------------------------------------------------

export function boot(config: Config): System {
  const g = geometryOf(config);
  const options = resolveOptions(config);
  const layout = computeLayout(g);
  const mem = newMemory(layout.physFrames);
  const tables = new Map<number, Int32Array>();
  const sys: System = {
    config,
    options,
    g,
    mem,
    tables,
    kernel: { pgd: -1, layout, percpu: [], current: [], tasks: new Map(), vmAreas: new Map(), kmallocs: new Map(), modules: new Map(), nextId: 1 },
    asis: new Map(),
    nextAsiId: 1,
    cpus: [],
    exec: processContext(),
    caller: 0,
    ghost: newGhost(),
  };
  const large = levelSize(g, PGT_LEVEL_PMD) / PAGE_SIZE;
  const image = allocFrames(mem, { kind: 'kernel-image', owner: KERNEL, name: 'kernel image', pages: 2 * large + KERNEL_BSS_PAGES, sensitive: false, contiguousAlign: large, boot: true })!;
  const pgd = allocFrames(mem, { kind: 'pgtable', owner: KERNEL, name: 'kernel pgd', pages: 1, sensitive: false, level: PGT_LEVEL_PGD, boot: true })!.frames[0];
  tables.set(pgd, new Int32Array(entriesPerTable(g)));
  tableChanged(mem, pgd);
  Object.assign(sys.kernel, { pgd });

  // Kernel image: text (large, RX), data (large, RW NX), then bss in 4K pages.
  const f0 = image.frames[0];
  mapLargest(sys, layout.startKernelMap, f0, large, PAGE_KERNEL_ROX, PGT_LEVEL_PMD);
  mapLargest(sys, layout.startKernelMap + large * PAGE_SIZE, f0 + large, large, PAGE_KERNEL, PGT_LEVEL_PMD);
  mapLargest(sys, layout.startKernelMap + 2 * large * PAGE_SIZE, f0 + 2 * large, KERNEL_BSS_PAGES, PAGE_KERNEL, PGT_LEVEL_PTE);

  // Direct map of all physical memory, 1G/2M pages where aligned (gbpages).
  mapLargest(sys, layout.directMap, 0, layout.physFrames, PAGE_KERNEL, PGT_LEVEL_PUD);

  // cpu_entry_area: the read-only IDT page, then each CPU's GDT/TSS/entry stack; and espfix.
  const cea = allocFrames(mem, { kind: 'cpu-entry-area', owner: KERNEL, name: 'cpu_entry_area', pages: 1 + CEA_PAGES_PER_CPU * config.cpus, sensitive: false, boot: true })!;
  cea.frames.forEach((f, i) => kernelMap(sys, layout.ceaBase + i * PAGE_SIZE, f, PAGE_KERNEL, PGT_LEVEL_PTE, true));
  const espfix = allocFrames(mem, { kind: 'cpu-entry-area', owner: KERNEL, name: 'espfix stack', pages: 1, sensitive: false, boot: true })!;
  kernelMap(sys, layout.espfixBase, espfix.frames[0], PAGE_KERNEL, PGT_LEVEL_PTE, true);

  const pcpu = percpuLayout(options.percpuSecretsOwnPage);
  for (let cpu = 0; cpu < config.cpus; cpu++) {
    const area = allocFrames(mem, { kind: 'percpu', owner: { kind: 'cpu', id: cpu }, name: `percpu area cpu${cpu}`, pages: pcpu.pages, sensitive: false, parts: pcpu.parts, contiguousAlign: 1, boot: true })!;
    (sys.kernel.percpu as number[]).push(area.id);
  }
  // One task per CPU (its idle/current task), created as any other task but at boot.
  for (let cpu = 0; cpu < config.cpus; cpu++) {
    const t = taskCreate(sys, true);
    if (typeof t !== 'number' || t < 0) throw new Error('model bug: boot task allocation failed');
    sys.kernel.current.push(t);
  }
  sys.cpus.push(...bootCpus(sys));
  return sys;
}

// ---- run-time kernel changes ---------------------------------------------------------------

function nextId(sys: System): number {
  return sys.kernel.nextId++;
}

/** First fit in [start, end) among the areas in use: freed VA is reused, as vmalloc does. */
function findVa(sys: System, start: number, end: number, used: Iterable<VmArea>, span: number): number | undefined {
  const busy = [...used].sort((a, b) => a.va - b.va);
  let va = start;
  for (const a of busy) {
    if (a.va - va >= span * PAGE_SIZE) break;
    va = Math.max(va, a.va + a.span * PAGE_SIZE);
  }
  return va + span * PAGE_SIZE <= end ? va : undefined;
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

/** vmalloc/module_alloc: VA first, then frames, then the PTEs; ENOMEM undoes what was done. */
function vmAlloc(sys: System, area: Map<number, VmArea>, start: number, end: number, guard: number, req: VmRequest): VmArea | number {
  const va = findVa(sys, start, end, [...sys.kernel.vmAreas.values(), ...sys.kernel.modules.values()], req.pages + guard);
  if (va === undefined) return ENOMEM;
  const a = allocFrames(sys.mem, { ...req, ...(req.boot ? { boot: true } : {}) });
  if (!a) return ENOMEM;
  for (let i = 0; i < req.pages; i++) {
    if (!kernelMap(sys, va + i * PAGE_SIZE, a.frames[i], req.flags, PGT_LEVEL_PTE, req.boot ?? false)) {
      for (let j = 0; j < i; j++) kernelUnmapPage(sys, va + j * PAGE_SIZE);
      freeAllocation(sys.mem, a.id);
      return ENOMEM;
    }
  }
  const vm: VmArea = { id: nextId(sys), va, pages: req.pages, span: req.pages + guard, alloc: a.id };
  area.set(vm.id, vm);
  return vm;
}

function vmFree(sys: System, area: Map<number, VmArea>, id: number): VmArea | undefined {
  const vm = area.get(id);
  if (!vm) return undefined;
  for (let i = 0; i < vm.pages; i++) kernelUnmapPage(sys, vm.va + i * PAGE_SIZE);
  freeAllocation(sys.mem, vm.alloc);
  area.delete(id);
  return vm;
}

export function vmalloc(sys: System, pages: number, sensitive: boolean, name = 'vmalloc', owner: Owner = KERNEL, kind: AllocKind = 'vmalloc', boot = false): VmArea | number {
  const l = sys.kernel.layout;
  return vmAlloc(sys, sys.kernel.vmAreas, l.vmallocStart, l.vmallocEnd, 1, { kind, owner, name, pages, sensitive, flags: PAGE_KERNEL, boot });
}

export function vfree(sys: System, id: number): VmArea | undefined {
  return vmFree(sys, sys.kernel.vmAreas, id);
}

/**
 * A kmem_cache (SLUB): objects of `size` side by side on slabs of 2^order pages. The orders are
 * what 5.2's calculate_order picks with 2 CPUs (slub_min_objects 12, slub_max_order 3).
 */
export interface SlabCache {
  readonly name: string;
  readonly size: number;
  readonly order: number;
}

/** kmalloc-64 ... kmalloc-4096; larger requests go to the page allocator (kmalloc_large). */
const KMALLOC_CACHES: readonly SlabCache[] = [
  { name: 'kmalloc-64', size: 64, order: 0 },
  { name: 'kmalloc-128', size: 128, order: 0 },
  { name: 'kmalloc-256', size: 256, order: 0 },
  { name: 'kmalloc-512', size: 512, order: 1 },
  { name: 'kmalloc-1k', size: 1024, order: 2 },
  { name: 'kmalloc-2k', size: 2048, order: 3 },
  { name: 'kmalloc-4k', size: 4096, order: 3 },
];

/** fork_init's task_struct cache: four to an order-3 slab; page-aligned objects with taskStructOwnPages. */
function taskStructCache(sys: System): SlabCache {
  const size = sys.options.taskStructOwnPages ? roundUp(TASK_STRUCT_SIZE, PAGE_SIZE) : TASK_STRUCT_SIZE; // fixed: taskStructOwnPages
  return { name: 'task_struct', size, order: 3 };
}

export function kmallocCache(size: number): SlabCache | undefined {
  return KMALLOC_CACHES.find((c) => c.size >= size);
}

/** An object's allocation request: what it is, whose, and whether it is a secret. */
export interface ObjectRequest {
  readonly sensitive: boolean;
  readonly name: string;
  readonly owner: Owner;
  readonly kind: AllocKind;
  readonly boot: boolean;
}

/** A slab's allocation is named after its cache: "kmalloc-64 slab". */
const SLAB_SUFFIX = ' slab';

function slabName(cache: SlabCache): string {
  return `${cache.name}${SLAB_SUFFIX}`;
}

/** Object slots on a slab of `bytes`: the tail that fits no whole object stays empty. */
function slabSlots(bytes: number, size: number): number {
  return Math.floor(bytes / size);
}

/**
 * Whether every object slot on `frame`, a page of a slab, holds a live object that bytes [lo, hi)
 * of the frame reach: no free slot and no other object shares the page. True of any other page.
 */
export function slabPageHeldBy(mem: Memory, frame: number, lo: number, hi: number): boolean {
  const a = allocationOfFrame(mem, frame);
  if (!a?.parts?.length || !a.name.endsWith(SLAB_SUFFIX)) return true;
  const size = a.parts[0].size;
  const base = frameOffset(a, frame);
  // The slots that meet the frame: from the one holding its first byte to the last whole slot of the slab.
  const end = Math.min(slabSlots(a.frames.length * PAGE_SIZE, size), Math.ceil((base + PAGE_SIZE) / size));
  for (let i = Math.floor(base / size); i < end; i++) {
    if (!a.parts.some((p) => p.owner && p.offset === i * size && partMeets(p, base + lo, base + hi))) return false;
  }
  return true;
}

/**
 * A free object slot on a slab page of `cache` (the lowest): [allocation, offset]. Linux shares a
 * kmalloc slab between every user of the size; the model keeps one kind of object to a slab (KVM's,
 * tasks', the generic kmallocs of the ops), so that an op freeing a generic object never names KVM's.
 */
function freeSlot(sys: System, cache: SlabCache, kind: AllocKind): [Allocation, number] | undefined {
  const perSlab = slabSlots(PAGE_SIZE << cache.order, cache.size);
  for (const a of sys.mem.allocs.values()) {
    if (a.name !== slabName(cache) || a.kind !== kind) continue;
    const used = new Set(a.parts!.filter((p) => p.owner).map((p) => p.offset));
    for (let i = 0; i < perSlab; i++) if (!used.has(i * cache.size)) return [a, i * cache.size];
  }
  return undefined;
}

/**
 * kmem_cache_alloc (SLUB), when Config.kernel.slab is on: the object takes a free slot of a slab
 * page of the cache, or a new slab (allocate_slab). Fault injection takes one tick per object
 * (failslab), whether or not a new slab is needed. Freed slots stay as parts without an owner, so
 * an object allocated later in a slot is a new part (a new unit for ISOLATION).
 */
export function kmemCacheAlloc(sys: System, cache: SlabCache, req: ObjectRequest): KernelObject | number {
  if (!req.boot && allocationFails(sys.mem)) return ENOMEM;
  let slot = freeSlot(sys, cache, req.kind);
  if (!slot) {
    const pages = 1 << cache.order;
    // The failslab tick above stands for this page allocation too.
    const a = allocFrames(sys.mem, { kind: req.kind, owner: KERNEL, name: slabName(cache), pages, sensitive: false, parts: [], contiguousAlign: pages, boot: true });
    if (!a) return ENOMEM;
    slot = [a, 0];
  }
  const [slab, offset] = slot;
  const part: Part = { name: req.name, offset, size: cache.size, sensitive: req.sensitive, owner: req.owner };
  setParts(sys.mem, slab, [...slab.parts!, part]);
  const obj: KernelObject = { id: nextId(sys), va: directMapVa(sys, slab.frames[0]) + offset, size: cache.size, alloc: slab.id, part: slab.parts!.length };
  sys.kernel.kmallocs.set(obj.id, obj);
  return obj;
}

/** kmem_cache_free: the slot's part loses its owner and its secret; an empty slab goes back (discard_slab). */
function kmemCacheFree(sys: System, obj: KernelObject): void {
  const slab = sys.mem.allocs.get(obj.alloc)!;
  const parts = slab.parts!.map((p, i) => (i === obj.part ? { name: 'free object', offset: p.offset, size: p.size, sensitive: false } : p));
  if (parts.some((p) => p.owner)) setParts(sys.mem, slab, parts);
  else freeAllocation(sys.mem, slab.id);
}

/**
 * kmalloc from the direct map: with Config.kernel.slab, objects up to 4 KiB from the kmalloc-N caches;
 * otherwise, and above that, whole pages (kmalloc_large).
 */
export function kmalloc(sys: System, size: number, sensitive: boolean, name = 'kmalloc', owner: Owner = KERNEL, kind: AllocKind = 'kmalloc', boot = false): KernelObject | number {
  const cache = slabEnabled(sys) ? kmallocCache(size) : undefined;
  if (cache) return kmemCacheAlloc(sys, cache, { sensitive, name, owner, kind, boot });
  return pagesObject(sys, size, { sensitive, name, owner, kind, boot });
}

/** An object on pages of its own (kmalloc_large, or any kmalloc without Config.kernel.slab). */
function pagesObject(sys: System, size: number, req: ObjectRequest): KernelObject | number {
  const pages = Math.max(1, roundUp(size, PAGE_SIZE) / PAGE_SIZE);
  const order = 2 ** Math.ceil(Math.log2(pages));
  const a = allocFrames(sys.mem, { ...req, pages, contiguousAlign: order });
  if (!a) return ENOMEM;
  const obj: KernelObject = { id: nextId(sys), va: directMapVa(sys, a.frames[0]), size, alloc: a.id };
  sys.kernel.kmallocs.set(obj.id, obj);
  return obj;
}

/** kmem_cache_alloc of `cache` with Config.kernel.slab, whole pages without. */
export function cacheAlloc(sys: System, cache: SlabCache, req: ObjectRequest): KernelObject | number {
  return slabEnabled(sys) ? kmemCacheAlloc(sys, cache, req) : pagesObject(sys, cache.size, req);
}

/**
 * The memory behind an object, as the free path unmaps it from ASIs (freeUnmapsAsi): its
 * allocation, or on a slab page only the frames the object lies on, so that freeing an object does
 * not unmap its neighbours.
 */
export function objectMemory(sys: System, id: number): Allocation | undefined {
  const obj = sys.kernel.kmallocs.get(id);
  const a = obj && sys.mem.allocs.get(obj.alloc);
  if (!a || obj!.part === undefined) return a;
  const first = (obj!.va - directMapVa(sys, a.frames[0])) / PAGE_SIZE;
  return { ...a, name: `${a.name}:${a.parts![obj!.part].name}`, frames: a.frames.slice(Math.floor(first), Math.ceil(first + obj!.size / PAGE_SIZE)) };
}

export function kfree(sys: System, id: number): KernelObject | undefined {
  const obj = sys.kernel.kmallocs.get(id);
  if (!obj) return undefined;
  if (obj.part === undefined) freeAllocation(sys.mem, obj.alloc);
  else kmemCacheFree(sys, obj);
  sys.kernel.kmallocs.delete(id);
  return obj;
}

/** copy_process: task_struct from the slab, then a vmalloc'd stack. Returns the task id or -errno. */
export function taskCreate(sys: System, boot = false): number {
  const id = nextId(sys);
  const owner: Owner = { kind: 'task', id };
  const struct = cacheAlloc(sys, taskStructCache(sys), { sensitive: true, name: `task_struct of task ${id}`, owner, kind: 'task-struct', boot });
  if (typeof struct === 'number') return struct;
  const stack = vmalloc(sys, THREAD_PAGES, true, `stack of task ${id}`, owner, 'task-stack', boot);
  if (typeof stack === 'number') {
    kfree(sys, struct.id);
    return stack;
  }
  sys.kernel.tasks.set(id, { id, stack: stack.id, struct: struct.id, structVa: struct.va });
  return id;
}

export function taskStackVa(sys: System, t: Task): number {
  return sys.kernel.vmAreas.get(t.stack)!.va;
}

/** do_exit + free_task: a running task cannot exit from under its CPU. */
export function taskExit(sys: System, id: number): number {
  const t = sys.kernel.tasks.get(id);
  if (!t) return ESRCH;
  if (sys.kernel.current.includes(id)) return EBUSY;
  vfree(sys, t.stack);
  kfree(sys, t.struct);
  sys.kernel.tasks.delete(id);
  return 0;
}

/** load_module: core_layout in the modules area, text RX then data RW. */
export function moduleLoad(sys: System, pages: number): VmArea | number {
  const l = sys.kernel.layout;
  return vmAlloc(sys, sys.kernel.modules, l.modulesStart, l.modulesEnd, 0, { kind: 'module', owner: KERNEL, name: 'module', pages, sensitive: false, flags: PAGE_KERNEL_ROX });
}

export function moduleUnload(sys: System, id: number): VmArea | undefined {
  return vmFree(sys, sys.kernel.modules, id);
}
