// The operation alphabet: one JSON-serialisable value per kernel call, each printable as one line.
// Saved counterexamples hold these, so a field once published keeps its meaning.

import { type Geometry, type PgtLevel, LEVEL_NAMES, PGT_LEVEL_PTE, formatSize, formatVa } from './mm/geometry.ts';
import { type PercpuVar, PERCPU_VAR_NAMES } from './mm/percpu.ts';
import { formatMapFlags } from './asi/asi.ts';
import { type Intr, type IntrKind, INTR_KINDS } from './x86/entry.ts';
import type { AccessKind } from './x86/cpu.ts';
import { type ExitReason, EXIT_REASONS } from './kvm/run.ts';

export type Op =
  | { readonly op: 'asi_create'; readonly flags: number }
  | { readonly op: 'asi_destroy'; readonly asi: number }
  // ASI API calls: `caller` names which kernel subsystem calls (0 when absent; see System.caller);
  // `on`, the CPU whose kernel code makes the call, in the task it runs and through its CR3 (an
  // isolated CPU's call runs on the ASI page table); absent, a process context on no CPU. `intr`,
  // with `on`: events landing at the call's points (asi->lock taken, released).
  | ({ readonly op: 'asi_map'; readonly asi: number; readonly ptr: number; readonly size: number; readonly level: PgtLevel } & OnCpu)
  | ({ readonly op: 'asi_unmap'; readonly asi: number; readonly ptr: number } & OnCpu)
  | ({ readonly op: 'asi_remap'; readonly asi: number; readonly cur: number | null; readonly ptr: number; readonly size: number } & OnCpu)
  | ({ readonly op: 'asi_map_percpu'; readonly asi: number; readonly var: PercpuVar } & OnCpu)
  | ({ readonly op: 'asi_unmap_percpu'; readonly asi: number; readonly var: PercpuVar } & OnCpu)
  | ({ readonly op: 'asi_map_module'; readonly asi: number; readonly module: number } & OnCpu)
  /** `memcg`: the memory cgroup the parent forks in (0, the root, when absent). */
  | { readonly op: 'task_create'; readonly memcg?: number }
  | { readonly op: 'task_exit'; readonly task: number }
  | { readonly op: 'vmalloc'; readonly pages: number; readonly sensitive: boolean }
  | { readonly op: 'vfree'; readonly id: number }
  /**
   * `count` objects of `size` (1 when absent): a burst of one size class fills a slab. `memcg`:
   * GFP_KERNEL_ACCOUNT by a task in that memory cgroup (GFP_KERNEL when absent). `atomic`:
   * GFP_ATOMIC, by a caller holding a spinlock with IRQs off (spin_lock_irqsave).
   */
  | { readonly op: 'kmalloc'; readonly size: number; readonly sensitive: boolean; readonly count?: number; readonly memcg?: number; readonly atomic?: boolean }
  | { readonly op: 'kfree'; readonly id: number }
  | { readonly op: 'module_load'; readonly pages: number }
  | { readonly op: 'module_unload'; readonly id: number }
  | { readonly op: 'fail_alloc'; readonly after: number }
  // memfd_secret() (Linux 5.14 on): the 2025 design's kernel only (ASI25_ONLY_OPS).
  | { readonly op: 'secretmem_fault' }
  | { readonly op: 'secretmem_free'; readonly id: number }
  /**
   * The CPU's task flushes its own mm's TLB entries, as munmap() or mprotect() of more than
   * tlb_single_page_flush_ceiling pages does: flush_tlb_mm_range() → flush_tlb_func() →
   * flush_tlb_local() (native_flush_tlb_local). The 2025 design's walks only (ASI25_ONLY_OPS).
   */
  | { readonly op: 'flush_tlb_mm'; readonly cpu: number; readonly intr: readonly Intr[] }
  // Per-CPU ops (issue 4): `intr` lists the events arriving between the micro-steps of the op's path;
  // `race` (issue 20), another CPU's op running while this one is in flight.
  | { readonly op: 'asi_enter'; readonly cpu: number; readonly asi: number; readonly intr: readonly Intr[]; readonly race?: Race }
  | { readonly op: 'asi_exit'; readonly cpu: number; readonly asi: number; readonly intr: readonly Intr[]; readonly race?: Race }
  | { readonly op: 'interrupt'; readonly cpu: number; readonly kind: IntrKind; readonly va?: number; readonly intr: readonly Intr[] }
  | { readonly op: 'access'; readonly cpu: number; readonly va: number; readonly access: AccessKind; readonly intr: readonly Intr[] }
  | { readonly op: 'schedule'; readonly cpu: number; readonly task: number; readonly intr: readonly Intr[]; readonly race?: Race }
  // KVM (issue 12): VM and vCPU file descriptors, memslots, IO buses, and KVM_RUN taking `exits`.
  /** `memcg`: the memory cgroup of the VMM process (0, the root, when absent). */
  | { readonly op: 'kvm_create_vm'; readonly memcg?: number }
  | { readonly op: 'kvm_create_vcpu'; readonly vm: number }
  | { readonly op: 'kvm_destroy_vm'; readonly vm: number }
  /** `gfn`: the slot's base_gfn, slot * KVM_MAX_SLOT_PAGES when absent. */
  | { readonly op: 'kvm_set_memory_region'; readonly vm: number; readonly slot: number; readonly pages: number; readonly gfn?: number }
  | { readonly op: 'kvm_io_bus'; readonly vm: number; readonly bus: number; readonly register: boolean }
  /** `wake`: the CPU the vCPU thread wakes up on after an HLT exit blocks it (its own when absent). */
  | { readonly op: 'kvm_run'; readonly cpu: number; readonly vcpu: number; readonly exits: readonly ExitReason[]; readonly intr: readonly Intr[]; readonly wake?: number; readonly race?: Race };

