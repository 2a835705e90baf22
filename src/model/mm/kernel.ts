// The kernel address space (Documentation/x86/x86_64/mm.rst, scaled by the geometry), boot, and
// tasks. Only the kernel writes kernel page tables. Memory is allocated by slab.ts (kmalloc and
// kmem_caches), vmalloc.ts (vmalloc space and modules) and percpu.ts (percpu units).

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
import { type Owner, KERNEL, allocFrames, newMemory, tableChanged } from './memory.ts';
import { lowerLevel } from './pagetable.ts';
import { _KERNPG_TABLE, _PAGE_GLOBAL, _PAGE_PSE, PAGE_KERNEL, PAGE_KERNEL_ROX, entryFrame, isLarge, isNone, mkEntry } from './pte.ts';
import { type Config, type Layout, type System, type Task, geometryOf, legacyMemory, newGhost, resolveOptions } from '../system.ts';
import { percpuUnit } from './percpu.ts';
import { type CacheDef, cacheAlloc, kfree } from './slab.ts';
import { type FlushCtx, vfree, vmalloc } from './vmalloc.ts';
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
/** An op the profile's design has no counterpart of (the 2019 API's asi_map on the 2025 design). */
export const ENOSYS = -38;
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
  [ENOSYS]: '-ENOSYS',
  [ECPUDEAD]: 'cpu dead',
};


/**
 * Top-level slots of each region, as on x86-64 (pgd_index of each base address in mm.rst). The slot
 * after cpu_entry_area is a hole and espfix is ESPFIX_PGD_ENTRY (-2UL) = 510: asi_init_mapping's
 * P4D-sized cpu_entry_area range, which starts one page into its slot, spills into the hole only.
 */
const SLOTS: Record<Geometry['name'], { direct: number; vmalloc: number; vmemmap: number; cea: number; espfix: number; kernel: number }> = {
  real: { direct: 273, vmalloc: 402, vmemmap: 468, cea: 508, espfix: 510, kernel: 511 },
  small: { direct: 1, vmalloc: 2, vmemmap: 3, cea: 4, espfix: 6, kernel: 7 },
};

/**
 * Physical memory: 16 MB in the real geometry; in the small one, 512 frames fill its direct-map
 * slot, room for two VMs of 5.2's sizes besides the kernel (asi-check 0.1 had 256, KernelConfig.layout 1).
 */
const PHYS_FRAMES: Record<Geometry['name'], number> = { real: 4096, small: 512 };
const LAYOUT_1_SMALL_FRAMES = 256;

/** THREAD_SIZE: 4 pages (THREAD_SIZE_ORDER 2), vmalloc'd with a guard page (VMAP_STACK). */
export const THREAD_PAGES = 4;
/**
 * sizeof(struct task_struct) on x86-64 5.2, an estimate: about 6.5 KiB with a distribution's config
 * (/proc/slabinfo's task_struct objsize, rounded to the cache's 64-byte alignment).
 */
export const TASK_STRUCT_SIZE = 0x1a40;
/** sizeof(struct page): the vmemmap holds one per frame. */
export const STRUCT_PAGE_SIZE = 64;
/** A CPU's GDT, TSS and IST/entry stack pages in cpu_entry_area. */
export const CEA_PAGES_PER_CPU = 3;
const KERNEL_BSS_PAGES = 4;

export function computeLayout(g: Geometry, legacy = false): Layout {
  const slot = levelSize(g, PGT_LEVEL_PGD);
  const pud = levelSize(g, PGT_LEVEL_PUD);
  const s = SLOTS[g.name];
  const startKernelMap = s.kernel * slot + (entriesPerTable(g) - 2) * pud;
  return {
    directMap: s.direct * slot,
    vmemmap: s.vmemmap * slot,
    vmallocStart: s.vmalloc * slot,
    vmallocEnd: (s.vmalloc + 1) * slot,
    ceaBase: s.cea * slot,
    ceaPerCpu: s.cea * slot + PAGE_SIZE,
    espfixBase: s.espfix * slot,
    startKernelMap,
    kernelImageSize: pud / 2,
    modulesStart: startKernelMap + pud / 2,
    modulesEnd: startKernelMap + pud,
    physFrames: legacy && g.name === 'small' ? LAYOUT_1_SMALL_FRAMES : PHYS_FRAMES[g.name],
  };
}

export function directMapVa(sys: System, frame: number): number {
  return sys.kernel.layout.directMap + frame * PAGE_SIZE;
}

// ---- kernel page-table writes -------------------------------------------------------------

/** page_to_virt's twin: the address of a frame's struct page in the vmemmap. */
export function structPageVa(sys: System, frame: number): number {
  return sys.kernel.layout.vmemmap + frame * STRUCT_PAGE_SIZE;
}

/** A page-table entry slot: the table page and the index in it. */
export interface EntrySlot {
  readonly table: number;
  readonly index: number;
}

