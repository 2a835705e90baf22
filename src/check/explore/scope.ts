// The scope of an exhaustive search: a finite alphabet of ops, resolved against each state. Ops name
// objects (ASIs, vmalloc areas, tasks, VMs) whose ids and addresses depend on the state, so a scope
// lists op templates with symbolic targets ("the newest vmalloc area", "cpu0's cpu_asi_session")
// and `alphabet(sys, scope)` turns them into the concrete ops offered at that state. The alphabet
// is a function of the encoded state only (ids, addresses, live objects, sessions), so two states
// with one encoding are offered the same ops: deduplicating them is exact.

import { ASI_MAP_CURRENT_TASK } from '../../model/asi/asi.ts';
import { PAGE_SIZE, PGT_LEVEL_PTE } from '../../model/mm/geometry.ts';
import { taskStackVa } from '../../model/mm/kernel.ts';
import { type PercpuVar, perCpuPtr, percpuVar } from '../../model/mm/percpu.ts';
import type { Op } from '../../model/ops.ts';
import type { System } from '../../model/system.ts';
import { ASI_SESSION_STATE_INACTIVE } from '../../model/x86/cpu.ts';
import { domainHandleOn, callerDomainHandles } from '../../model/asi25/ops.ts';
import { INTR_KINDS, type Intr, type IntrKind } from '../../model/x86/entry.ts';
import { EXIT_REASONS, type ExitReason } from '../../model/kvm/run.ts';

/**
 * A symbolic address: `vmalloc` the newest vmalloc area, `kmalloc` the newest kmalloc object,
 * `stack` the stack of the newest task no CPU runs, `text` the kernel text, `cea` the cpu entry
 * area (its read-only IDT), `hole` an address nothing maps (the last page of vmalloc space),
 * `percpu:<var>` that variable of cpu0, `task-struct:<n>` the task_struct of the task CPU n runs,
 * or a number (a fixed address).
 */
export type Target = 'vmalloc' | 'kmalloc' | 'stack' | 'text' | 'cea' | 'hole' | `percpu:${PercpuVar}` | `task-struct:${number}` | number;

/** An event of a scope: an Intr whose `va` is a Target. */
export interface ScopeIntr {
  readonly at: number;
  readonly kind: IntrKind;
  readonly touch?: Target;
  readonly nested?: readonly ScopeIntr[];
}

export interface Scope {
  readonly name: string;
  readonly about: string;
  /** asi_create with each of these flags, offered while fewer than maxAsis ASIs exist. */
  readonly createFlags: readonly number[];
  readonly maxAsis: number;
  /** asi_destroy of each live ASI. */
  readonly destroy: boolean;
  /** asi_map of each live ASI to each target that exists, `pages` pages (PTE level). */
  readonly map: readonly { readonly target: Target; readonly pages: number }[];
  /** asi_unmap of each range a caller mapped (not asi_init_mapping's or asi_enter's), by each of these callers. */
  readonly unmapCallers: readonly number[];
  /** asi_enter of each live ASI on each CPU not in a session, once per event list. */
  readonly enterEvents: readonly (readonly ScopeIntr[])[];
  /** asi_exit on each CPU in a session, of its own ASI, once per event list. */
  readonly exitEvents: readonly (readonly ScopeIntr[])[];
  /** A standalone event on each CPU (`at` is ignored: it arrives between ops). */
  readonly interrupts: readonly ScopeIntr[];
  /** A read of each target on each CPU. */
  readonly reads: readonly Target[];
  /** The 2025 design: flush_tlb_mm on each CPU, once per event list. */
  readonly tlbFlushEvents: readonly (readonly ScopeIntr[])[];
  /** vmalloc of `pages` pages (sensitive) while fewer than maxVmallocs areas of the scope's own exist; vfree of the newest. */
  readonly vmalloc: { readonly pages: number; readonly max: number } | null;
  /** task_create while fewer than `max` tasks beyond the boot tasks exist; task_exit of the newest idle task; schedule to it on each CPU. */
  readonly tasks: { readonly max: number; readonly exit: boolean; readonly schedule: boolean } | null;
  /** fail_alloc with each of these counts. */
  readonly failAlloc: readonly number[];
  /** KVM: KVM_CREATE_VM while fewer than maxVms exist, KVM_CREATE_VCPU and close of each VM, KVM_RUN of each vCPU on cpu0 with each exit list. */
  readonly kvm: { readonly maxVms: number; readonly runs: readonly (readonly ExitReason[])[]; readonly runEvents: readonly (readonly ScopeIntr[])[] } | null;
  /**
   * Two CPUs in kernel code at once: KVM_RUN of each vCPU on cpu0 with each of `runs`, raced by each
   * KVM ioctl on its VM from cpu1 (a memslot added and deleted, a bus device registered and
   * unregistered, close) starting at each of its first `points` points. Each race is one preemption
   * (a switch to another CPU inside an op): a path takes at most `preemptions` of them.
   */
  readonly races: { readonly runs: readonly (readonly ExitReason[])[]; readonly points: number } | null;
  /** The preemption bound (CHESS's): racing transitions a path may take (0: ops one at a time). */
  readonly preemptions: number;
}

