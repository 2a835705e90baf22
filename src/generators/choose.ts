// Turning raw random numbers into operations on the live state. A `Choice` is a few naturals; the
// same choice resolves against the current system to one concrete Op. fast-check shrinks choices
// (towards 0: earlier kinds, first candidates), the seeded walk draws them from seedrandom, and
// both record the concrete ops, which are what a counterexample saves.

import { PAGE_SIZE, PGT_LEVEL_PMD, type PgtLevel, levelSize, roundDown } from '../model/mm/geometry.ts';
import { TASK_STRUCT_SIZE, THREAD_PAGES, taskStackVa } from '../model/mm/kernel.ts';
import { perCpuOffsetPtr, perCpuPtr, percpuVarNames } from '../model/mm/percpu.ts';
import { ACCESS_KINDS, ASI25_ONLY_OPS, type ApiOp, MAX_KMALLOC_COUNT, MAX_MEMCGS, type Op, type OpKind, RACE_HOSTS, isApiCall } from '../model/ops.ts';
import type { Intr, IntrKind } from '../model/x86/entry.ts';
import type { System } from '../model/system.ts';
import { ASI_SESSION_STATE_ACTIVE } from '../model/x86/cpu.ts';
import { frameAt, walk } from '../model/mm/pagetable.ts';
import { resolveKvmOp } from './kvm.ts';
import { ASI25_OPS, domainHandleOn, callerDomainHandles } from '../model/asi25/ops.ts';

export interface Choice {
  readonly kind: number;
  readonly a: number;
  readonly b: number;
  readonly c: number;
  readonly d: number;
}

export type Weights = Readonly<Record<OpKind, number>>;

/** The weights of the foundation (no CPU ops): the findings ladder's first rungs were found with these. */
export const FOUNDATION_WEIGHTS: Weights = {
  asi_create: 4,
  asi_destroy: 2,
  asi_map: 16,
  asi_unmap: 10,
  asi_remap: 3,
  asi_map_percpu: 3,
  asi_unmap_percpu: 2,
  asi_map_module: 2,
  task_create: 3,
  task_exit: 3,
  vmalloc: 3,
  vfree: 3,
  kmalloc: 3,
  kfree: 3,
  module_load: 2,
  module_unload: 1,
  fail_alloc: 2,
  asi_enter: 0,
  asi_exit: 0,
  interrupt: 0,
  access: 0,
  schedule: 0,
  kvm_create_vm: 0,
  kvm_create_vcpu: 0,
  kvm_destroy_vm: 0,
  kvm_set_memory_region: 0,
  kvm_io_bus: 0,
  kvm_run: 0,
  // The 2025 design's kernel only (ASI25_ONLY_OPS): ofDesign takes them out of the 2019 design's walks.
  secretmem_fault: 1,
  secretmem_free: 1,
  flush_tlb_mm: 0,
};

/** CPU ops are a third of a walk, so interrupts land inside enter, exit and abort paths often. */
export const DEFAULT_WEIGHTS: Weights = {
  ...FOUNDATION_WEIGHTS,
  asi_enter: 10,
  asi_exit: 7,
  interrupt: 7,
  access: 7,
  schedule: 3,
  flush_tlb_mm: 2,
};

/**
 * With KVM's ops (VMs, vCPUs, memslots, buses, KVM_RUN): seeded fuzz walks, and the fast-check runs
 * of the KVM mutants. Other fast-check runs keep DEFAULT_WEIGHTS, on which the findings ladder and
 * the kill matrix were calibrated.
 */
export const KVM_WEIGHTS: Weights = {
  ...DEFAULT_WEIGHTS,
  kvm_create_vm: 1,
  kvm_create_vcpu: 1,
  kvm_destroy_vm: 1,
  kvm_set_memory_region: 2,
  kvm_io_bus: 2,
  kvm_run: 6,
};

function pick<T>(xs: readonly T[], n: number): T {
  return xs[n % xs.length];
}

/** Each Weights' kinds in key order and their total, worked out once: Weights are Readonly. */
const KINDS = new WeakMap<Weights, { readonly kinds: readonly OpKind[]; readonly total: number }>();

