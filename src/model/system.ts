// The whole modelled machine as one plain value: physical memory, page tables, the kernel's
// address space and objects, the ASIs, and ghost state (verification-only history that the
// invariants read; the modelled kernel never does).

import { type Geometry, GEOMETRIES } from './mm/geometry.ts';
import { type AllocKind, type Memory, type Owner, cloneMemory } from './mm/memory.ts';
import { type Tables, cloneTables } from './mm/pagetable.ts';
import { type Design, type DesignOptions, type ProfileName, PROFILES } from './options.ts';
import { type MutantName } from './mutants.ts';
import type { PgtLevel } from './mm/geometry.ts';
import { type Cpu, cloneCpu } from './x86/cpu.ts';
import { type ExecContext, processContext } from './x86/context.ts';
import { type KvmState, cloneKvm } from './kvm/vm.ts';
import type { Racing, Spinning } from './x86/smp.ts';
import type { Exec } from './asi/session.ts';
import { type Asi25State, cloneAsi25 } from './asi25/runtime.ts';
import type { Log } from './trace.ts';

export interface Config {
  readonly geometry: Geometry['name'];
  readonly cpus: number;
  readonly profile: ProfileName;
  /** Overrides of the profile's design options. */
  readonly options?: Partial<DesignOptions>;
  readonly mutant?: MutantName;
  /** The kernel being modelled; absent fields take the defaults of KernelConfig. */
  readonly kernel?: KernelConfig;
}

/** Build configuration of the modelled kernel, and who calls the ASI API in process context. */
export interface KernelConfig {
  /** CONFIG_TRANSPARENT_HUGEPAGE (default on): pmd_trans_huge()/pud_trans_huge() see large pages. */
  readonly thp?: boolean;
  /**
   * What `current` is for the ops not tied to a CPU (asi_create, asi_map, ...): a user task
   * (default, e.g. the VMM creating a vCPU) or a kernel thread with current->mm == NULL (an
   * initcall, a kworker). Per-CPU ops run as the CPU's task; every task is a user task.
   */
  readonly apiCaller?: 'user-task' | 'kernel-thread';
  /**
   * SLUB (default on): kmalloc-8 ... kmalloc-8k shared by every caller, and the task_struct,
   * kvm_vcpu and x86_fpu kmem_caches, put several objects on a slab, so an object's page holds
   * its neighbours. Off, every object gets pages of its own: a layout no Linux has, which keeps
   * slab neighbours out of a search aimed at something else.
   */
  readonly slab?: boolean;
  /**
   * memcg kmem accounting (default on): GFP_KERNEL_ACCOUNT allocations and SLAB_ACCOUNT caches of
   * a task outside the root memcg use that memcg's copy of the cache. Off is cgroup.memory=nokmem.
   */
  readonly kmemcg?: boolean;
  /** kvm_intel.enable_pml (default on): each vCPU has a PML page, and patch 24 maps its struct page. */
  readonly pml?: boolean;
  /**
   * 1: the memory of asi-check 0.1, on which format-1 counterexamples were saved, kept so that they
   * replay exactly: kmalloc on pages of its own unless `slab` (then one kind of object to a slab,
   * kmalloc-64 ... kmalloc-4k, lowest free slot first, an empty slab freed at once), no memcg, no
   * struct asi or range records in memory, vmalloc'd memslots, vfree flushing at once, kvm->srcu's
   * percpu data as a static variable, no vmemmap, no PML page, vCPU pages from kmalloc. Never
   * chosen for a new run: the loader sets it for a format-1 file.
   */
  readonly layout?: 1;
}

export const API_CALLERS = ['user-task', 'kernel-thread'] as const;

export function thpEnabled(sys: System): boolean {
  return sys.config.kernel?.thp ?? true;
}

/** The memory of asi-check 0.1 (KernelConfig.layout 1): each place that differs tests this. */
export function legacyMemory(sys: Pick<System, 'config'>): boolean {
  return sys.config.kernel?.layout === 1;
}

export function slabEnabled(sys: Pick<System, 'config'>): boolean {
  return sys.config.kernel?.slab ?? !legacyMemory(sys);
}

export function kmemcgEnabled(sys: System): boolean {
  return !legacyMemory(sys) && (sys.config.kernel?.kmemcg ?? true);
}

export function pmlEnabled(sys: System): boolean {
  return !legacyMemory(sys) && (sys.config.kernel?.pml ?? true);
}

