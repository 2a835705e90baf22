// One operation applied to the system: the kernel call it names, its return value and what the
// modelled code logged. Bad arguments give the RFC's error codes; nothing here throws on user input.

import { type Allocation } from './memory.ts';
import { type Log, log } from './trace.ts';
import { type Asi, type Config, type System } from './system.ts';
import { type Op } from './ops.ts';
import {
  ASI_MAP_ALL,
  asiCreate,
  asiDestroy,
  asiMapPercpu,
  asiMapRange,
  asiRemap,
  asiUnmap,
  asiUnmapPercpu,
  unmapFromAsis,
} from './asi.ts';
import {
  EINVAL,
  ENOENT,
  ESRCH,
  boot,
  kfree,
  kmalloc,
  moduleLoad,
  moduleUnload,
  taskCreate,
  taskExit,
  vfree,
  vmalloc,
} from './kernel.ts';
import { vaLimit } from './geometry.ts';

export interface Outcome {
  /** 0, a new object's id (asi_create, task_create, allocations), or -errno. */
  readonly ret: number;
  readonly log: Log;
}

export function createSystem(config: Config): System {
  return boot(config);
}

const MAX_PAGES = 64;

function withAsi(sys: System, id: number, out: Log, f: (asi: Asi) => number): number {
  const asi = sys.asis.get(id);
  if (!asi) {
    log(out, 'note', `asi#${id} does not exist`);
    return EINVAL;
  }
  return f(asi);
}

function allocationOf(sys: System, allocId: number | undefined): Allocation | undefined {
  return allocId === undefined ? undefined : sys.mem.allocs.get(allocId);
}

function created(x: { id: number } | number): number {
  return typeof x === 'number' ? x : x.id;
}

/** Applies one operation. The system is changed in place; clone first to keep the old state. */
export function step(sys: System, op: Op): Outcome {
  sys.ghost = { events: [], cleared: [] };
  const out: Log = [];
  const ret = apply(sys, op, out);
  return { ret, log: out };
}

function apply(sys: System, op: Op, out: Log): number {
  const k = sys.kernel;
  switch (op.op) {
    case 'asi_create':
      if (op.flags & ~ASI_MAP_ALL) return EINVAL;
      return asiCreate(sys, op.flags, out);
    case 'asi_destroy':
      return withAsi(sys, op.asi, out, (asi) => (asiDestroy(sys, asi, out), 0));
    case 'asi_map':
      if (op.ptr + op.size > vaLimit(sys.g) || op.size === 0) return EINVAL;
      return withAsi(sys, op.asi, out, (asi) => asiMapRange(sys, asi, op.ptr, op.size, op.level, out));
    case 'asi_unmap':
      return withAsi(sys, op.asi, out, (asi) => asiUnmap(sys, asi, op.ptr, out));
    case 'asi_remap':
      if (op.ptr + op.size > vaLimit(sys.g) || op.size === 0) return EINVAL;
      return withAsi(sys, op.asi, out, (asi) => asiRemap(sys, asi, op.cur, op.ptr, op.size, out).ret);
    case 'asi_map_percpu':
      return withAsi(sys, op.asi, out, (asi) => asiMapPercpu(sys, asi, op.var, out));
    case 'asi_unmap_percpu':
      return withAsi(sys, op.asi, out, (asi) => (asiUnmapPercpu(sys, asi, op.var, out), 0));
    case 'asi_map_module': {
      // asi_map_module() (patch 09): find_module() failing is -ESRCH.
      const m = k.modules.get(op.module);
      if (!m) return ESRCH;
      return withAsi(sys, op.asi, out, (asi) => asiMapRange(sys, asi, m.va, m.pages * 4096, 0, out));
    }
    case 'task_create':
      return taskCreate(sys);
    case 'task_exit': {
      const t = k.tasks.get(op.task);
      if (t && !k.current.includes(op.task)) {
        unmapFromAsis(sys, allocationOf(sys, k.vmAreas.get(t.stack)?.alloc), out);
        unmapFromAsis(sys, allocationOf(sys, k.kmallocs.get(t.struct)?.alloc), out);
      }
      return taskExit(sys, op.task);
    }
    case 'vmalloc':
      if (op.pages < 1 || op.pages > MAX_PAGES) return EINVAL;
      return created(vmalloc(sys, op.pages, op.sensitive));
    case 'vfree': {
      const area = k.vmAreas.get(op.id);
      if (!area || allocationOf(sys, area.alloc)?.kind !== 'vmalloc') return ENOENT;
      unmapFromAsis(sys, allocationOf(sys, area.alloc), out);
      vfree(sys, op.id);
      return 0;
    }
    case 'kmalloc':
      if (op.size < 1 || op.size > MAX_PAGES * 4096) return EINVAL;
      return created(kmalloc(sys, op.size, op.sensitive));
    case 'kfree': {
      const obj = k.kmallocs.get(op.id);
      if (!obj || allocationOf(sys, obj.alloc)?.kind !== 'kmalloc') return ENOENT;
      unmapFromAsis(sys, allocationOf(sys, obj.alloc), out);
      kfree(sys, op.id);
      return 0;
    }
    case 'module_load':
      if (op.pages < 1 || op.pages > MAX_PAGES) return EINVAL;
      return created(moduleLoad(sys, op.pages));
    case 'module_unload': {
      const m = k.modules.get(op.id);
      if (!m) return ENOENT;
      unmapFromAsis(sys, allocationOf(sys, m.alloc), out);
      moduleUnload(sys, op.id);
      return 0;
    }
    case 'fail_alloc':
      sys.mem.failIn = op.after;
      return 0;
  }
}