function pickKind(w: Weights, n: number): OpKind {
  let c = KINDS.get(w);
  if (!c) {
    const kinds = Object.keys(w) as OpKind[];
    KINDS.set(w, (c = { kinds, total: kinds.reduce((s, k) => s + w[k], 0) }));
  }
  let x = n % c.total;
  for (const k of c.kinds) {
    if (x < w[k]) return k;
    x -= w[k];
  }
  return c.kinds[0];
}

/**
 * Ids that do not exist are asked for once in MISSING_ID_ONE_IN id choices, so the lookup errors are
 * exercised; every other op names a live object. When no object of the kind exists, resolveOp turns
 * the op into the call that makes one (asi_create, kmalloc, ...), except at this same rate.
 */
export const MISSING_ID_ONE_IN = 16;

/**
 * Without economy (fast-check runs: the findings ladder and the mutant kill matrix were calibrated on
 * it, and their first-found counterexamples depend on it) a missing id is asked for 1 in 8, no object
 * is made first, and frees are blind to what ASIs map.
 */
const PLAIN_MISSING_ID_ONE_IN = 8;

function wantsMissing(n: number, oneIn = MISSING_ID_ONE_IN): boolean {
  return n % oneIn === oneIn - 1;
}

function pickId(ids: readonly number[], n: number, missing: number, oneIn = MISSING_ID_ONE_IN): number {
  if (ids.length === 0 || wantsMissing(n, oneIn)) return missing;
  return pick(ids, Math.floor(n / oneIn));
}

/**
 * Objects to free: mostly (3 in 4) one whose frames an ASI maps or a CPU's TLB caches, when there is
 * one, since freeing those is what stale mappings and stale TLB entries come from.
 */
function pickFree<T extends { readonly id: number }>(objs: readonly T[], hot: (o: T) => boolean, n: number, missing: number): number {
  const preferred = objs.filter(hot);
  return pickId((preferred.length && n % 4 !== 3 ? preferred : objs).map((o) => o.id), n >> 2, missing);
}

/** Pages an ASI range is probed at: enough for the ranges walks make, cheap for a PUD-level one. */
const PROBED_PAGES = 16;

/** Allocations that some ASI page table maps now, or that some CPU's TLB still caches a frame of. */
function reachedAllocations(sys: System): Set<number> {
  const frames: number[] = [];
  for (const asi of sys.asis.values()) {
    for (const r of asi.ranges) {
      for (let i = 0; i < Math.min(PROBED_PAGES, Math.ceil(r.size / PAGE_SIZE)); i++) {
        const w = walk(sys.g, sys.tables, asi.pgd, roundDown(r.ptr, PAGE_SIZE) + i * PAGE_SIZE);
        if (w.ok) frames.push(frameAt(w.leaf, roundDown(r.ptr, PAGE_SIZE) + i * PAGE_SIZE));
      }
    }
  }
  for (const cpu of sys.cpus) for (const e of cpu.tlb.values()) frames.push(e.frame);
  return new Set(frames.map((f) => sys.mem.frameAlloc[f]).filter((a) => a !== undefined && a >= 0));
}

/**
 * What code running isolated on a CPU touches: a page of its ASI's ranges, or the direct-map alias
 * of a frame one of them maps, so the TLB holds translations that unmaps and frees must shoot down.
 */
function isolatedTarget(sys: System, cpu: number, n: number): number | undefined {
  const session = sys.cpus[cpu].session;
  const asi = session.state === ASI_SESSION_STATE_ACTIVE && session.asi !== null ? sys.asis.get(session.asi) : undefined;
  if (!asi || asi.ranges.length === 0) return undefined;
  const r = pick(asi.ranges, n >> 1);
  const va = roundDown(r.ptr, PAGE_SIZE) + ((n >> 4) % Math.max(1, Math.ceil(r.size / PAGE_SIZE))) * PAGE_SIZE;
  const w = n % 2 ? walk(sys.g, sys.tables, asi.pgd, va) : undefined;
  return w?.ok ? sys.kernel.layout.directMap + frameAt(w.leaf, va) * PAGE_SIZE : va;
}