export const DEFAULT_CONFIG: Config = { geometry: 'small', cpus: 2, profile: 'fixed' };

/** The design family a configuration's profile runs (the 2019 RFC, or the 2025 series). */
export function designOf(c: Pick<Config, 'profile'>): Design {
  return PROFILES[c.profile].design;
}

export function resolveOptions(c: Config): DesignOptions {
  return { ...PROFILES[c.profile].options, ...(c.options ?? {}) };
}

/** A VA range tracked by an ASI: struct asi_range_mapping (RFC v2 patches 10, 14). */
export interface AsiRange {
  readonly ptr: number;
  readonly size: number;
  readonly level: PgtLevel;
  /** The RFC's overlap count (patch 14). */
  overlap: number;
  /** refcount-entries policy: the entries this range holds a reference to ("level:va"). */
  entries: string[];
  /**
   * Ghost: what the range's bytes reached through the kernel page table when it was mapped, as
   * unitKey()s (frame, allocation, part): the objects its caller asked for, judged by ISOLATION
   * and REFINE however the memory behind the range changes later.
   */
  readonly ghostReached: readonly string[];
  /** Ghost: the pages of the range the kernel mapped when it was mapped. */
  readonly ghostPages: readonly number[];
  /**
   * Ghost: Memory.nextAllocId when the range was mapped. Allocation and part ids grow with time, so
   * an object with an id below it was already in memory then (ISOLATION's wording: a neighbour on
   * the page since boot, or one put there since).
   */
  readonly ghostStamp: number;
  /**
   * Who made the range: asi_init_mapping ('core'), asi_enter on a CPU (its number), or a caller.
   * The RFC cannot tell them apart; with protectInternalRanges asi_unmap only finds callers' ranges.
   */
  madeBy?: 'core' | number;
  /** For a caller's range: which caller of the ASI API (System.caller when it was mapped). */
  readonly caller: number;
  /** The kmalloc id of its struct asi_range_mapping (-1: not in memory, KernelConfig.layout 1). */
  readonly record: number;
}

/** One page the ASI allocated for its page table: an entry of the backend_pages XArray (patch 04). */
export interface BackendPage {
  readonly frame: number;
  readonly level: PgtLevel;
}

/** struct asi. */
export interface Asi {
  readonly id: number;
  /** The kmalloc id of the struct asi itself (-1: not in memory, KernelConfig.layout 1). */
  readonly struct: number;
  /** asi->pgd: freed by asi_destroy itself, not a backend page. */
  readonly pgd: number;
  readonly mappingFlags: number;
  readonly backend: BackendPage[];
  /**
   * asi->mapping_list, head first (list_add inserts at the head). Replaced, never changed in place,
   * when a range is added or removed: a checker tells by identity whether the list moved.
   */
  ranges: readonly AsiRange[];
  /** refcount-entries policy: references per entry "level:va". */
  readonly entryRefs: Map<string, number>;
  /** fixed: asiUsersRefcount. asi->users: references asi_enter took that asi_exit has not dropped yet. */
  users: number;
  /** fixed: asiEnterExclusive. The CPU that claimed the ASI in asi_enter, until the end of its asi_exit. */
  owner: number | null;
}

export interface VmArea {
  readonly id: number;
  readonly va: number;
  readonly pages: number;
  /** VA pages reserved, guard page included. */
  readonly span: number;
  readonly alloc: number;
}

export interface Task {
  readonly id: number;
  readonly stack: number;
  readonly struct: number;
  readonly structVa: number;
  /** The memory cgroup the task runs in (0: the root); its accounted allocations charge it. */
  readonly memcg: number;
}

/** An object in the direct map: kmalloc'd, from a kmem_cache, or pages of its own (alloc_pages, kmalloc_large). */
export interface KernelObject {
  readonly id: number;
  readonly va: number;
  readonly size: number;
  readonly alloc: number;
  /** What it is, whoever's slab it sits on: a generic kfree frees only 'kmalloc' objects. */
  readonly kind: AllocKind;
  /** On a slab: the object's part of the slab's allocation (Part.id). */
  readonly part?: number;
}

/**
 * A SLUB kmem_cache with its slabs: a root cache, or a memcg's copy of one. `key` is what
 * KernelState.caches files it under; `name` is what the kernel calls it (/proc/slabinfo).
 */
