// The whole modelled machine as one plain value: physical memory, page tables, the kernel's
// address space and objects, the ASIs, and ghost state (verification-only history that the
// invariants read; the modelled kernel never does).

import { type Geometry, GEOMETRIES } from './mm/geometry.ts';
import { type Memory, cloneMemory } from './mm/memory.ts';
import { type Tables, cloneTables } from './mm/pagetable.ts';
import { type DesignOptions, type ProfileName, PROFILES } from './options.ts';
import { type MutantName } from './mutants.ts';
import type { PgtLevel } from './mm/geometry.ts';
import { type Cpu, cloneCpu } from './x86/cpu.ts';
import { type ExecContext, processContext } from './x86/context.ts';
import { type KvmState, cloneKvm } from './kvm/vm.ts';

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
   * Slab caches share pages between objects (default off): kmalloc-64 ... kmalloc-4096 and the
   * task_struct and kvm_vcpu kmem_caches put several objects on a slab, so an object's page holds
   * its neighbours. Off, every kmalloc gets whole pages (the layout the saved counterexamples use).
   */
  readonly slab?: boolean;
}

export const API_CALLERS = ['user-task', 'kernel-thread'] as const;

export function thpEnabled(sys: System): boolean {
  return sys.config.kernel?.thp ?? true;
}

export function slabEnabled(sys: System): boolean {
  return sys.config.kernel?.slab ?? false;
}

export const DEFAULT_CONFIG: Config = { geometry: 'small', cpus: 2, profile: 'fixed' };

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
   * Who made the range: asi_init_mapping ('core'), asi_enter on a CPU (its number), or a caller.
   * The RFC cannot tell them apart; with protectInternalRanges asi_unmap only finds callers' ranges.
   */
  madeBy?: 'core' | number;
  /** For a caller's range: which caller of the ASI API (System.caller when it was mapped). */
  readonly caller: number;
}

/** One page the ASI allocated for its page table: an entry of the backend_pages XArray (patch 04). */
export interface BackendPage {
  readonly frame: number;
  readonly level: PgtLevel;
}

/** struct asi. */
export interface Asi {
  readonly id: number;
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
}

export interface KernelObject {
  readonly id: number;
  readonly va: number;
  readonly size: number;
  readonly alloc: number;
  /** On a slab page (Config.kernel.slab): the object's part of the slab's allocation. */
  readonly part?: number;
}

export interface Layout {
  readonly directMap: number;
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
  /** Percpu area allocation of each CPU. */
  readonly percpu: readonly number[];
  /** The task each CPU runs. */
  readonly current: number[];
  readonly tasks: Map<number, Task>;
  readonly vmAreas: Map<number, VmArea>;
  readonly kmallocs: Map<number, KernelObject>;
  readonly modules: Map<number, VmArea>;
  nextId: number;
}

export interface GhostEvent {
  readonly invariant: 'PT-OWN' | 'NO-WARN' | 'KERNEL-RULES' | 'CR3-RESTORED' | 'SESSION' | 'ENTRY-MAPPED' | 'PROGRESS' | 'KVM-ENTRY' | 'KVM-EXIT-CR3' | 'KVM-USER';
  readonly message: string;
}

/** What one ASI API call did, for CALLER-CONTRACT: what it was asked to map, and the ranges it removed. */
export interface ApiCall {
  readonly call: string;
  readonly caller: number;
  readonly asi: number;
  readonly ret: number;
  readonly asked: readonly { readonly ptr: number; readonly size: number }[];
  /** asi_remap's old pointer, which the call unmaps whatever it returns. */
  readonly released: number | null;
  readonly removed: readonly AsiRange[];
}

export interface Ghost {
  /** Events of the current step that an invariant must report (an ASI writing a kernel table...). */
  events: GhostEvent[];
  /** The ASI API call of the current step, if it made one. */
  apiCall?: ApiCall;
  /** Entries cleared in an ASI page table during the current step. */
  cleared: { asi: number; va: number; size: number }[];
  /** Coverage of the current step: points "path@point" the paths passed, and events "path@point:kind" delivered or held off there. */
  visited: string[];
  landed: string[];
  heldOff: string[];
}

export function newGhost(): Ghost {
  return { events: [], cleared: [], visited: [], landed: [], heldOff: [] };
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
   * Who calls the ASI API in the current step: kernel subsystems sharing one ASI (KVM's setup, its
   * memslot remaps, a driver) are callers 0, 1, ...; the RFC's API cannot tell them apart.
   */
  caller: number;
  ghost: Ghost;
  /** KVM's VMs and vCPUs, from the first KVM_CREATE_VM on. */
  kvm?: KvmState;
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
      tasks: new Map(k.tasks),
      vmAreas: new Map(k.vmAreas),
      kmallocs: new Map(k.kmallocs),
      modules: new Map(k.modules),
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
    exec: processContext(),
    caller: 0,
    ghost: { ...s.ghost, events: [...s.ghost.events], cleared: [...s.ghost.cleared], visited: [...s.ghost.visited], landed: [...s.ghost.landed], heldOff: [...s.ghost.heldOff] },
  };
}