/** What an ASI API call says of where it runs (see Op). */
export interface OnCpu {
  readonly caller?: number;
  readonly on?: number;
  readonly intr?: readonly Intr[];
}

/**
 * Another CPU's op, started while this op's path is at its point `at` (0: its start; every
 * micro-step is a point, and so is each read the model marks where only another CPU can come
 * between). It runs to its end there, unless it must wait for this op's CPU (an SRCU reader, an
 * IPI it cannot take with IRQs off, a vCPU it runs): then it starts at the first later point where
 * it need not, or after this op returns. `on`: the CPU of an op that names none (a KVM ioctl, an
 * ASI API call, an allocation); a per-CPU op runs on its own. The racing op has no race of its own.
 */
export interface Race {
  readonly at: number;
  readonly on?: number;
  readonly op: Op;
}

/** Ops that may carry a race: those whose path runs on their CPU through drive's points. */
export const RACE_HOSTS: ReadonlySet<OpKind> = new Set(['asi_enter', 'asi_exit', 'schedule', 'kvm_run']);

/** The op on its own, without its race. */
export function withoutRace(op: Op): Op {
  if (!('race' in op) || !op.race) return op;
  const { race: _race, ...alone } = op;
  return alone as Op;
}

/** The op and its racing op one after the other: the same walk with no switch between CPUs. */
export function serialOps(op: Op): Op[] {
  return 'race' in op && op.race ? [withoutRace(op), op.race.op] : [op];
}

/** The CPU a racing op runs on. */
export function raceCpu(race: Race): number {
  return 'cpu' in race.op ? race.op.cpu : race.on!;
}

export type OpKind = Op['op'];