/** Start addresses worth trying: objects, tracked ranges, region and large-page edges. */
export function interestingPointers(sys: System, asiId: number): number[] {
  const k = sys.kernel;
  const l = k.layout;
  const g = sys.g;
  const out: number[] = [];
  const asi = sys.asis.get(asiId);
  if (asi) for (const r of asi.ranges) out.push(r.ptr, r.ptr + PAGE_SIZE, roundDown(r.ptr + r.size - 1, PAGE_SIZE));
  for (const t of k.tasks.values()) out.push(taskStackVa(sys, t), t.structVa);
  for (const v of k.vmAreas.values()) out.push(v.va, v.va + (v.pages - 1) * PAGE_SIZE);
  for (const o of k.kmallocs.values()) out.push(o.va);
  for (const m of k.modules.values()) out.push(m.va);
  for (const v of percpuVarNames(sys)) out.push(perCpuPtr(sys, v, 0));
  for (const o of k.percpuObjects.values()) out.push(perCpuOffsetPtr(sys, o.offset, 0));
  const pmd = levelSize(g, PGT_LEVEL_PMD);
  out.push(
    l.startKernelMap,
    l.startKernelMap + pmd - PAGE_SIZE,
    l.startKernelMap + pmd,
    l.startKernelMap + 2 * pmd,
    l.ceaPerCpu,
    l.espfixBase,
    l.modulesStart,
    l.directMap,
    l.directMap + pmd - PAGE_SIZE,
    l.directMap + levelSize(g, 2) - PAGE_SIZE,
    l.vmallocStart,
  );
  return out;
}

function sizeFor(sys: System, n: number, m: number): number {
  const sizes = [
    PAGE_SIZE,
    2 * PAGE_SIZE,
    THREAD_PAGES * PAGE_SIZE,
    TASK_STRUCT_SIZE,
    PAGE_SIZE + 1,
    PAGE_SIZE - 1,
    3 * PAGE_SIZE + 1,
    8,
    0x40,
    levelSize(sys.g, PGT_LEVEL_PMD),
    levelSize(sys.g, PGT_LEVEL_PMD) + PAGE_SIZE,
  ];
  return n % 4 === 3 ? (1 + (m % 12)) * PAGE_SIZE : pick(sizes, n >> 2);
}

/**
 * Sizes of every kmalloc cache's range (kmalloc-8 ... kmalloc-8k: the lapic's 0x190 among them)
 * and of kmalloc_large.
 */
const KMALLOC_SIZES = [0x40, 0x200, 0x190, 0x18, 0x60, 0xc0, 8, 0x400, 0x800, PAGE_SIZE, 0x1800, 2 * PAGE_SIZE + 1, 3 * PAGE_SIZE];

/**
 * The memcg of a task that forks or allocates: the root in two calls of four, otherwise one of
 * the others, so that two processes often share one (and as often do not).
 */
export function memcgOf(n: number): { memcg?: number } {
  return n % 4 < 2 ? {} : { memcg: 1 + ((n >> 2) % (MAX_MEMCGS - 1)) };
}

/**
 * kmalloc: one object, or (one call in four) a burst of one size class that fills slab pages;
 * GFP_KERNEL_ACCOUNT in a memcg one call in three. In the 2025 design's economical walks one call
 * in four is GFP_ATOMIC, under a lock with IRQs off: the September allocator refuses such callers
 * the pageblock flip (ALLOC_NOBLOCK). The 2019 design's walks keep their calls (see vmallocPages).
 */
function kmallocOp(sys: System, ch: Choice, plain: boolean): Op {
  const count = ch.c % 8 >= 6 ? { count: 2 + ((ch.c >> 3) % (MAX_KMALLOC_COUNT - 1)) } : {};
  const memcg = ch.d % 3 === 2 ? { memcg: (ch.d >> 2) % MAX_MEMCGS } : {};
  const atomic = !plain && sys.asi25 && (ch.d >>> 8) % 4 === 0 ? { atomic: true } : {};
  return { op: 'kmalloc', size: pick(KMALLOC_SIZES, ch.b), sensitive: ch.c % 2 === 0, ...count, ...memcg, ...atomic };
}

