// Kernel memory as its callers see it, stated through the model's own calls (vmalloc, vfree,
// kmalloc, kfree, task_create, task_exit, each a step): what a free has done by the time it
// returns. Behaviour, not the allocator's bookkeeping, so that an allocator built another way
// (SLUB caches shared by every caller, a lazy vfree) must still pass them as they stand.

import { describe, expect, test } from 'vitest';
import { createSystem, step } from '../src/model/step.ts';
import type { Op } from '../src/model/ops.ts';
import type { Config, System } from '../src/model/system.ts';
import { PAGE_SIZE, PGT_LEVEL_PTE } from '../src/model/mm/geometry.ts';
import { framesReached } from '../src/model/mm/pagetable.ts';
import { type Owner, allocationOfFrame, objectOwner, objectSensitive, objectsInFrame } from '../src/model/mm/memory.ts';
import { EBUSY, ENOENT, TASK_STRUCT_SIZE } from '../src/model/mm/kernel.ts';
import { translate, usableTlbEntries } from '../src/model/x86/cpu.ts';

function run(sys: System, op: Op): number {
  const ret = step(sys, op).ret;
  expect(ret, JSON.stringify(op)).toBeGreaterThanOrEqual(0);
  return ret;
}

/** What the bytes [va, va + size) of the kernel's address space hold: each object's owner and whether it is a secret. */
function objectsAt(sys: System, va: number, size: number): { owner: Owner; sensitive: boolean }[] {
  return framesReached(sys.g, sys.tables, sys.kernel.pgd, va, va + size)
    .flatMap((fb) => objectsInFrame(sys.mem, fb.frame, fb.lo, fb.hi))
    .map((o) => ({ owner: objectOwner(o), sensitive: objectSensitive(o) }));
}

function framesOf(sys: System, va: number, size: number): number[] {
  return framesReached(sys.g, sys.tables, sys.kernel.pgd, va, va + size).map((fb) => fb.frame);
}

const freeFrames = (sys: System) => [...sys.mem.frameAlloc.keys()].filter((f) => !allocationOfFrame(sys.mem, f));

describe('vfree: flush_tlb_kernel_range', () => {
  for (const cpus of [2, 4]) {
    test(`vfree of an area an ASI maps leaves no CPU isolated in that ASI translating it; of any area, once the lazy list is purged, no CPU that read it still translates any of its pages, isolated or not (${cpus} CPUs)`, () => {
      const sys = createSystem({ geometry: 'small', cpus, profile: 'fixed' });
      const pages = 3;
      const areas = [run(sys, { op: 'vmalloc', pages, sensitive: false }), run(sys, { op: 'vmalloc', pages, sensitive: false })];
      const vas = areas.map((id) => Array.from({ length: pages }, (_, p) => sys.kernel.vmAreas.get(id)!.va + p * PAGE_SIZE));
      const asi = run(sys, { op: 'asi_create', flags: 0 });
      run(sys, { op: 'asi_map', asi, ptr: vas[0][0], size: pages * PAGE_SIZE, level: PGT_LEVEL_PTE });
      const cached = (area: number) => sys.cpus.map((c) => usableTlbEntries(c).filter(({ vpn }) => vas[area].includes(vpn * PAGE_SIZE)).length);
      for (const cpu of sys.cpus) for (const page of vas.flat()) run(sys, { op: 'access', cpu: cpu.id, va: page, access: 'read', intr: [] });
      // cpu0 enters the ASI (one CPU at a time: asiEnterExclusive) and reads the area it maps.
      run(sys, { op: 'asi_enter', cpu: 0, asi, intr: [] });
      expect(step(sys, { op: 'asi_enter', cpu: 1, asi, intr: [] }).ret).toBe(EBUSY);
      for (const page of vas[0]) run(sys, { op: 'access', cpu: 0, va: page, access: 'read', intr: [] });
      const none = sys.cpus.map(() => 0);
      expect(cached(0), 'every CPU caches every page of the area the ASI maps').toEqual(sys.cpus.map(() => pages));
      expect(cached(1), 'the isolated CPU does not reach the other area').toEqual(sys.cpus.map((c) => (c.id === 0 ? 0 : pages)));
      for (const id of areas) run(sys, { op: 'vfree', id });
      // The ASI's range goes with the memory (freeUnmapsAsi), and asi_unmap shoots it down at once
      // on the CPU isolated in it; the other CPUs' kernel entries wait for the purge, as in 5.2.
      expect(cached(0)[0]).toBe(0);
      // 5.2's lazy vfree owes the rest of the flush to the purge; module_load's set_memory_ro purges.
      expect(sys.kernel.vmapPurge).not.toEqual([]);
      run(sys, { op: 'module_load', pages: 1 });
      for (const area of [0, 1]) {
        expect(cached(area)).toEqual(none);
        for (const cpu of sys.cpus) for (const page of vas[area]) expect(translate(sys, cpu, page, 'read'), `cpu${cpu.id} reads ${page.toString(16)}`).toBe(false);
      }
    });
  }
});