export const OP_KINDS: readonly OpKind[] = [
  'asi_create',
  'asi_destroy',
  'asi_map',
  'asi_unmap',
  'asi_remap',
  'asi_map_percpu',
  'asi_unmap_percpu',
  'asi_map_module',
  'task_create',
  'task_exit',
  'vmalloc',
  'vfree',
  'kmalloc',
  'kfree',
  'module_load',
  'module_unload',
  'fail_alloc',
  'asi_enter',
  'asi_exit',
  'interrupt',
  'access',
  'schedule',
  'kvm_create_vm',
  'kvm_create_vcpu',
  'kvm_destroy_vm',
  'kvm_set_memory_region',
  'kvm_io_bus',
  'kvm_run',
  'secretmem_fault',
  'secretmem_free',
  'flush_tlb_mm',
];

export const ACCESS_KINDS: readonly AccessKind[] = ['read', 'write', 'exec'];

export function formatIntr(g: Geometry, e: Intr): string {
  const nested = e.nested?.length ? ` {${e.nested.map((n) => formatIntr(g, n)).join(', ')}}` : '';
  return `${e.kind}@${e.at}${e.va === undefined ? '' : ` touching ${formatVa(g, e.va)}`}${nested}`;
}

function withIntr(g: Geometry, line: string, intr: readonly Intr[]): string {
  return intr.length ? `${line} [${intr.map((e) => formatIntr(g, e)).join(', ')}]` : line;
}

/** An ASI API call: the ops that carry a `caller`. */
export type ApiOp = Extract<Op, { caller?: number }>;

export const API_OPS: ReadonlySet<OpKind> = new Set(['asi_map', 'asi_unmap', 'asi_remap', 'asi_map_percpu', 'asi_unmap_percpu', 'asi_map_module']);

/**
 * -ENOSYS on the 2019 design: the calls of the 2025 design's kernel (6.x) that 5.2 does not have
 * (memfd_secret), and flush_tlb_mm, whose CR3 read and write-back the 2019 model does not run (its
 * walks, on which the 2019 findings were measured, make no user-space TLB flush).
 */
export const ASI25_ONLY_OPS: ReadonlySet<OpKind> = new Set(['secretmem_fault', 'secretmem_free', 'flush_tlb_mm']);

export function isApiCall(op: Op): op is ApiOp {
  return API_OPS.has(op.op);
}

/** Callers other than 0 are named after the call; a race after the op it races. */
export function formatOp(g: Geometry, op: Op): string {
  const line = isApiCall(op) && op.on !== undefined ? withIntr(g, `cpu${op.on}: ${formatCall(g, op)}`, op.intr ?? []) : formatCall(g, op);
  const called = 'caller' in op && op.caller ? `${line} (caller ${op.caller})` : line;
  return 'race' in op && op.race ? `${called} || ${formatRace(g, op.race)}` : called;
}

/** "cpu1 at point 7: KVM_SET_USER_MEMORY_REGION ...", the CPU prefix once. */
export function formatRace(g: Geometry, race: Race): string {
  return `cpu${raceCpu(race)} at point ${race.at}: ${formatOffCpu(g, race.op)}`;
}

/** An op's line without the "cpuN: " a per-CPU op's line starts with, for a line that names the CPU itself. */
export function formatOffCpu(g: Geometry, op: Op): string {
  return formatOp(g, op).replace(/^cpu\d+: /, '');
}

/** Callers of the ASI API that ops may name. */
export const MAX_CALLERS = 4;