/** The newest kernel objects first: what was just allocated is what a caller maps next. */
function recentObjects(sys: System): number[] {
  const k = sys.kernel;
  const objs = [...k.vmAreas.values(), ...k.kmallocs.values(), ...k.modules.values()].sort((a, b) => b.id - a.id);
  return objs.slice(0, 3).map((o) => o.va);
}

/**
 * A pointer: a recent object (3 in 8), another interesting one (2 in 8), one moved by a small
 * unaligned offset or by whole pages, or a random direct-map page.
 */
function pointerFor(sys: System, asi: number, n: number, m: number): number {
  const recent = recentObjects(sys);
  const base = n % 8 < 3 && recent.length ? pick(recent, n >> 3) : pick(interestingPointers(sys, asi), n >> 3);
  switch (n % 8) {
    case 5:
      return base + pick([0x10, 0x800, PAGE_SIZE - 8], m);
    case 6:
      return base + (m % 4) * PAGE_SIZE;
    case 7:
      return sys.kernel.layout.directMap + (m % sys.kernel.layout.physFrames) * PAGE_SIZE;
    default:
      return base;
  }
}

/**
 * A deterministic stream of naturals from one choice value (an xorshift-multiply mix), so that one
 * Choice can describe several nested events; 0 stays the simplest (fast-check shrinks towards it).
 */
function stream(seed: number): () => number {
  let x = seed >>> 0;
  return () => {
    x = Math.imul(x ^ (x >>> 15), 0x2c1b3c6d) >>> 0;
    x = (Math.imul(x ^ (x >>> 12), 0x297a2d39) + 0x9e3779b9) >>> 0;
    return x >>> 4;
  };
}

/** asi_enter passes 9 to 12 points of its own (more when an abort runs asi_exit inside it); 16 also lands events after a path returns. */
const MAX_AT = 16;
const EVENT_KINDS: readonly IntrKind[] = ['irq', 'irq', 'nmi', 'nmi', 'exception', 'switch'];

/** Addresses a handler or an access touches: mapped objects, percpu data, and unmapped holes. */
function touchedVa(sys: System, n: number): number {
  const l = sys.kernel.layout;
  const holes = [l.vmallocEnd - PAGE_SIZE, l.modulesEnd - PAGE_SIZE];
  return n % 4 === 3 ? pick(holes, n >> 2) : pick(interestingPointers(sys, -1), n >> 2);
}

/**
 * Events, a third of them touching memory; with `touchMost`, two thirds: a handler that touches kernel
 * data inside the enter path is how Global TLB entries reach an isolated CPU.
 */
export function eventsFor(sys: System, seed: number, depth = 0, touchMost = false): Intr[] {
  if (seed === 0) return [];
  const r = stream(seed);
  const count = depth ? 1 : [1, 1, 1, 2, 0][r() % 5];
  return Array.from({ length: count }, () => {
    const kind = pick(EVENT_KINDS, r());
    const x = r();
    const touches = touchMost ? x % 3 !== 2 : x % 3 === 0;
    const e: Intr = { at: r() % MAX_AT, kind, ...(kind !== 'switch' && touches ? { va: touchedVa(sys, r()) } : {}) };
    return depth < 1 && x % 3 === 1 ? { ...e, nested: eventsFor(sys, r() | 1, depth + 1, touchMost) } : e;
  });
}

/** Mostly asi_map (PTE level); the other levels as asi_map_range callers use them. */
const LEVELS: readonly PgtLevel[] = [0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4];

/** Op kinds that name an ASI: without one, the walk creates it first. */
const NEEDS_ASI: ReadonlySet<OpKind> = new Set(['asi_destroy', 'asi_map', 'asi_unmap', 'asi_remap', 'asi_map_percpu', 'asi_unmap_percpu', 'asi_map_module', 'asi_enter', 'asi_exit']);