/** asi_enter passes 9 points in `fixed` (10 with the return): events at 0..10 land at each. */
const ENTER_POINTS = 11;
const EXIT_POINTS = 7;
/** The 2025 critical section passes 4 points (asi_enter's 3, the guest), 5 with the return; asi_exit 1, 2 with it. */
const CRITICAL_SECTION_POINTS = 6;
const ASI25_EXIT_POINTS = 3;
/** flush_tlb_mm passes asi_exit's point, the CR3 read and write, 4 with the return. */
const TLB_FLUSH_POINTS = 4;

const each = (n: number, kinds: readonly IntrKind[], touch?: Target): ScopeIntr[][] =>
  kinds.flatMap((kind) => Array.from({ length: n }, (_, at) => [{ at, kind, ...(touch === undefined ? {} : { touch }) }]));

/**
 * The default scope, `small`: one ASI, created plain or with ASI_MAP_CURRENT_TASK; one vmalloc'd
 * page it can map, unmap, free; one extra task to schedule to and exit; asi_enter on either CPU
 * with no event or one NMI at each of its micro-steps, asi_exit with no event or one IRQ at each
 * of its micro-steps; a standalone IRQ touching the vmalloc'd page and a preemption (switch) on
 * either CPU; a read of that page from either CPU. Chosen so that depth 6 on 2 CPUs fits in
 * minutes (see README, "Exhaustive search").
 */
export const SMALL_SCOPE: Scope = {
  name: 'small',
  about: 'one ASI (plain or CURRENT_TASK), one vmalloc page, one extra task; enter with no event or an NMI at each micro-step, exit with no event or an IRQ at each; IRQ, switch and read on either CPU',
  createFlags: [0, ASI_MAP_CURRENT_TASK],
  maxAsis: 1,
  destroy: true,
  map: [{ target: 'vmalloc', pages: 1 }],
  unmapCallers: [0],
  enterEvents: [[], ...each(ENTER_POINTS, ['nmi'])],
  exitEvents: [[], ...each(EXIT_POINTS, ['irq'])],
  interrupts: [{ at: 0, kind: 'irq', touch: 'vmalloc' }, { at: 0, kind: 'switch' }],
  reads: ['vmalloc'],
  tlbFlushEvents: [],
  vmalloc: { pages: 1, max: 1 },
  tasks: { max: 1, exit: true, schedule: true },
  failAlloc: [],
  kvm: null,
  races: null,
  preemptions: 0,
};

/**
 * `wide`: `small` with every event kind at every micro-step of enter and exit (and NMIs touching
 * another task's data), a second caller's unmaps, fault injection, two ASIs, and the kernel's own
 * objects as targets (percpu data, text, the cpu entry area, another CPU's task, an unmapped
 * hole): reaches more findings, at a lower depth for the same time.
 */
export const WIDE_SCOPE: Scope = {
  ...SMALL_SCOPE,
  name: 'wide',
  about: 'small, plus every event kind at every micro-step of enter and exit, two ASIs, a second caller, fault injection, kernel objects and an unmapped hole as targets',
  maxAsis: 2,
  map: [{ target: 'vmalloc', pages: 1 }, { target: 'percpu:cpu_asi_session', pages: 1 }, { target: 'text', pages: 1 }, { target: 'cea', pages: 1 }],
  unmapCallers: [0, 1],
  enterEvents: [[], ...each(ENTER_POINTS, INTR_KINDS), ...each(ENTER_POINTS, ['nmi'], 'task-struct:1')],
  exitEvents: [[], ...each(EXIT_POINTS, INTR_KINDS)],
  interrupts: [...INTR_KINDS.map((kind) => ({ at: 0, kind })), { at: 0, kind: 'irq', touch: 'vmalloc' }, { at: 0, kind: 'exception', touch: 'task-struct:1' }],
  reads: ['vmalloc', 'text', 'stack', 'hole', 'task-struct:1'],
  failAlloc: [0, 1, 2, 3],
};