function formatCall(g: Geometry, op: Op): string {
  const va = (x: number) => formatVa(g, x);
  switch (op.op) {
    case 'asi_create':
      return `asi_create(${formatMapFlags(op.flags)})`;
    case 'asi_destroy':
      return `asi_destroy asi#${op.asi}`;
    case 'asi_map':
      return op.level === PGT_LEVEL_PTE
        ? `asi_map asi#${op.asi} ${va(op.ptr)} ${formatSize(op.size)}`
        : `asi_map_range asi#${op.asi} ${va(op.ptr)} ${formatSize(op.size)} ${LEVEL_NAMES[op.level]}`;
    case 'asi_unmap':
      return `asi_unmap asi#${op.asi} ${va(op.ptr)}`;
    case 'asi_remap':
      return `asi_remap asi#${op.asi} ${op.cur === null ? 'NULL' : va(op.cur)} -> ${va(op.ptr)} ${formatSize(op.size)}`;
    case 'asi_map_percpu':
      return `asi_map_percpu asi#${op.asi} &${op.var}`;
    case 'asi_unmap_percpu':
      return `asi_unmap_percpu asi#${op.asi} &${op.var}`;
    case 'asi_map_module':
      return `asi_map_module asi#${op.asi} module#${op.module}`;
    case 'task_create':
      return `task_create${memcgWords(op.memcg)}`;
    case 'task_exit':
      return `task_exit task#${op.task}`;
    case 'vmalloc':
      return `vmalloc ${op.pages}p${op.sensitive ? ' sensitive' : ''}`;
    case 'vfree':
      return `vfree #${op.id}`;
    case 'kmalloc':
      return `kmalloc ${formatSize(op.size).slice(1)}${op.sensitive ? ' sensitive' : ''}${op.count === undefined ? '' : ` x${op.count}`}${op.atomic ? ' GFP_ATOMIC' : ''}${op.memcg === undefined ? '' : ` ${op.atomic ? '__GFP_ACCOUNT' : 'GFP_KERNEL_ACCOUNT'}${memcgWords(op.memcg)}`}`;
    case 'kfree':
      return `kfree #${op.id}`;
    case 'module_load':
      return `module_load ${op.pages}p`;
    case 'module_unload':
      return `module_unload module#${op.id}`;
    case 'fail_alloc':
      return `fail_alloc after ${op.after}`;
    case 'secretmem_fault':
      return 'memfd_secret page fault';
    case 'secretmem_free':
      return `memfd_secret free #${op.id}`;
    case 'flush_tlb_mm':
      return withIntr(g, `cpu${op.cpu}: flush_tlb_mm`, op.intr);
    case 'asi_enter':
      return withIntr(g, `cpu${op.cpu}: asi_enter asi#${op.asi}`, op.intr);
    case 'asi_exit':
      return withIntr(g, `cpu${op.cpu}: asi_exit asi#${op.asi}`, op.intr);
    case 'interrupt':
      return withIntr(g, `cpu${op.cpu}: ${op.kind}${op.va === undefined ? '' : ` touching ${va(op.va)}`}`, op.intr);
    case 'access':
      return withIntr(g, `cpu${op.cpu}: ${op.access} ${va(op.va)}`, op.intr);
    case 'schedule':
      return withIntr(g, `cpu${op.cpu}: schedule to task#${op.task}`, op.intr);
    case 'kvm_create_vm':
      return `KVM_CREATE_VM${memcgWords(op.memcg)}`;
    case 'kvm_create_vcpu':
      return `KVM_CREATE_VCPU vm#${op.vm}`;
    case 'kvm_destroy_vm':
      return `close vm#${op.vm}`;
    case 'kvm_set_memory_region':
      return `KVM_SET_USER_MEMORY_REGION vm#${op.vm} slot ${op.slot} ${op.pages ? `+${op.pages}p` : 'delete'}${op.gfn === undefined ? '' : ` gfn ${op.gfn}`}`;
    case 'kvm_io_bus':
      return `kvm_io_bus_${op.register ? 'register' : 'unregister'}_dev vm#${op.vm} bus ${op.bus}`;
    case 'kvm_run':
      return withIntr(g, `cpu${op.cpu}: KVM_RUN vcpu#${op.vcpu} exits ${op.exits.join(',') || 'none'}${op.wake === undefined ? '' : ` wake cpu${op.wake}`}`, op.intr);
  }
}

/** Memory cgroups an op may name: the root (0) and a few others, so that two processes often share one. */
export const MAX_MEMCGS = 4;