export interface KmemCache {
  readonly name: string;
  /** s->size: bytes per object slot, alignment included. */
  readonly size: number;
  readonly order: number;
  /** Each slab's allocation id, oldest first, with its freelist: free slot indices, the next one handed out last. */
  readonly slabs: Map<number, number[]>;
  /** c->page: the slab objects come from first (-1: none yet). */
  active: number;
  /** The partial list: slabs with free slots other than the active one, the one to take next last. */
  readonly partial: number[];
}

/** An alloc_percpu() object: one copy at `offset` in every CPU's unit of the first chunk. */
export interface PercpuObject {
  readonly id: number;
  readonly offset: number;
  readonly size: number;
  readonly name: string;
  readonly owner: Owner;
  readonly sensitive: boolean;
}

export interface Layout {
  readonly directMap: number;
  /** VMEMMAP_START: struct page of frame f at vmemmap + f * STRUCT_PAGE_SIZE. */
  readonly vmemmap: number;
  readonly vmallocStart: number;
  readonly vmallocEnd: number;
  readonly ceaBase: number;
  /** CPU_ENTRY_AREA_PER_CPU: one page above the base (the read-only IDT is first). */
  readonly ceaPerCpu: number;
  readonly espfixBase: number;
  readonly startKernelMap: number;
  readonly kernelImageSize: number;
  readonly modulesStart: number;
  readonly modulesEnd: number;
  readonly physFrames: number;
}

export interface KernelState {
  readonly pgd: number;
  readonly layout: Layout;
  /** Percpu area allocation of each CPU: its unit of the first chunk, static variables then the dynamic area. */
  readonly percpu: readonly number[];
  /** Byte offsets of the first chunk's dynamic area in a unit (start = end without one). */
  readonly percpuDynamic: { readonly start: number; readonly end: number };
  readonly percpuObjects: Map<number, PercpuObject>;
  /** The task each CPU runs. */
  readonly current: number[];
  readonly tasks: Map<number, Task>;
  readonly vmAreas: Map<number, VmArea>;
  readonly kmallocs: Map<number, KernelObject>;
  readonly modules: Map<number, VmArea>;
  /** SLUB's kmem_caches, created on first use. */
  readonly caches: Map<string, KmemCache>;
  /** memcg_kmem_cache_create_func work queued and not yet run: the memcg copies (cache keys) to create. */
  readonly kmemcgWork: string[];
  /** vmap areas vfree'd lazily: their PTEs are gone and their pages freed, their VA reserved and TLB entries unflushed until the purge. */
  readonly vmapPurge: VmArea[];
  nextId: number;
}

export interface GhostEvent {
  readonly invariant: 'PT-OWN' | 'NO-WARN' | 'KERNEL-RULES' | 'CR3-RESTORED' | 'SESSION' | 'ENTRY-MAPPED' | 'PROGRESS' | 'KVM-ENTRY' | 'KVM-EXIT-CR3' | 'KVM-USER' | 'NO-UAF' | 'ASI-KVM';
  readonly message: string;
}

/**
 * What one ASI API call did, for CALLER-CONTRACT: what it was asked to map, the ranges it removed,
 * and the ASI's range list when it returned (lists are replaced, never changed, so this is a
 * reference, not a copy).
 */
export interface ApiCall {
  readonly call: string;
  readonly caller: number;
  readonly asi: number;
  readonly ret: number;
  readonly asked: readonly { readonly ptr: number; readonly size: number }[];
  /** asi_remap's old pointer, which the call unmaps whatever it returns. */
  readonly released: number | null;
  readonly removed: readonly AsiRange[];
  readonly rangesAfter: readonly AsiRange[];
}

export interface Ghost {
  /** Events of the current step that an invariant must report (an ASI writing a kernel table...). */
  events: GhostEvent[];
  /** The ASI API calls of the current step: an API op's, or those KVM makes on a vCPU's ASI. */
  apiCalls: ApiCall[];
  /** Entries cleared in an ASI page table during the current step. */
  cleared: { asi: number; va: number; size: number }[];
  /** Coverage of the current step: points "path@point" the paths passed, and events "path@point:kind" delivered or held off there. */
  visited: string[];
  landed: string[];
  heldOff: string[];
  /** Kernel objects (kmalloc and vmalloc ids) freed during the current step, and where: a CPU, or -1 for process context. */
  freedOn: Map<number, number>;
  /** Ranges asi_unmap removed during the current step, the context it ran in and how deep in handlers there. */
  unmappedOn: Map<AsiRange, { readonly exec: ExecContext; readonly depth: number }>;
  /**
   * Direct-map pages a set_direct_map_*_noflush() changed whose flush its caller still owes
   * (vm_reset_perms, between its invalid_noflush and its flush): TLB-COHERENT allows their stale entries.
   */
  noflushPending: Set<number>;
  /** The current step's trace (what `step` returns): where code called with no log of its own (slab's page allocations) writes. */
  log: Log;
}