const FREES: ReadonlySet<OpKind> = new Set(['vfree', 'kfree', 'module_unload', 'task_exit']);

/** A call that names an object of a kind none of which exists becomes the call that makes one. */
function creatorFor(sys: System, kind: OpKind, idle: readonly number[]): OpKind {
  const k = sys.kernel;
  if (NEEDS_ASI.has(kind) && (sys.asi25 ? callerDomainHandles(sys).length : sys.asis.size) === 0) return 'asi_create';
  if (kind === 'asi_map_module' && k.modules.size === 0) return 'module_load';
  if (kind === 'vfree' && ![...k.vmAreas.values()].some((v) => sys.mem.allocs.get(v.alloc)?.kind === 'vmalloc')) return 'vmalloc';
  if (kind === 'kfree' && ![...k.kmallocs.values()].some((o) => o.kind === 'kmalloc')) return 'kmalloc';
  if (kind === 'module_unload' && k.modules.size === 0) return 'module_load';
  if (kind === 'secretmem_free' && ![...k.kmallocs.values()].some((o) => o.kind === 'secretmem')) return 'secretmem_fault';
  if ((kind === 'task_exit' || kind === 'schedule') && idle.length === 0) return 'task_create';
  return kind;
}

const ECONOMICAL = new WeakSet<Weights>();

/**
 * The seeded fuzz walks' weights (KVM_WEIGHTS), resolved economically: an op that names an
 * object of a kind none of which exists makes one instead, missing ids come 1 in MISSING_ID_ONE_IN,
 * frees prefer memory an ASI maps or a TLB caches, isolated CPUs access what their ASI maps, one
 * asi_enter in four carries no event, so the CPU stays isolated for the next ops, and the events of
 * the others mostly touch memory. A WeakSet marks it, so Weights keeps its shape for every caller.
 */
export const WALK_WEIGHTS: Weights = { ...KVM_WEIGHTS };
ECONOMICAL.add(WALK_WEIGHTS);

/** WALK_WEIGHTS without KVM's ops: a search for a mistake outside KVM spends no steps on VMs. */
export const WALK_KERNEL_WEIGHTS: Weights = { ...DEFAULT_WEIGHTS };
ECONOMICAL.add(WALK_KERNEL_WEIGHTS);

/**
 * One ASI API call in four is made by a second caller (another kernel subsystem sharing the ASI),
 * so that CALLER-CONTRACT meets calls that touch another caller's ranges.
 */
export function resolveOp(sys: System, ch: Choice, weights: Weights = DEFAULT_WEIGHTS): Op {
  const op = resolveCall(sys, ch, ofDesign(sys, weights));
  const called = isApiCall(op) && (ch.a >>> 10) % 4 === 3 ? { ...op, caller: 1 } : op;
  if (!ECONOMICAL.has(weights)) return called;
  return isApiCall(called) ? madeOnCpu(sys, called, ch) : withRace(sys, called, ch);
}

/**
 * Economical walks make half their ASI API calls on a CPU, an isolated one where there is one:
 * kernel code inside its session calls the API too (patch 26's remaps do), on the ASI page table.
 * Half of those take events at the call's points (asi->lock taken, released).
 */
function madeOnCpu(sys: System, op: ApiOp, ch: Choice): Op {
  const n = ch.a >>> 12;
  if (n % 2 === 0) return op;
  const isolated = sys.cpus.filter((c) => c.session.state === ASI_SESSION_STATE_ACTIVE).map((c) => c.id);
  const on = isolated.length ? pick(isolated, n >> 1) : (n >> 1) % sys.config.cpus;
  const intr = (n >> 5) % 2 ? eventsFor(sys, ch.d ^ n) : [];
  return { ...op, on, ...(intr.length ? { intr: intr.map((e) => ({ ...e, at: e.at % API_POINTS })) } : {}) };
}

/** The points of an API call events land at: its start, asi->lock taken and released (twice for a remap), its return. */
const API_POINTS = 6;

