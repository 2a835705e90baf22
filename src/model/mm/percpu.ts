// Percpu memory as Linux 5.2 lays it out on x86-64 (mm/percpu.c, pcpu_embed_first_chunk): each CPU
// has a unit of the first chunk in the direct map, holding the static percpu variables and then the
// dynamic area that alloc_percpu() carves objects from, side by side, at the same offset in every
// CPU's unit. Mapping one object's page therefore shows its neighbours, static or dynamic: another
// VM's srcu_data beside this VM's.

import { PAGE_SIZE, roundUp } from './geometry.ts';
import { type Allocation, type Owner, type Part, allocationFails, newPartId, objectFrames, setParts } from './memory.ts';
import { ENOMEM, directMapVa } from './kernel.ts';
import { type PercpuObject, type System, legacyMemory } from '../system.ts';

/**
 * Static percpu variables, at their offsets in each CPU's unit. The order follows the percpu
 * sections: ..first (fixed_percpu_data), ..page_aligned (cpu_asi_session), ..read_mostly and the
 * rest, so mapping one variable's page shows its neighbours.
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
  // What patch 24 maps for KVM: context_tracking, irq_stat, current_vcpu.
  context_tracking: { offset: 0x2600, size: 0x10 },
  irq_stat: { offset: 0x2640, size: 0x40 },
  current_vcpu: { offset: 0x2680, size: 0x8 },
  // asi-check 0.1 put kvm->srcu.sda here, one static slot shared by the VMs (KernelConfig.layout 1);
  // it is an alloc_percpu() object of each VM's own (srcu_data below).
  kvm_srcu_data: { offset: 0x2700, size: 0x100, legacy: true },
} as const;
export type PercpuVar = keyof typeof PERCPU_VARS;
export const PERCPU_VAR_NAMES = Object.keys(PERCPU_VARS) as PercpuVar[];

/**
 * The first chunk's dynamic area: PERCPU_DYNAMIC_RESERVE is 28 KB a unit on 64-bit; the small
 * geometry's 512 frames give 4 pages a CPU.
 */
const DYNAMIC_PAGES = { real: 7, small: 4 } as const;

/** The static part of a unit: with percpuSecretsOwnPage the CSPRNG state has a page of its own at the end. */
function staticPages(secretsOwnPage: boolean): number {
  return secretsOwnPage ? 5 : 4;
}

/** pcpu_alloc's PCPU_MIN_ALLOC_SIZE: offsets and sizes are kept in 4-byte units. */
const PCPU_MIN_ALLOC_SIZE = 4;

/**
 * Each CPU's unit: the static variables of this kernel, then the dynamic area. With
 * percpuSecretsOwnPage the CSPRNG state moves to a page of its own after the others and fills it,
 * so that no page-granular mapping of anything else can reach it.
 */
export function percpuUnit(sys: System): { pages: number; parts: Part[]; dynamic: { start: number; end: number } } {
  const legacy = legacyMemory(sys);
  const own = sys.options.percpuSecretsOwnPage;
  const parts: Part[] = [];
  for (const name of PERCPU_VAR_NAMES) {
    const v = PERCPU_VARS[name];
    if ('legacy' in v && !legacy) continue;
    const sensitive = 'sensitive' in v && v.sensitive;
    parts.push(sensitive && own ? { id: parts.length, name, offset: 0x4000, size: PAGE_SIZE, sensitive } : { id: parts.length, name, offset: v.offset, size: v.size, sensitive });
  }
  const start = staticPages(own) * PAGE_SIZE;
  const end = legacy ? start : start + DYNAMIC_PAGES[sys.g.name] * PAGE_SIZE;
  return { pages: end / PAGE_SIZE, parts, dynamic: { start, end } };
}

function unitOf(sys: System, cpu: number) {
  return sys.mem.allocs.get(sys.kernel.percpu[cpu])!;
}

/** The static variable `name` in this kernel's units, if it has one (dynamic objects have an owner). */
export function percpuVar(sys: System, name: PercpuVar): Part | undefined {
  return unitOf(sys, 0).parts!.find((p) => p.name === name && !p.owner);
}

/** per_cpu_ptr(p, cpu) for a percpu offset: units live in the direct map. */
export function perCpuOffsetPtr(sys: System, offset: number, cpu: number): number {
  return directMapVa(sys, unitOf(sys, cpu).frames[0]) + offset;
}

/** per_cpu_ptr(&var, cpu) of a static variable of this kernel. */
export function perCpuPtr(sys: System, name: PercpuVar, cpu: number): number {
  return perCpuOffsetPtr(sys, percpuVar(sys, name)!.offset, cpu);
}

/** The static variables this kernel has (layout 1 has one more). */
export function percpuVarNames(sys: System): PercpuVar[] {
  return PERCPU_VAR_NAMES.filter((n) => percpuVar(sys, n) !== undefined);
}

/**
 * pcpu_alloc (first chunk): the lowest offset of the dynamic area where size bytes at `align` are
 * free, and the object in every CPU's unit there. A full first chunk is -ENOMEM here (5.2 would
 * create a chunk in vmalloc space: not modelled).
 */
export function allocPercpu(sys: System, size: number, align: number, obj: { name: string; owner: Owner; sensitive: boolean }): PercpuObject | number {
  if (allocationFails(sys.mem)) return ENOMEM;
  const k = sys.kernel;
  const bytes = roundUp(size, PCPU_MIN_ALLOC_SIZE);
  const used = [...k.percpuObjects.values()].sort((a, b) => a.offset - b.offset);
  let offset = roundUp(k.percpuDynamic.start, align);
  for (const u of used) {
    if (u.offset >= offset + bytes) break;
    offset = Math.max(offset, roundUp(u.offset + u.size, align));
  }
  if (offset + bytes > k.percpuDynamic.end) return ENOMEM;
  const o: PercpuObject = { id: newPartId(sys.mem), offset, size: bytes, ...obj };
  k.percpuObjects.set(o.id, o);
  for (const unit of k.percpu) {
    const a = sys.mem.allocs.get(unit)!;
    setParts(sys.mem, a, [...a.parts!, { id: o.id, name: o.name, offset, size: bytes, sensitive: o.sensitive, owner: o.owner }]);
  }
  return o;
}

/** free_percpu: the object leaves every CPU's unit. */
export function freePercpu(sys: System, id: number): void {
  const k = sys.kernel;
  if (!k.percpuObjects.delete(id)) return;
  for (const unit of k.percpu) {
    const a = sys.mem.allocs.get(unit)!;
    setParts(sys.mem, a, a.parts!.filter((p) => p.id !== id));
  }
}

/** The memory behind a percpu object, as the free path unmaps it from ASIs: in each CPU's unit, the frames it lies on. */
export function percpuObjectMemory(sys: System, id: number): Allocation[] {
  const o = sys.kernel.percpuObjects.get(id);
  if (!o) return [];
  return sys.kernel.percpu.map((unit) => objectFrames(sys.mem.allocs.get(unit)!, o.name, o.offset, o.size));
}