function memcgWords(memcg: number | undefined): string {
  return memcg ? ` memcg ${memcg}` : '';
}

/** Objects one kmalloc op may allocate: enough to fill any kmalloc slab of the small geometry's memory. */
export const MAX_KMALLOC_COUNT = 16;

function validateIntr(x: unknown, depth = 0): string | undefined {
  if (!Array.isArray(x)) return 'intr must be a list';
  if (depth > 3) return 'intr nests too deep';
  for (const e of x as Record<string, unknown>[]) {
    if (typeof e !== 'object' || e === null) return 'an intr entry is not an object';
    if (!Number.isSafeInteger(e.at) || (e.at as number) < 0) return 'intr: at must be a non-negative integer';
    if (!(INTR_KINDS as readonly unknown[]).includes(e.kind)) return `intr: unknown kind ${JSON.stringify(e.kind)}`;
    if (e.va !== undefined && (!Number.isSafeInteger(e.va) || (e.va as number) < 0)) return 'intr: va must be a non-negative integer';
    if (e.nested !== undefined) {
      const err = validateIntr(e.nested, depth + 1);
      if (err) return err;
    }
  }
  return undefined;
}

/** Checks a value read from a file is an Op; returns a reason when it is not. */
export function validateOp(x: unknown): string | undefined {
  if (typeof x !== 'object' || x === null) return 'not an object';
  const o = x as Record<string, unknown>;
  if (typeof o.op !== 'string' || !(OP_KINDS as readonly string[]).includes(o.op)) return `unknown op ${JSON.stringify(o.op)}`;
  const int = (k: string) => (Number.isSafeInteger(o[k]) && (o[k] as number) >= 0 ? undefined : `${o.op}: field ${k} must be a non-negative integer`);
  const bool = (k: string) => (typeof o[k] === 'boolean' ? undefined : `${o.op}: field ${k} must be a boolean`);
  const upTo = (k: string, lo: number, hi: number) => () =>
    o[k] === undefined || (Number.isSafeInteger(o[k]) && (o[k] as number) >= lo && (o[k] as number) <= hi) ? undefined : `${o.op}: field ${k} must be ${lo}-${hi}`;
  const fields: Record<OpKind, (() => string | undefined)[]> = {
    asi_create: [() => int('flags')],
    asi_destroy: [() => int('asi')],
    asi_map: [() => int('asi'), () => int('ptr'), () => int('size'), () => (int('level') ?? ((o.level as number) <= 4 ? undefined : `${o.op}: level must be 0-4`))],
    asi_unmap: [() => int('asi'), () => int('ptr')],
    asi_remap: [() => int('asi'), () => (o.cur === null ? undefined : int('cur')), () => int('ptr'), () => int('size')],
    asi_map_percpu: [() => int('asi'), () => percpuVar(o)],
    asi_unmap_percpu: [() => int('asi'), () => percpuVar(o)],
    asi_map_module: [() => int('asi'), () => int('module')],
    task_create: [upTo('memcg', 0, MAX_MEMCGS - 1)],
    task_exit: [() => int('task')],
    vmalloc: [() => int('pages'), () => bool('sensitive')],
    vfree: [() => int('id')],
    kmalloc: [() => int('size'), () => bool('sensitive'), upTo('count', 1, MAX_KMALLOC_COUNT), upTo('memcg', 0, MAX_MEMCGS - 1), () => (o.atomic === undefined ? undefined : bool('atomic'))],
    kfree: [() => int('id')],
    module_load: [() => int('pages')],
    module_unload: [() => int('id')],
    fail_alloc: [() => int('after')],
    secretmem_fault: [],
    secretmem_free: [() => int('id')],
    flush_tlb_mm: [() => int('cpu'), () => validateIntr(o.intr)],
    asi_enter: [() => int('cpu'), () => int('asi'), () => validateIntr(o.intr)],
    asi_exit: [() => int('cpu'), () => int('asi'), () => validateIntr(o.intr)],
    interrupt: [() => int('cpu'), () => ((INTR_KINDS as readonly unknown[]).includes(o.kind) ? undefined : `interrupt: unknown kind ${JSON.stringify(o.kind)}`), () => (o.va === undefined ? undefined : int('va')), () => validateIntr(o.intr)],
    access: [() => int('cpu'), () => int('va'), () => ((ACCESS_KINDS as readonly unknown[]).includes(o.access) ? undefined : `access: unknown kind ${JSON.stringify(o.access)}`), () => validateIntr(o.intr)],
    schedule: [() => int('cpu'), () => int('task'), () => validateIntr(o.intr)],
    kvm_create_vm: [upTo('memcg', 0, MAX_MEMCGS - 1)],
    kvm_create_vcpu: [() => int('vm')],
    kvm_destroy_vm: [() => int('vm')],
    kvm_set_memory_region: [() => int('vm'), () => int('slot'), () => int('pages'), () => (o.gfn === undefined ? undefined : int('gfn'))],
    kvm_io_bus: [() => int('vm'), () => int('bus'), () => bool('register')],
    kvm_run: [() => int('cpu'), () => int('vcpu'), () => (o.wake === undefined ? undefined : int('wake')), () => (Array.isArray(o.exits) && o.exits.every((e) => (EXIT_REASONS as readonly unknown[]).includes(e)) ? undefined : 'kvm_run: exits must list exit reasons'), () => validateIntr(o.intr)],
  };
  if (o.caller !== undefined && (!Number.isSafeInteger(o.caller) || (o.caller as number) < 0 || (o.caller as number) >= MAX_CALLERS)) return `${o.op}: caller must be 0-${MAX_CALLERS - 1}`;
  if (o.on !== undefined && (!API_OPS.has(o.op as OpKind) || !Number.isSafeInteger(o.on) || (o.on as number) < 0)) return `${o.op}: on must name a CPU, and only ASI API calls take it`;
  if (API_OPS.has(o.op as OpKind) && o.intr !== undefined) {
    if (o.on === undefined) return `${o.op}: intr needs on, the CPU its events land on`;
    const err = validateIntr(o.intr);
    if (err) return `${o.op}: ${err}`;
  }
  for (const check of fields[o.op as OpKind]) {
    const err = check();
    if (err) return err;
  }
  return o.race === undefined ? undefined : validateRace(o, o.race);
}