/** Racing ops that touch what the in-flight op reads: no weight for any other kind. */
function racerWeights(weights: Partial<Weights>): Weights {
  const w = { ...(Object.fromEntries(Object.keys(FOUNDATION_WEIGHTS).map((k) => [k, 0])) as Weights), ...weights };
  ECONOMICAL.add(w);
  return w;
}

/**
 * What another CPU does while a KVM_RUN is in flight: KVM's ioctls on the VM, which replace and
 * free what vcpu_isolation_enter reads, another vCPU's KVM_RUN, and closing the VM.
 */
const KVM_RACERS = racerWeights({ kvm_destroy_vm: 1, kvm_set_memory_region: 3, kvm_io_bus: 3, kvm_run: 2 });

/**
 * While asi_enter, asi_exit or a context switch is in flight: the ASI API (asi_destroy of the ASI
 * being entered or left among it) and the frees that unmap from ASIs and shoot down TLBs, tasks
 * exiting, and another CPU's interrupts and faults (whose handlers leave its session and unmap its
 * stack).
 */
const SESSION_RACERS = racerWeights({ asi_unmap: 1, vfree: 1, kfree: 1, task_exit: 1, interrupt: 1, access: 1, asi_destroy: 1 });

/** A race on one walk op in RACE_ONE_IN of those that may carry one, with two CPUs or more. */
const RACE_ONE_IN = 3;

/** Points of a path a race may start at: KVM_RUN with two exits passes about 40. */
const MAX_RACE_AT = 48;

function withRace(sys: System, op: Op, ch: Choice): Op {
  const n = sys.config.cpus;
  if (n < 2 || !RACE_HOSTS.has(op.op) || !('cpu' in op) || (ch.c >>> 12) % RACE_ONE_IN !== 0) return op;
  const r = stream(ch.d ^ (ch.b << 7) ^ 0x5bd1e995);
  const other = (op.cpu + 1 + (r() % (n - 1))) % n;
  const racers = op.op === 'kvm_run' ? KVM_RACERS : SESSION_RACERS;
  const racer = resolveCall(sys, { kind: r(), a: r(), b: r(), c: r(), d: r() }, ofDesign(sys, racers));
  // Where what a racing op would act on does not exist, creatorFor made it another call (KVM_CREATE_VM,
  // kmalloc, ...): creating an object races with nothing, so the op runs alone.
  if (!racers[racer.op]) return op;
  const placed: Op = 'cpu' in racer ? ({ ...racer, cpu: other } as Op) : racer;
  return { ...op, race: { at: r() % MAX_RACE_AT, ...('cpu' in placed ? {} : { on: other }), op: placed } } as Op;
}

/**
 * The weights a design can use: none for the ops it does not have (ASI25_OPS on the 2025 design,
 * ASI25_ONLY_OPS out of the 2019 one), so that a walk spends no steps on -ENOSYS. Derived once per
 * Weights, economy kept.
 */
const DESIGN_WEIGHTS = new WeakMap<Weights, Weights>();
const DESIGN_WEIGHTS_2019 = new WeakMap<Weights, Weights>();

function ofDesign(sys: System, w: Weights): Weights {
  const cache = sys.asi25 ? DESIGN_WEIGHTS : DESIGN_WEIGHTS_2019;
  let d = cache.get(w);
  if (!d) {
    const has = (kind: OpKind) => (sys.asi25 ? ASI25_OPS.has(kind) : !ASI25_ONLY_OPS.has(kind));
    d = Object.fromEntries(Object.entries(w).map(([kind, n]) => [kind, has(kind as OpKind) ? n : 0])) as Weights;
    if (ECONOMICAL.has(w)) ECONOMICAL.add(d);
    cache.set(w, d);
  }
  return d;
}

/** One economical vmalloc in PRESSURE_ONE_IN on the 2025 design asks for a share of free memory. */
const PRESSURE_ONE_IN = 8;

