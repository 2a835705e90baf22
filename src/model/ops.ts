// The operation alphabet: one JSON-serialisable value per kernel call, each printable as one line.
// Saved counterexamples hold these, so a field once published keeps its meaning.

import { type Geometry, type PgtLevel, LEVEL_NAMES, PGT_LEVEL_PTE, formatSize, formatVa } from './geometry.ts';
import { type PercpuVar, PERCPU_VAR_NAMES } from './kernel.ts';
import { formatMapFlags } from './asi.ts';

export type Op =
  | { readonly op: 'asi_create'; readonly flags: number }
  | { readonly op: 'asi_destroy'; readonly asi: number }
  | { readonly op: 'asi_map'; readonly asi: number; readonly ptr: number; readonly size: number; readonly level: PgtLevel }
  | { readonly op: 'asi_unmap'; readonly asi: number; readonly ptr: number }
  | { readonly op: 'asi_remap'; readonly asi: number; readonly cur: number | null; readonly ptr: number; readonly size: number }
  | { readonly op: 'asi_map_percpu'; readonly asi: number; readonly var: PercpuVar }
  | { readonly op: 'asi_unmap_percpu'; readonly asi: number; readonly var: PercpuVar }
  | { readonly op: 'asi_map_module'; readonly asi: number; readonly module: number }
  | { readonly op: 'task_create' }
  | { readonly op: 'task_exit'; readonly task: number }
  | { readonly op: 'vmalloc'; readonly pages: number; readonly sensitive: boolean }
  | { readonly op: 'vfree'; readonly id: number }
  | { readonly op: 'kmalloc'; readonly size: number; readonly sensitive: boolean }
  | { readonly op: 'kfree'; readonly id: number }
  | { readonly op: 'module_load'; readonly pages: number }
  | { readonly op: 'module_unload'; readonly id: number }
  | { readonly op: 'fail_alloc'; readonly after: number };

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
];

export function formatOp(g: Geometry, op: Op): string {
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
      return 'task_create';
    case 'task_exit':
      return `task_exit task#${op.task}`;
    case 'vmalloc':
      return `vmalloc ${op.pages}p${op.sensitive ? ' sensitive' : ''}`;
    case 'vfree':
      return `vfree #${op.id}`;
    case 'kmalloc':
      return `kmalloc ${formatSize(op.size).slice(1)}${op.sensitive ? ' sensitive' : ''}`;
    case 'kfree':
      return `kfree #${op.id}`;
    case 'module_load':
      return `module_load ${op.pages}p`;
    case 'module_unload':
      return `module_unload module#${op.id}`;
    case 'fail_alloc':
      return `fail_alloc after ${op.after}`;
  }
}

/** Checks a value read from a file is an Op; returns a reason when it is not. */
export function validateOp(x: unknown): string | undefined {
  if (typeof x !== 'object' || x === null) return 'not an object';
  const o = x as Record<string, unknown>;
  if (typeof o.op !== 'string' || !(OP_KINDS as readonly string[]).includes(o.op)) return `unknown op ${JSON.stringify(o.op)}`;
  const int = (k: string) => (Number.isSafeInteger(o[k]) && (o[k] as number) >= 0 ? undefined : `${o.op}: field ${k} must be a non-negative integer`);
  const bool = (k: string) => (typeof o[k] === 'boolean' ? undefined : `${o.op}: field ${k} must be a boolean`);
  const fields: Record<OpKind, (() => string | undefined)[]> = {
    asi_create: [() => int('flags')],
    asi_destroy: [() => int('asi')],
    asi_map: [() => int('asi'), () => int('ptr'), () => int('size'), () => (int('level') ?? ((o.level as number) <= 4 ? undefined : `${o.op}: level must be 0-4`))],
    asi_unmap: [() => int('asi'), () => int('ptr')],
    asi_remap: [() => int('asi'), () => (o.cur === null ? undefined : int('cur')), () => int('ptr'), () => int('size')],
    asi_map_percpu: [() => int('asi'), () => percpuVar(o)],
    asi_unmap_percpu: [() => int('asi'), () => percpuVar(o)],
    asi_map_module: [() => int('asi'), () => int('module')],
    task_create: [],
    task_exit: [() => int('task')],
    vmalloc: [() => int('pages'), () => bool('sensitive')],
    vfree: [() => int('id')],
    kmalloc: [() => int('size'), () => bool('sensitive')],
    kfree: [() => int('id')],
    module_load: [() => int('pages')],
    module_unload: [() => int('id')],
    fail_alloc: [() => int('after')],
  };
  for (const check of fields[o.op as OpKind]) {
    const err = check();
    if (err) return err;
  }
  return undefined;
}

function percpuVar(o: Record<string, unknown>): string | undefined {
  return (PERCPU_VAR_NAMES as readonly unknown[]).includes(o.var) ? undefined : `${o.op}: unknown percpu variable ${JSON.stringify(o.var)}`;
}