/** `kvm`: VMs, vCPUs and KVM_RUN with an NMI at each of its first micro-steps; no generic ASI ops. */
export const KVM_SCOPE: Scope = {
  name: 'kvm',
  about: 'two VMs, their vCPUs, close, and KVM_RUN on cpu0 with one exit of each reason, or two, with no event or an NMI at each of its first 24 micro-steps',
  createFlags: [],
  maxAsis: 0,
  destroy: false,
  map: [],
  unmapCallers: [],
  enterEvents: [],
  exitEvents: [],
  interrupts: [],
  reads: [],
  tlbFlushEvents: [],
  vmalloc: null,
  tasks: null,
  failAlloc: [],
  kvm: { maxVms: 2, runs: [...EXIT_REASONS.map((r) => [r]), ['cpuid', 'io']], runEvents: [[], ...each(24, ['nmi'])] },
  // Two exits: the second vcpu_isolation_enter runs after the first exit, inside the session.
  races: { runs: [['cpuid', 'io']], points: 40 },
  preemptions: 0,
};

/**
 * `asi25`, the 2025 design's default: one KVM-class domain, its critical section on either CPU with
 * no event or an NMI or IRQ at each of its points, asi_exit with no event or an NMI at each; one
 * sensitive vmalloc'd page, one extra task (whose stack is nonsensitive: the page allocator's reuse
 * of freed frames meets both); an IRQ touching the vmalloc'd page, a switch and a read of it or of
 * the task's stack on either CPU; one allocation failure; one VM with a vCPU, KVM_RUN on cpu0 with
 * one CPUID exit and no event or an NMI at each of its first points (patch 21's enter, HOST_CR3,
 * VM-exit and relax among them).
 */
export const ASI25_SCOPE: Scope = {
  ...SMALL_SCOPE,
  name: 'asi25',
  about: "the 2025 design: one domain, its critical section with no event or an NMI or IRQ at each point, asi_exit with no event or an NMI at each, one sensitive vmalloc page, one extra task; IRQ, switch and reads on either CPU; flush_tlb_mm with no event or an NMI touching the page at each point; a failed allocation; one VM and vCPU, KVM_RUN on cpu0 with a CPUID exit and no event or an NMI at each of its first 12 points",
  createFlags: [0],
  map: [],
  unmapCallers: [],
  enterEvents: [[], ...each(CRITICAL_SECTION_POINTS, ['nmi', 'irq'])],
  exitEvents: [[], ...each(ASI25_EXIT_POINTS, ['nmi'])],
  reads: ['vmalloc', 'stack'],
  tlbFlushEvents: [[], ...each(TLB_FLUSH_POINTS, ['nmi'], 'vmalloc')],
  failAlloc: [0],
  kvm: { maxVms: 1, runs: [['cpuid']], runEvents: [[], ...each(12, ['nmi'])] },
};

export const SCOPES: Readonly<Record<string, Scope>> = { small: SMALL_SCOPE, wide: WIDE_SCOPE, kvm: KVM_SCOPE, asi25: ASI25_SCOPE };

function newest<T extends { readonly id: number }>(xs: Iterable<T>, keep: (x: T) => boolean = () => true): T | undefined {
  let best: T | undefined;
  for (const x of xs) if (keep(x) && (!best || x.id > best.id)) best = x;
  return best;
}

/** Tasks beyond those boot made: boot gives each CPU one, and they are the lowest ids. */
function extraTasks(sys: System): number[] {
  return [...sys.kernel.tasks.keys()].slice(sys.config.cpus);
}

function idleTask(sys: System): number | undefined {
  return extraTasks(sys).filter((t) => !sys.kernel.current.includes(t)).at(-1);
}