/**
 * A vmalloc's size: a few pages, or, in the 2025 design's economical walks, one call in
 * PRESSURE_ONE_IN asks for a quarter to all of the free frames. The 2025 allocator changes what it
 * does when a sensitivity's free lists run dry (__rmqueue_asi flips whole pageblocks, the
 * September series' sensitive flip included), and walks of a few pages at a time never got there
 * (300 walks on asi25-dm-fixed flipped no pageblock back to sensitive; a 600 s keep-going run on
 * asi25-dm, 6.6 M ops, never reached F47). The 2019 design's walks keep their sizes, on which its
 * findings ladder and kill seeds were measured.
 */
function vmallocPages(sys: System, ch: Choice, plain: boolean): number {
  if (plain || !sys.asi25 || (ch.b >>> 4) % PRESSURE_ONE_IN !== 0) return 1 + (ch.b % 6);
  const free = sys.mem.frameAlloc.reduce((n, id) => (id === -1 ? n + 1 : n), 0);
  return Math.max(1, Math.floor((free * (1 + (ch.d % 4))) / 4));
}

/** The ASIs an op may name, and the id of one that does not exist. */
function asiIds(sys: System): { readonly ids: number[]; readonly missing: number } {
  if (sys.asi25) return { ids: callerDomainHandles(sys), missing: sys.asi25.nextMm };
  // Only KVM holds a vCPU's ASI (vcpu->asi): generic API calls never name one.
  return { ids: [...sys.asis.keys()].filter((a) => !sys.kvm?.asis.has(a)), missing: sys.nextAsiId };
}

/** The ASI a CPU is on: its session's (2019), or its curr_asi's (2025). */
function asiOn(sys: System, cpu: number): number | null {
  return sys.asi25 ? domainHandleOn(sys, cpu) : sys.cpus[cpu].session.asi;
}