export function newGhost(): Ghost {
  return { events: [], apiCalls: [], cleared: [], visited: [], landed: [], heldOff: [], freedOn: new Map(), unmappedOn: new Map(), noflushPending: new Set(), log: [] };
}

export interface System {
  readonly config: Config;
  readonly options: DesignOptions;
  readonly g: Geometry;
  readonly mem: Memory;
  readonly tables: Tables;
  readonly kernel: KernelState;
  readonly asis: Map<number, Asi>;
  nextAsiId: number;
  readonly cpus: Cpu[];
  /** Where the code of the current step runs (the op's CPU, or a process context). */
  exec: ExecContext;
  /**
   * The path running on a CPU while the current step's code runs there: the ASI code's accesses to
   * its own data (struct asi, range records, its page-table pages) go through that CPU's CR3 and
   * TLB, so an isolated CPU faults where the kernel would. Undefined in process context.
   */
  onCpu?: Exec;
  /**
   * Who calls the ASI API in the current step: kernel subsystems sharing one ASI (KVM's setup, its
   * memslot remaps, a driver) are callers 0, 1, ...; the RFC's API cannot tell them apart. KVM's
   * setup (patch 24) is caller 0 of a vCPU's ASI and its remaps (patch 26) caller KVM_REMAP_CALLER.
   */
  caller: number;
  ghost: Ghost;
  /** KVM's VMs and vCPUs, from the first KVM_CREATE_VM on. */
  kvm?: KvmState;
  /** While another CPU's op runs inside an op in flight (Op.race): that op's CPU. */
  racing?: Racing;
  /** A racing op waiting for the CPU in flight, while that CPU's op goes on (src/model/x86/smp.ts). */
  spinning?: Spinning;
  /** The 2025 design's runtime (src/model/asi25), on a system booted with it: its entry hooks replace RFC v2's. */
  asi25?: Asi25State;
}

export function geometryOf(c: Config): Geometry {
  return GEOMETRIES[c.geometry];
}

export function mutant(sys: System, name: MutantName): boolean {
  return sys.config.mutant === name;
}

export function cloneSystem(s: System): System {
  const k = s.kernel;
  return {
    ...s,
    mem: cloneMemory(s.mem),
    tables: cloneTables(s.tables),
    kernel: {
      ...k,
      current: [...k.current],
      percpuObjects: new Map(k.percpuObjects),
      tasks: new Map(k.tasks),
      vmAreas: new Map(k.vmAreas),
      kmallocs: new Map(k.kmallocs),
      modules: new Map(k.modules),
      caches: new Map([...k.caches].map(([key, c]) => [key, { ...c, slabs: new Map([...c.slabs].map(([id, free]) => [id, [...free]])), partial: [...c.partial] }])),
      kmemcgWork: [...k.kmemcgWork],
      vmapPurge: [...k.vmapPurge],
    },
    asis: new Map(
      [...s.asis].map(([id, a]) => [
        id,
        {
          ...a,
          backend: [...a.backend],
          ranges: a.ranges.map((r) => ({ ...r, entries: [...r.entries] })),
          entryRefs: new Map(a.entryRefs),
        },
      ]),
    ),
    cpus: s.cpus.map(cloneCpu),
    ...(s.kvm ? { kvm: cloneKvm(s.kvm) } : {}),
    ...(s.asi25 ? { asi25: cloneAsi25(s.asi25) } : {}),
    exec: processContext(),
    caller: 0,
    onCpu: undefined,
    racing: undefined,
    spinning: undefined,
    ghost: { ...s.ghost, events: [...s.ghost.events], apiCalls: [...s.ghost.apiCalls], cleared: [...s.ghost.cleared], visited: [...s.ghost.visited], landed: [...s.ghost.landed], heldOff: [...s.ghost.heldOff], freedOn: new Map(s.ghost.freedOn), unmappedOn: new Map(s.ghost.unmappedOn) },
  };
}