/** Areas this scope's vmalloc made: vmalloc-kind allocations that are no task's stack. */
function vmallocAreas(sys: System) {
  const stacks = new Set([...sys.kernel.tasks.values()].map((t) => t.stack));
  return [...sys.kernel.vmAreas.values()].filter((v) => !stacks.has(v.id) && sys.mem.allocs.get(v.alloc)?.kind === 'vmalloc');
}

export function resolveTarget(sys: System, t: Target): number | undefined {
  if (typeof t === 'number') return t;
  if (t === 'vmalloc') return newest(vmallocAreas(sys))?.va;
  if (t === 'kmalloc') return newest(sys.kernel.kmallocs.values(), (o) => o.kind === 'kmalloc')?.va;
  if (t === 'text') return sys.kernel.layout.startKernelMap;
  if (t === 'cea') return sys.kernel.layout.ceaBase;
  if (t === 'hole') return sys.kernel.layout.vmallocEnd - PAGE_SIZE;
  if (t.startsWith('task-struct:')) {
    const cpu = Number(t.slice('task-struct:'.length));
    return cpu < sys.cpus.length ? sys.kernel.tasks.get(sys.kernel.current[cpu])?.structVa : undefined;
  }
  if (t === 'stack') {
    const id = idleTask(sys);
    return id === undefined ? undefined : taskStackVa(sys, sys.kernel.tasks.get(id)!);
  }
  const v = t.slice('percpu:'.length) as PercpuVar;
  return percpuVar(sys, v) ? perCpuPtr(sys, v, 0) : undefined;
}

/** The events of a list, or undefined when one touches a target that does not exist. */
function resolveEvents(sys: System, events: readonly ScopeIntr[]): Intr[] | undefined {
  const out: Intr[] = [];
  for (const e of events) {
    const va = e.touch === undefined ? undefined : resolveTarget(sys, e.touch);
    if (e.touch !== undefined && va === undefined) return undefined;
    const nested = e.nested ? resolveEvents(sys, e.nested) : undefined;
    if (e.nested && !nested) return undefined;
    out.push({ at: e.at, kind: e.kind, ...(va === undefined ? {} : { va }), ...(nested ? { nested } : {}) });
  }
  return out;
}

/** What another CPU does to a running vCPU's VM: the ioctls that replace what vcpu_isolation_enter reads, and close. */
function kvmRacers(vm: number): Op[] {
  return [
    { op: 'kvm_set_memory_region', vm, slot: 1, pages: 1 },
    { op: 'kvm_set_memory_region', vm, slot: 1, pages: 0 },
    { op: 'kvm_io_bus', vm, bus: 0, register: true },
    { op: 'kvm_io_bus', vm, bus: 0, register: false },
    { op: 'kvm_destroy_vm', vm },
  ];
}

/** Whether an op of the alphabet switches CPUs inside it: one preemption. */
export function preempts(op: Op): boolean {
  return 'race' in op && op.race !== undefined;
}

/**
 * The concrete ops the scope offers at this state, in a fixed order (a path stores indices into
 * it); racing ones only while the path has `preemptions` left.
 */