function resolveCall(sys: System, ch: Choice, weights: Weights): Op {
  const k = sys.kernel;
  const { ids: asis, missing } = asiIds(sys);
  const plain = !ECONOMICAL.has(weights);
  const oneIn = plain ? PLAIN_MISSING_ID_ONE_IN : MISSING_ID_ONE_IN;
  const asi = pickId(asis, ch.a, missing, oneIn);
  const idle = [...k.tasks.keys()].filter((t) => !k.current.includes(t));
  const picked = pickKind(weights, ch.kind);
  const kind = plain || wantsMissing(ch.a) ? picked : creatorFor(sys, picked, idle);
  const reached = !plain && FREES.has(kind) ? reachedAllocations(sys) : undefined;
  const hot = (o: { readonly alloc: number }) => reached?.has(o.alloc) === true;
  const free = <T extends { readonly id: number }>(objs: readonly T[], isHot: (o: T) => boolean, n: number) =>
    reached ? pickFree(objs, isHot, n, k.nextId) : pickId(objs.map((o) => o.id), n, k.nextId, oneIn);
  switch (kind) {
    case 'asi_create':
      // The 2025 design's asi_init takes no mapping flags.
      return { op: 'asi_create', flags: sys.asi25 ? 0 : ch.b % 16 === 15 ? 0x20 : ch.b % 32 };
    case 'asi_destroy':
      return { op: 'asi_destroy', asi };
    case 'asi_map':
      return { op: 'asi_map', asi, ptr: pointerFor(sys, asi, ch.b, ch.d), size: sizeFor(sys, ch.c, ch.d), level: pick(LEVELS, ch.d) };
    case 'asi_unmap': {
      const starts = sys.asis.get(asi)?.ranges.map((r) => r.ptr) ?? [];
      return { op: 'asi_unmap', asi, ptr: starts.length && ch.b % 4 !== 3 ? pick(starts, ch.b >> 2) : pointerFor(sys, asi, ch.b, ch.d) };
    }
    case 'asi_remap': {
      const starts = sys.asis.get(asi)?.ranges.map((r) => r.ptr) ?? [];
      const cur = starts.length && ch.d % 3 !== 2 ? pick(starts, ch.d) : null;
      return { op: 'asi_remap', asi, cur, ptr: pointerFor(sys, asi, ch.b, ch.d), size: sizeFor(sys, ch.c, ch.d) };
    }
    case 'asi_map_percpu':
      return { op: 'asi_map_percpu', asi, var: pick(percpuVarNames(sys), ch.b) };
    case 'asi_unmap_percpu':
      return { op: 'asi_unmap_percpu', asi, var: pick(percpuVarNames(sys), ch.b) };
    case 'asi_map_module':
      return { op: 'asi_map_module', asi, module: pickId([...k.modules.keys()], ch.b, k.nextId, oneIn) };
    case 'task_create':
      return { op: 'task_create', ...memcgOf(ch.c) };
    case 'task_exit': {
      const tasks = (ch.b % 8 === 6 ? k.current : idle).map((t) => k.tasks.get(t)!);
      return { op: 'task_exit', task: free(tasks, (t) => hot(k.vmAreas.get(t.stack)!) || hot(k.kmallocs.get(t.struct)!), ch.b) };
    }
    case 'vmalloc':
      return { op: 'vmalloc', pages: vmallocPages(sys, ch, plain), sensitive: ch.c % 2 === 0 };
    case 'vfree':
      return { op: 'vfree', id: free([...k.vmAreas.values()].filter((v) => sys.mem.allocs.get(v.alloc)?.kind === 'vmalloc'), hot, ch.b) };
    case 'kmalloc':
      return kmallocOp(sys, ch, plain);
    case 'kfree':
      return { op: 'kfree', id: free([...k.kmallocs.values()].filter((o) => o.kind === 'kmalloc'), hot, ch.b) };
    case 'module_load':
      return { op: 'module_load', pages: 1 + (ch.b % 4) };
    case 'module_unload':
      return { op: 'module_unload', id: free([...k.modules.values()], hot, ch.b) };
    case 'fail_alloc':
      return { op: 'fail_alloc', after: ch.b % 6 };
    case 'asi_enter':
      return { op: 'asi_enter', cpu: ch.b % sys.config.cpus, asi, intr: !plain && ch.c % 4 === 3 ? [] : eventsFor(sys, ch.d, 0, !plain) };
    case 'asi_exit': {
      const cpu = ch.b % sys.config.cpus;
      const own = asiOn(sys, cpu);
      return { op: 'asi_exit', cpu, asi: own !== null && ch.a % 4 !== 3 ? own : asi, intr: eventsFor(sys, ch.d) };
    }
    case 'interrupt': {
      const kind = pick(EVENT_KINDS, ch.c);
      return { op: 'interrupt', cpu: ch.b % sys.config.cpus, kind, ...(kind !== 'switch' && ch.c % 3 === 2 ? { va: touchedVa(sys, ch.a) } : {}), intr: eventsFor(sys, ch.d) };
    }
    case 'access': {
      const cpu = ch.b % sys.config.cpus;
      // Economical: half the accesses of an isolated CPU go where its ASI maps; they hit, and it stays isolated.
      const aimed = plain ? undefined : ch.a % 2 ? isolatedTarget(sys, cpu, ch.a >> 1) : undefined;
      return { op: 'access', cpu, va: (aimed ?? touchedVa(sys, plain ? ch.a : ch.a >> 1)) + (ch.c % 2) * 8, access: pick(ACCESS_KINDS, ch.c >> 1), intr: eventsFor(sys, ch.d) };
    }
    case 'schedule':
      return { op: 'schedule', cpu: ch.b % sys.config.cpus, task: pickId(ch.a % 8 === 6 ? k.current : idle, ch.a, k.nextId, oneIn), intr: eventsFor(sys, ch.d) };
    case 'secretmem_fault':
      return { op: 'secretmem_fault' };
    case 'secretmem_free':
      return { op: 'secretmem_free', id: free([...k.kmallocs.values()].filter((o) => o.kind === 'secretmem'), hot, ch.b) };
    case 'flush_tlb_mm':
      return { op: 'flush_tlb_mm', cpu: ch.b % sys.config.cpus, intr: eventsFor(sys, ch.d) };
    default:
      return resolveKvmOp(sys, kind, ch);
  }
}