/** SLUB caches on: several objects to a slab page. */
const SLAB: Config = { geometry: 'small', cpus: 2, profile: 'fixed', kernel: { slab: true } };

describe('kfree and kmem_cache_free (slab caches)', () => {
  const kmalloc = (sys: System, size: number, sensitive: boolean) => {
    const id = run(sys, { op: 'kmalloc', size, sensitive });
    return { id, va: sys.kernel.kmallocs.get(id)!.va };
  };

  test("a freed object is gone and its slot free again: a second kfree finds nothing (-ENOENT), the next kmalloc of its size returns its address", () => {
    const sys = createSystem(SLAB);
    const a = kmalloc(sys, 0x40, true);
    kmalloc(sys, 0x40, false);
    run(sys, { op: 'kfree', id: a.id });
    expect(step(sys, { op: 'kfree', id: a.id }).ret).toBe(ENOENT);
    expect(kmalloc(sys, 0x40, false).va).toBe(a.va);
  });

  test("a freed object's bytes hold neither its owner nor its secret: a task's task_struct after task_exit, a sensitive kmalloc after kfree", () => {
    const sys = createSystem(SLAB);
    const task = run(sys, { op: 'task_create' });
    const structVa = sys.kernel.tasks.get(task)!.structVa;
    expect(objectsAt(sys, structVa, TASK_STRUCT_SIZE)).toContainEqual({ owner: { kind: 'task', id: task }, sensitive: true });
    run(sys, { op: 'task_exit', task });
    expect(objectsAt(sys, structVa, TASK_STRUCT_SIZE).filter((o) => o.owner.kind === 'task' && o.owner.id === task)).toEqual([]);
    expect(objectsAt(sys, structVa, TASK_STRUCT_SIZE).filter((o) => o.sensitive)).toEqual([]);
    const secret = kmalloc(sys, 0x40, true);
    expect(objectsAt(sys, secret.va, 0x40).some((o) => o.sensitive)).toBe(true);
    run(sys, { op: 'kfree', id: secret.id });
    expect(objectsAt(sys, secret.va, 0x40).filter((o) => o.sensitive)).toEqual([]);
  });

  test('kmem_cache_free frees its own object only: a neighbour on the same slab page keeps its page, its owner and its secret', () => {
    // task_structs packed as 5.2 packs them (taskStructOwnPages off): neighbours share pages.
    const sys = createSystem({ ...SLAB, options: { taskStructOwnPages: false } });
    const task = run(sys, { op: 'task_create' });
    const other = run(sys, { op: 'task_create' });
    const [a, b] = [task, other].map((t) => sys.kernel.tasks.get(t)!.structVa);
    expect(framesOf(sys, b, TASK_STRUCT_SIZE).filter((f) => framesOf(sys, a, TASK_STRUCT_SIZE).includes(f)), 'the two task_structs share a slab page').not.toEqual([]);
    run(sys, { op: 'task_exit', task });
    expect(objectsAt(sys, b, TASK_STRUCT_SIZE)).toContainEqual({ owner: { kind: 'task', id: other }, sensitive: true });
    expect(framesOf(sys, b, TASK_STRUCT_SIZE).every((f) => allocationOfFrame(sys.mem, f))).toBe(true);
  });

  test('once a series of kmallocs is kfreed, its slab pages hold no object, and the same series again takes no new page (the cache keeps its empty slabs up to min_partial)', () => {
    const sys = createSystem(SLAB);
    const free = freeFrames(sys);
    const series = () => Array.from({ length: 20 }, (_, i) => kmalloc(sys, 0x800, i % 2 === 0));
    const objects = series();
    const pages = new Set(objects.flatMap((o) => framesOf(sys, o.va, 0x800)));
    expect(freeFrames(sys).length, 'the kmallocs took new slab pages').toBeLessThan(free.length);
    for (const o of objects) run(sys, { op: 'kfree', id: o.id });
    for (const f of pages) expect(objectsInFrame(sys.mem, f), `pfn ${f}`).toEqual([]);
    const kept = freeFrames(sys);
    series();
    expect(freeFrames(sys)).toEqual(kept);
  });
});