/** A page-table page of the kernel's (pte_alloc_kernel and friends, split_large_page's), zeroed. */
export function allocKernelTable(sys: System, level: PgtLevel, boot: boolean): number | undefined {
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

export function kernelMap(sys: System, va: number, frame: number, flags: number, level: PgtLevel, boot: boolean): boolean {
  const slot = kernelSlot(sys, va, level, boot);
  if (!slot) return false;
  // The 2025 design's kernel maps nothing Global (src/model/asi25/runtime.ts asi25Boot).
  const mask = sys.asi25 ? ~_PAGE_GLOBAL : ~0;
  sys.tables.get(slot.table)![slot.index] = mkEntry(frame, (level === PGT_LEVEL_PTE ? flags : flags | _PAGE_PSE) & mask);
  tableChanged(sys.mem, slot.table);
  return true;
}

/** The kernel clears a 4K mapping (vunmap); its page-table pages stay, as in Linux. */
export function kernelUnmapPage(sys: System, va: number): void {
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
  const layout = computeLayout(g, config.kernel?.layout === 1);
  const mem = newMemory(layout.physFrames);
  const tables = new Map<number, Int32Array>();
  const sys: System = {
    config,
    options,
    g,
    mem,
    tables,
    kernel: {
      pgd: -1,
      layout,
      percpu: [],
      percpuDynamic: { start: 0, end: 0 },
      percpuObjects: new Map(),
      current: [],
      tasks: new Map(),
      vmAreas: new Map(),
      kmallocs: new Map(),
      modules: new Map(),
      caches: new Map(),
      kmemcgWork: [],
      vmapPurge: [],
      nextId: 1,
    },
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

  // sparse_init: the struct pages of a memory section, in one 2M block mapped by a PMD
  // (vmemmap_populate_hugepages). asi-check 0.1 had no vmemmap.
  if (!legacyMemory(sys)) {
    const memmap = allocFrames(mem, { kind: 'memmap', owner: KERNEL, name: 'vmemmap', pages: large, sensitive: false, contiguousAlign: large, boot: true })!;
    mapLargest(sys, layout.vmemmap, memmap.frames[0], large, PAGE_KERNEL, PGT_LEVEL_PMD);
  }

  // cpu_entry_area: the read-only IDT page, then each CPU's GDT/TSS/entry stack; and espfix.
  const cea = allocFrames(mem, { kind: 'cpu-entry-area', owner: KERNEL, name: 'cpu_entry_area', pages: 1 + CEA_PAGES_PER_CPU * config.cpus, sensitive: false, boot: true })!;
  cea.frames.forEach((f, i) => kernelMap(sys, layout.ceaBase + i * PAGE_SIZE, f, PAGE_KERNEL, PGT_LEVEL_PTE, true));
  const espfix = allocFrames(mem, { kind: 'cpu-entry-area', owner: KERNEL, name: 'espfix stack', pages: 1, sensitive: false, boot: true })!;
  kernelMap(sys, layout.espfixBase, espfix.frames[0], PAGE_KERNEL, PGT_LEVEL_PTE, true);

  const unit = percpuUnit(sys);
  Object.assign(sys.kernel, { percpuDynamic: unit.dynamic });
  for (let cpu = 0; cpu < config.cpus; cpu++) {
    const area = allocFrames(mem, { kind: 'percpu', owner: { kind: 'cpu', id: cpu }, name: `percpu area cpu${cpu}`, pages: unit.pages, sensitive: false, parts: unit.parts, contiguousAlign: 1, boot: true })!;
    (sys.kernel.percpu as number[]).push(area.id);
  }
  // One task per CPU (its idle/current task), created as any other task but at boot.
  for (let cpu = 0; cpu < config.cpus; cpu++) {
    const t = taskCreate(sys, { out: [] }, { boot: true });
    if (typeof t !== 'number' || t < 0) throw new Error('model bug: boot task allocation failed');
    sys.kernel.current.push(t);
  }
  sys.cpus.push(...bootCpus(sys));
  return sys;
}

// ---- tasks ---------------------------------------------------------------------------------------

export function nextId(sys: System): number {
  return sys.kernel.nextId++;
}

/**
 * fork_init's task_struct cache (SLAB_ACCOUNT): four to an order-3 slab; page-aligned objects with
 * taskStructOwnPages.
 */
function taskStructCache(sys: System): CacheDef {
  const size = sys.options.taskStructOwnPages ? roundUp(TASK_STRUCT_SIZE, PAGE_SIZE) : TASK_STRUCT_SIZE; // fixed: taskStructOwnPages
  return { name: 'task_struct', size, account: true };
}

/**
 * copy_process: task_struct from its kmem_cache, charged to the memcg the task forks in, then a
 * vmalloc'd stack. Returns the task id or -errno.
 */
export function taskCreate(sys: System, ctx: FlushCtx, how: { boot?: boolean; memcg?: number } = {}): number {
  const id = nextId(sys);
  const owner: Owner = { kind: 'task', id };
  const boot = how.boot ?? false;
  const memcg = how.memcg ?? 0;
  const struct = cacheAlloc(sys, taskStructCache(sys), { sensitive: true, name: `task_struct of task ${id}`, owner, kind: 'task-struct', boot, memcg });
  if (typeof struct === 'number') return struct;
  const stack = vmalloc(sys, THREAD_PAGES, true, `stack of task ${id}`, owner, 'task-stack', ctx, boot);
  if (typeof stack === 'number') {
    kfree(sys, struct.id);
    return stack;
  }
  sys.kernel.tasks.set(id, { id, stack: stack.id, struct: struct.id, structVa: struct.va, memcg });
  return id;
}

export function taskStackVa(sys: System, t: Task): number {
  return sys.kernel.vmAreas.get(t.stack)!.va;
}

/** do_exit + free_task: a running task cannot exit from under its CPU. */
export function taskExit(sys: System, id: number, ctx: FlushCtx): number {
  const t = sys.kernel.tasks.get(id);
  if (!t) return ESRCH;
  if (sys.kernel.current.includes(id)) return EBUSY;
  vfree(sys, t.stack, ctx);
  kfree(sys, t.struct);
  sys.kernel.tasks.delete(id);
  return 0;
}