export function alphabet(sys: System, scope: Scope, preemptions = 0): Op[] {
  const ops: Op[] = [];
  const cpus = sys.cpus.map((c) => c.id);
  // A vCPU's ASI is KVM's own: generic API calls never name it. The 2025 design's are its KVM domains.
  const asis = sys.asi25 ? callerDomainHandles(sys) : [...sys.asis.keys()].filter((a) => !sys.kvm?.asis.has(a));
  const withEvents = (lists: readonly (readonly ScopeIntr[])[], make: (intr: Intr[]) => Op) => {
    for (const list of lists) {
      const intr = resolveEvents(sys, list);
      if (intr) ops.push(make(intr));
    }
  };
  if (asis.length < scope.maxAsis) for (const flags of scope.createFlags) ops.push({ op: 'asi_create', flags });
  for (const asi of asis) {
    if (scope.destroy) ops.push({ op: 'asi_destroy', asi });
    for (const m of scope.map) {
      const ptr = resolveTarget(sys, m.target);
      if (ptr !== undefined) ops.push({ op: 'asi_map', asi, ptr, size: m.pages * PAGE_SIZE, level: PGT_LEVEL_PTE });
    }
    for (const r of sys.asis.get(asi)?.ranges ?? []) {
      if (r.madeBy !== undefined) continue;
      for (const caller of scope.unmapCallers) ops.push({ op: 'asi_unmap', asi, ptr: r.ptr, ...(caller ? { caller } : {}) });
    }
  }
  for (const cpu of cpus) {
    const session = sys.cpus[cpu].session;
    if (sys.asi25) {
      // A critical section may start on a CPU still on a domain, relaxed: the API's "Go back to 1".
      for (const asi of asis) withEvents(scope.enterEvents, (intr) => ({ op: 'asi_enter', cpu, asi, intr }));
      const on = domainHandleOn(sys, cpu);
      if (on !== null) withEvents(scope.exitEvents, (intr) => ({ op: 'asi_exit', cpu, asi: on, intr }));
    } else if (session.state === ASI_SESSION_STATE_INACTIVE) for (const asi of asis) withEvents(scope.enterEvents, (intr) => ({ op: 'asi_enter', cpu, asi, intr }));
    else if (session.asi !== null) withEvents(scope.exitEvents, (intr) => ({ op: 'asi_exit', cpu, asi: session.asi!, intr }));
    for (const e of scope.interrupts) {
      const [ev] = resolveEvents(sys, [e]) ?? [];
      if (ev) ops.push({ op: 'interrupt', cpu, kind: ev.kind, ...(ev.va === undefined ? {} : { va: ev.va }), intr: ev.nested ?? [] });
    }
    for (const t of scope.reads) {
      const va = resolveTarget(sys, t);
      if (va !== undefined) ops.push({ op: 'access', cpu, va, access: 'read', intr: [] });
    }
    if (sys.asi25) withEvents(scope.tlbFlushEvents, (intr) => ({ op: 'flush_tlb_mm', cpu, intr }));
  }
  if (scope.vmalloc) {
    const areas = vmallocAreas(sys);
    if (areas.length < scope.vmalloc.max) ops.push({ op: 'vmalloc', pages: scope.vmalloc.pages, sensitive: true });
    const last = newest(areas);
    if (last) ops.push({ op: 'vfree', id: last.id });
  }
  if (scope.tasks) {
    if (extraTasks(sys).length < scope.tasks.max) ops.push({ op: 'task_create' });
    const idle = idleTask(sys);
    if (idle !== undefined && scope.tasks.exit) ops.push({ op: 'task_exit', task: idle });
    if (scope.tasks.schedule) {
      // Any task no CPU runs: the boot task a CPU left included, so a CPU can go back.
      const runnable = [...sys.kernel.tasks.keys()].filter((t) => !sys.kernel.current.includes(t));
      for (const cpu of cpus) for (const task of runnable) withEvents([[]], (intr) => ({ op: 'schedule', cpu, task, intr }));
    }
  }
  for (const after of scope.failAlloc) ops.push({ op: 'fail_alloc', after });
  if (scope.kvm) {
    const kvm = sys.kvm;
    if ((kvm?.vms.size ?? 0) < scope.kvm.maxVms) ops.push({ op: 'kvm_create_vm' });
    for (const vm of kvm?.vms.keys() ?? []) ops.push({ op: 'kvm_create_vcpu', vm }, { op: 'kvm_destroy_vm', vm });
    // KVM_RUN comes from user space: not while cpu0 is isolated (2019) or restricted (2025).
    const busy = sys.asi25 ? sys.asi25.currAsi[0] !== null : sys.cpus[0].session.state !== ASI_SESSION_STATE_INACTIVE;
    for (const vcpu of kvm?.vcpus.keys() ?? []) {
      if (busy) continue;
      for (const exits of scope.kvm.runs) withEvents(scope.kvm.runEvents, (intr) => ({ op: 'kvm_run', cpu: 0, vcpu, exits: [...exits], intr }));
    }
  }
  if (scope.races && preemptions > 0 && sys.cpus.length > 1 && sys.cpus[0].session.state === ASI_SESSION_STATE_INACTIVE) {
    for (const [vcpu, v] of sys.kvm?.vcpus ?? []) {
      for (const exits of scope.races.runs) {
        for (const racer of kvmRacers(v.vm)) for (let at = 0; at < scope.races.points; at++) ops.push({ op: 'kvm_run', cpu: 0, vcpu, exits: [...exits], intr: [], race: { at, on: 1, op: racer } });
      }
    }
  }
  return ops;
}

