// Memory as Linux 5.2 lays it out (src/model/mm: slab.ts, vmalloc.ts, percpu.ts), as a specification:
// SLUB's slab geometry, the lazy vfree, kvzalloc's fallback, percpu chunks and the vmemmap. What a
// mapping can expose depends on where objects land, so each rule is stated where the kernel states it.

import { describe, expect, test } from 'vitest';
import { calculateOrder, kmallocCache, kvVa } from '../src/model/mm/slab.ts';
import { createSystem, step } from '../src/model/step.ts';
import { PAGE_SIZE, PGT_LEVEL_PMD } from '../src/model/mm/geometry.ts';
import { walk } from '../src/model/mm/pagetable.ts';
import { STRUCT_PAGE_SIZE, structPageVa } from '../src/model/mm/kernel.ts';
import { allocPercpu, freePercpu, perCpuOffsetPtr } from '../src/model/mm/percpu.ts';
import type { Config, System } from '../src/model/system.ts';
import type { Op } from '../src/model/ops.ts';
import { runOps } from '../src/check/run.ts';

const SMALL: Config = { geometry: 'small', cpus: 2, profile: 'fixed' };

describe('SLUB caches (mm/slub.c calculate_order, mm/slab_common.c)', () => {
  test('kmalloc-8 to kmalloc-8k, the 96 and 192 byte caches among them; kmalloc_large above', () => {
    const sys = createSystem(SMALL);
    expect([1, 8, 9, 33, 65, 97, 129, 193, 0x190, 513, 4097, 8192, 8193].map((n) => kmallocCache(sys, n)?.name ?? 'kmalloc_large')).toEqual([
      'kmalloc-8', 'kmalloc-8', 'kmalloc-16', 'kmalloc-64', 'kmalloc-96', 'kmalloc-128', 'kmalloc-192', 'kmalloc-256', 'kmalloc-512', 'kmalloc-1k', 'kmalloc-8k', 'kmalloc-8k', 'kmalloc_large',
    ]);
  });

  test('slab orders with 2 CPUs (slub_min_objects 12, slub_max_order 3), as /proc/slabinfo shows them', () => {
    const orders = Object.fromEntries(
      ([['kmalloc-8', 8], ['kmalloc-192', 192], ['kmalloc-512', 512], ['kmalloc-1k', 1024], ['kmalloc-4k', 4096], ['kmalloc-8k', 8192], ['task_struct', 0x1a40], ['x86_fpu', 0x1040], ['kvm_vcpu', 0x4200]] as const).map(([n, size]) => [n, [calculateOrder(size, 2), Math.floor((PAGE_SIZE << calculateOrder(size, 2)) / size)]]),
    );
    expect(orders).toEqual({
      'kmalloc-8': [0, 512],
      'kmalloc-192': [0, 21],
      'kmalloc-512': [1, 16],
      'kmalloc-1k': [2, 16],
      'kmalloc-4k': [3, 8],
      'kmalloc-8k': [3, 4],
      task_struct: [3, 4],
      x86_fpu: [3, 7],
      kvm_vcpu: [3, 1],
    });
    // One CPU asks for fewer objects a slab (slub_min_objects 8): kmalloc-512 fits one page.
    expect(calculateOrder(512, 1)).toBe(0);
  });

  test('every caller of a size shares its cache: a host object lands on the page of the ASI\'s own range records', () => {
    const sys = createSystem(SMALL);
    step(sys, { op: 'asi_create', flags: 0 });
    const records = [...sys.kernel.kmallocs.values()].filter((o) => o.kind === 'asi');
    const range = records.find((o) => sys.mem.allocs.get(o.alloc)!.slab!.cache === 'kmalloc-64')!;
    const host = sys.kernel.kmallocs.get(step(sys, { op: 'kmalloc', size: 0x40, sensitive: true }).ret)!;
    expect(host.alloc).toBe(range.alloc);
  });

  test("asi_destroy's kfree of struct asi is the kernel's free path: with freeUnmapsAsi it leaves another ASI that maps its kmalloc-2k page", () => {
    // Found by `asi-check fuzz --profile fixed --cpus 4 --seed 16`: with 4 CPUs kmalloc-2k puts two
    // objects on a page, asi#1 maps the page holding both struct asi, asi#2 is destroyed, and the
    // next kmalloc-2k (a secret) takes its slot inside asi#1.
    const ops = (sys: System): Op[] => {
      const struct = sys.kernel.kmallocs.get(sys.asis.get(2)!.struct)!;
      return [{ op: 'asi_map', asi: 1, ptr: struct.va - (struct.va % PAGE_SIZE), size: PAGE_SIZE, level: 0 }, { op: 'asi_destroy', asi: 2 }, { op: 'kmalloc', size: 0x800, sensitive: true }];
    };
    const run = (config: Config) => {
      const sys = createSystem(config);
      step(sys, { op: 'asi_create', flags: 0 });
      step(sys, { op: 'asi_create', flags: 0 });
      return runOps(config, [{ op: 'asi_create', flags: 0 }, { op: 'asi_create', flags: 0 }, ...ops(sys)], { stopOn: 'ISOLATION' }).failure;
    };
    const fixed: Config = { geometry: 'small', cpus: 4, profile: 'fixed' };
    expect(run(fixed)).toBeUndefined();
    expect(run({ ...fixed, options: { freeUnmapsAsi: false } })?.violations.find((v) => v.invariant === 'ISOLATION')?.message).toContain('kmalloc-2k');
  });

  test('a burst of one size class fills slab pages: no free slot is left on a full one', () => {
    const sys = createSystem(SMALL);
    const last = sys.kernel.kmallocs.get(step(sys, { op: 'kmalloc', size: 0x1000, sensitive: true, count: 8 }).ret)!;
    const slab = sys.mem.allocs.get(last.alloc)!;
    expect(slab.parts!.length).toBe(8);
    expect(sys.kernel.caches.get('kmalloc-4k')!.slabs.get(slab.id)).toEqual([]);
  });
});