function validateRace(host: Record<string, unknown>, x: unknown): string | undefined {
  if (!RACE_HOSTS.has(host.op as OpKind)) return `${host.op}: only ${[...RACE_HOSTS].join(', ')} may carry a race`;
  if (typeof x !== 'object' || x === null) return `${host.op}: race must be an object`;
  const r = x as Record<string, unknown>;
  if (!Number.isSafeInteger(r.at) || (r.at as number) < 0) return `${host.op}: race.at must be a non-negative integer`;
  const err = validateOp(r.op);
  if (err) return `${host.op}: race.op: ${err}`;
  const op = r.op as Record<string, unknown>;
  if (op.race !== undefined) return `${host.op}: a racing op has no race of its own`;
  if (op.on !== undefined) return `${host.op}: a racing op's CPU is race.on`;
  if ('cpu' in op && r.on !== undefined) return `${host.op}: race.on is for ops that name no CPU`;
  if (!('cpu' in op) && (!Number.isSafeInteger(r.on) || (r.on as number) < 0)) return `${host.op}: race.on must name a CPU`;
  return ('cpu' in op ? op.cpu : r.on) === host.cpu ? `${host.op}: the racing op runs on cpu${host.cpu} too` : undefined;
}

function percpuVar(o: Record<string, unknown>): string | undefined {
  return (PERCPU_VAR_NAMES as readonly unknown[]).includes(o.var) ? undefined : `${o.op}: unknown percpu variable ${JSON.stringify(o.var)}`;
}