describe('vmalloc space (mm/vmalloc.c): vfree is lazy', () => {
  function vmalloc(sys: System): number {
    return sys.kernel.vmAreas.get(step(sys, { op: 'vmalloc', pages: 1, sensitive: true }).ret)!.va;
  }

  test("vfree clears the PTEs and frees the pages at once, but its VA is handed out again only after a purge's flush", () => {
    const sys = createSystem(SMALL);
    const a = vmalloc(sys);
    const area = [...sys.kernel.vmAreas.values()].find((v) => v.va === a)!;
    const frame = sys.mem.allocs.get(area.alloc)!.frames[0];
    step(sys, { op: 'vfree', id: area.id });
    expect(walk(sys.g, sys.tables, sys.kernel.pgd, a).ok).toBe(false);
    expect(sys.mem.frameAlloc[frame]).toBe(-1);
    expect(sys.kernel.vmapPurge.map((v) => v.va)).toEqual([a]);
    expect(vmalloc(sys)).not.toBe(a);
    // module_load makes the module's text read-only: set_memory_ro's vm_unmap_aliases purges.
    step(sys, { op: 'module_load', pages: 1 });
    expect(sys.kernel.vmapPurge).toEqual([]);
    expect(vmalloc(sys)).toBe(a);
  });

  test('more lazily freed pages than lazy_max_pages purge at the vfree that passes it', () => {
    const sys = createSystem(SMALL);
    const ids = Array.from({ length: 30 }, () => step(sys, { op: 'vmalloc', pages: 6, sensitive: false }).ret);
    let purgedAt = -1;
    ids.forEach((id, i) => {
      step(sys, { op: 'vfree', id });
      if (purgedAt < 0 && sys.kernel.vmapPurge.length === 0) purgedAt = i;
    });
    // fls(2 CPUs) * 512 frames / 8 = 128 pages; each area is 7 with its guard page: the 19th vfree passes it.
    expect(purgedAt).toBe(18);
  });
});

describe("kvzalloc (5.2 kvmalloc_node): kmalloc first, vmalloc when the buddy allocator cannot serve it", () => {
  test("KVM's memslots arrays (45 KiB) are kmalloc_large order-4 blocks; a failed kmalloc falls back to vmalloc", () => {
    const sys = createSystem(SMALL);
    step(sys, { op: 'kvm_create_vm' });
    const vm = sys.kvm!.vms.get(1)!;
    expect(vm.memslots.map((m) => m.via)).toEqual(['kmalloc', 'kmalloc']);
    const block = sys.mem.allocs.get(sys.kernel.kmallocs.get(vm.memslots[0].id)!.alloc)!;
    expect([block.frames.length, block.frames[0] % 16]).toEqual([16, 0]);
    // The next allocation, the copy's kmalloc, fails: the copy is vmalloc'd.
    step(sys, { op: 'fail_alloc', after: 0 });
    expect(step(sys, { op: 'kvm_set_memory_region', vm: 1, slot: 0, pages: 1 }).ret).toBe(0);
    expect(vm.memslots[0].via).toBe('vmalloc');
    expect(sys.kernel.vmAreas.get(vm.memslots[0].id)!.va).toBe(kvVa(sys, vm.memslots[0]));
  });
});

describe('percpu (mm/percpu.c): the first chunk has a dynamic area after the static variables', () => {
  test('alloc_percpu puts an object at one offset in every CPU unit, first fit at its alignment, beside the others; free_percpu gives it back', () => {
    const sys = createSystem(SMALL);
    const owner = { kind: 'kernel', id: 0 } as const;
    const a = allocPercpu(sys, 0x140, 64, { name: 'a', owner, sensitive: false });
    const b = allocPercpu(sys, 0x10, 64, { name: 'b', owner, sensitive: true });
    if (typeof a === 'number' || typeof b === 'number') throw new Error('alloc_percpu failed');
    expect(a.offset).toBe(sys.kernel.percpuDynamic.start);
    expect(b.offset).toBe(a.offset + 0x140);
    for (const cpu of [0, 1]) {
      const va = perCpuOffsetPtr(sys, b.offset, cpu);
      expect(Math.floor(va / PAGE_SIZE)).toBe(Math.floor(perCpuOffsetPtr(sys, a.offset, cpu) / PAGE_SIZE));
    }
    freePercpu(sys, a.id);
    const c = allocPercpu(sys, 0x100, 64, { name: 'c', owner, sensitive: false });
    expect(typeof c !== 'number' && c.offset).toBe(a.offset);
  });
});

describe('the vmemmap (sparse-vmemmap): a struct page per frame, mapped at boot with a 2M page', () => {
  test("struct page of frame f at VMEMMAP_START + f * 64, in the kernel page table's PMD large page", () => {
    const sys = createSystem(SMALL);
    const va = structPageVa(sys, 300);
    expect(va - sys.kernel.layout.vmemmap).toBe(300 * STRUCT_PAGE_SIZE);
    const w = walk(sys.g, sys.tables, sys.kernel.pgd, va);
    expect(w.ok && w.leaf.level).toBe(PGT_LEVEL_PMD);
    expect(w.ok && sys.mem.allocs.get(sys.mem.frameAlloc[w.leaf.frame])!.kind).toBe('memmap');
  });
});
