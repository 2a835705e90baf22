// The 2025 design's runtime (src/model/asi25), first slice: the KUnit cases of arch/x86/mm/asi_test.c
// that exercise it, translated assertion for assertion, and what patches 03-05 and 10 state about
// interrupts and faults, as scenarios on the model's CPUs with every invariant judged at every
// micro-step.
//
// Two versions of asi_test.c go with the series: the one of the posted API (bjackman/linux, with
// asi_init_class and ASI_CLASS_TEST: test_asi_state, test_alloc_sensitive_nonsensitive) and the one
// published in the series' branch (googleprodkernel/linux-kvm asi-rfcv2-preview, an older API with
// asi_register_class and enter/exit hooks: test_asi_hooks, test_asi_intr, test_asi_intr_nesting and
// the mapping cases). The hooks' counters translate to the CR3 writes they were called beside
// (post_asi_enter: a write of the domain's CR3; pre_asi_exit: a write of the unrestricted one).
// A domain maps what the series maps (the global nonsensitive pgd: kernel text and data, static
// percpu data, cpu_entry_area, espfix, vmemmap, buddy allocations without __GFP_SENSITIVE, vmalloc
// areas), so entry code runs on it, and a handler's read of __GFP_SENSITIVE memory takes patch
// 10's fault path. The September 2025 series' test_alloc_sensitive_nonsensitive runs on asi25-dm
// (its direct map), the branch's change_page_attr cases on both direct maps, and page_alloc_test.c's
// test_pindex_helpers on the per-CPU lists' index arithmetic (src/model/mm/pcp.ts), which the
// September direct map's allocator uses.
// test_percpu_alloc's dynamic allocation lands in the first chunk, the model's only one: on the
// posted code that part of the case fails (F45).

import { describe, expect, test } from 'vitest';
import { accessVa, deliver, drive } from '../src/model/x86/entry.ts';
import { ASI_CLASS_TEST, asiDestroy, asiEnter, asiExit, asiInCriticalSection, asiInit, asiIntrNestDepth, asiIsRelaxed, asiIsRestricted, asiRelax, asiUninitClass } from '../src/model/asi25/runtime.ts';
import { type Rig, nmi, setupTestAsi } from './asi25-rig.ts';
import { ASI_NONSENSITIVE, ASI_REFINE, ASI_TAINT, CURR_ASI } from '../src/invariants/asi25.ts';
import { directMapVa } from '../src/model/mm/kernel.ts';
import { vfree } from '../src/model/mm/vmalloc.ts';
import { allocPercpu, perCpuOffsetPtr, perCpuPtr } from '../src/model/mm/percpu.ts';
import { allocPagesObject } from '../src/model/mm/slab.ts';
import { type Allocation, KERNEL } from '../src/model/mm/memory.ts';
import type { Log } from '../src/model/trace.ts';
import { PAGE_SIZE, formatVa } from '../src/model/mm/geometry.ts';
import { ASI_GLOBAL_NONSENSITIVE, asiMap, asiUnmap } from '../src/model/asi25/map.ts';
import { createSystem, step } from '../src/model/step.ts';
import { EINVAL, ENOMEM, ENOSYS } from '../src/model/mm/kernel.ts';
import { ASI25_OPS } from '../src/model/asi25/ops.ts';
import type { OpKind } from '../src/model/ops.ts';
import { failingFunction, runChoices, runOps } from '../src/check/run.ts';
import { runSeededWalk } from '../src/check/seeded.ts';
import { choicesArb } from '../src/generators/arbitraries.ts';
import { WALK_WEIGHTS } from '../src/generators/choose.ts';
import fc from 'fast-check';
import { walk } from '../src/model/mm/pagetable.ts';
import { allocPages, freePages } from '../src/model/mm/page-alloc.ts';
import { directMapSensitive, pageblockSensitive } from '../src/model/asi25/pageblock.ts';
import { HPAGE_PMD_ORDER, MIGRATE_PCPTYPES, MIGRATE_RECLAIMABLE, MIGRATE_UNMOVABLE, NR_PAGE_ORDERS, NR_PCP_LISTS, NR_SENSITIVITIES, freeToPcp, migrateToFreetype, orderToPindex, pcpAllowedOrder, pcpCount, pindexToOrder } from '../src/model/mm/pcp.ts';
import { newChecker } from '../src/invariants/index.ts';
import { changePageAttrSetClr, lookupAddressIn } from '../src/model/mm/set-memory.ts';
import { _PAGE_PRESENT, _PAGE_RW, formatEntry } from '../src/model/mm/pte.ts';
import { GEOMETRIES, PGT_LEVEL_PMD, PGT_LEVEL_PTE, levelSize } from '../src/model/mm/geometry.ts';
import type { System } from '../src/model/system.ts';
import type { DesignOptions } from '../src/model/options.ts';

describe('asi_test.c, as posted (bjackman/linux)', () => {
  test('test_asi_state: restricted and tense after asi_enter, restricted and relaxed after asi_relax, neither after asi_exit', () => {
    const r = setupTestAsi();
    r.run('asi_enter', asiEnter(r.k, r.domain));
    expect(asiIsRestricted(r.sys, r.k.cpu)).toBe(true);
    expect(asiIsRelaxed(r.k)).toBe(false);
    asiRelax(r.k);
    expect(asiIsRestricted(r.sys, r.k.cpu)).toBe(true);
    expect(asiIsRelaxed(r.k)).toBe(true);
    r.run('asi_exit', asiExit(r.k));
    expect(asiIsRestricted(r.sys, r.k.cpu)).toBe(false);
    expect(asiIsRelaxed(r.k)).toBe(true);
    // check_taint_post: "Kernel newly tainted after test. Maybe a WARN?"
    expect(r.violations).toEqual([]);
  });
  test('test_alloc_sensitive_nonsensitive: an order-0 page allocated __GFP_SENSITIVE is in the physmap of the unrestricted page table only, one allocated without it in both', () => {
    const r = setupTestAsi();
    const doAllocPages = (sensitive: boolean) => {
      const obj = allocPagesObject(r.sys, PAGE_SIZE, { sensitive, name: 'alloc_pages', owner: KERNEL, kind: 'kmalloc', boot: false });
      if (typeof obj === 'number') throw new Error('alloc_pages failed');
      return obj.va;
    };
    const [pageSensitive, pageNonsensitive] = [doAllocPages(true), doAllocPages(false)];
    const restricted = r.sys.asi25!.domains.get(ASI_GLOBAL_NONSENSITIVE)!.pgd!;
    const pagePresentPhys = (pgd: number, va: number) => walk(r.sys.g, r.sys.tables, pgd, va).ok;
    expect(pagePresentPhys(r.sys.kernel.pgd, pageSensitive)).toBe(true);
    expect(pagePresentPhys(r.sys.kernel.pgd, pageNonsensitive)).toBe(true);
    expect(pagePresentPhys(restricted, pageSensitive)).toBe(false);
    expect(pagePresentPhys(restricted, pageNonsensitive)).toBe(true);
    expect(r.sys.ghost.events).toEqual([]);
  });
});

describe("asi_test.c of the series' branch (googleprodkernel/linux-kvm), translated", () => {
  test('test_asi_hooks: one restricted CR3 write on entering, none on entering again while in the domain, one unrestricted write on exit', () => {
    const r = setupTestAsi();
    r.run('asi_enter', asiEnter(r.k, r.domain));
    expect(r.counts()).toEqual({ postEnter: 1, preExit: 0 });
    asiRelax(r.k);
    r.run('asi_enter', asiEnter(r.k, r.domain));
    expect(r.counts()).toEqual({ postEnter: 1, preExit: 0 });
    asiRelax(r.k);
    r.run('asi_exit', asiExit(r.k));
    expect(r.counts()).toEqual({ postEnter: 1, preExit: 1 });
    expect(r.violations).toEqual([]);
  });

  test('test_asi_map_global_nonsensitive: asi_map and asi_unmap of one page and of the whole two-page vm_map_ram area, in the global nonsensitive pgd', () => {
    const r = setupTestAsi();
    // alloc_pages(GFP_KERNEL, 1), then vm_map_ram() of its two pages, which patch 17 does not map
    // (it hooks vmalloc and vmap): the model's vmalloc of two pages, its area asi_unmap()ped.
    const vaddr = r.sys.kernel.vmAreas.get(step(r.sys, { op: 'vmalloc', pages: 2, sensitive: false }).ret)!.va;
    const size = 2 * PAGE_SIZE;
    asiUnmap(r.k, ASI_GLOBAL_NONSENSITIVE, vaddr, size);
    const [va0, va1] = [vaddr, vaddr + size - 8];
    const restricted = r.sys.asi25!.domains.get(ASI_GLOBAL_NONSENSITIVE)!.pgd!;
    const addrPresent = (pgd: number, va: number) => walk(r.sys.g, r.sys.tables, pgd, va).ok;
    expect([addrPresent(r.sys.kernel.pgd, va0), addrPresent(r.sys.kernel.pgd, va1)]).toEqual([true, true]);
    expect([addrPresent(restricted, va0), addrPresent(restricted, va1)]).toEqual([false, false]);
    // After mapping the first half of the region, the first half should be accessible in the restricted address space, but the second half should not.
    expect(asiMap(r.k, ASI_GLOBAL_NONSENSITIVE, va0, PAGE_SIZE)).toBe(0);
    expect([addrPresent(restricted, va0), addrPresent(restricted, va1)]).toEqual([true, false]);
    // Map the entire allocated region.
    expect(asiMap(r.k, ASI_GLOBAL_NONSENSITIVE, va0, size)).toBe(0);
    expect([addrPresent(restricted, va0), addrPresent(restricted, va1)]).toEqual([true, true]);
    // Unmap the first half of the region.
    asiUnmap(r.k, ASI_GLOBAL_NONSENSITIVE, va0, PAGE_SIZE);
    expect([addrPresent(restricted, va0), addrPresent(restricted, va1)]).toEqual([false, true]);
    // Unmap the entire region.
    asiUnmap(r.k, ASI_GLOBAL_NONSENSITIVE, va0, size);
    expect([addrPresent(restricted, va0), addrPresent(restricted, va1)]).toEqual([false, false]);
    expect(r.sys.ghost.events).toEqual([]);
  });

  test('a domain made before a vmalloc sees its area (patch 17 maps it into the global nonsensitive pgd, whose lower tables every domain shares); after vfree it does not', () => {
    const r = setupTestAsi();
    const id = step(r.sys, { op: 'vmalloc', pages: 1, sensitive: false }).ret;
    const va = r.sys.kernel.vmAreas.get(id)!.va;
    const domainPgd = r.sys.asi25!.domains.get(r.domain)!.pgd!;
    expect(walk(r.sys.g, r.sys.tables, domainPgd, va).ok).toBe(true);
    step(r.sys, { op: 'vfree', id });
    expect(walk(r.sys.g, r.sys.tables, domainPgd, va).ok).toBe(false);
  });

  test('asi_map copies a large page whole where the range covers it, as 4K pages where it covers part; asi_unmap of part of a large mapping clears all of it and WARNs', () => {
    const r = setupTestAsi();
    const g = r.sys.asi25!.domains.get(ASI_GLOBAL_NONSENSITIVE)!.pgd!;
    // The last two large pages of the direct map: the frames up there are free after boot.
    const l = r.sys.kernel.layout;
    const top = walk(r.sys.g, r.sys.tables, r.sys.kernel.pgd, l.directMap + l.physFrames * PAGE_SIZE - PAGE_SIZE);
    if (!top.ok) throw new Error('the direct map ends mapped');
    expect(top.leaf.size).toBeGreaterThan(PAGE_SIZE);
    const size = top.leaf.size;
    const va = top.leaf.va - size;
    const large = walk(r.sys.g, r.sys.tables, r.sys.kernel.pgd, va);
    if (!large.ok) throw new Error('the direct map is mapped');
    expect(walk(r.sys.g, r.sys.tables, g, va).ok || walk(r.sys.g, r.sys.tables, g, va + size).ok).toBe(false);
    // Part of it: 4K entries for the pages asked for, nothing beyond.
    expect(asiMap(r.k, ASI_GLOBAL_NONSENSITIVE, va + PAGE_SIZE, PAGE_SIZE)).toBe(0);
    const part = walk(r.sys.g, r.sys.tables, g, va + PAGE_SIZE);
    expect(part.ok && [part.leaf.size, part.leaf.frame]).toEqual([PAGE_SIZE, large.leaf.frame + 1]);
    expect(walk(r.sys.g, r.sys.tables, g, va).ok).toBe(false);
    asiUnmap(r.k, ASI_GLOBAL_NONSENSITIVE, va + PAGE_SIZE, PAGE_SIZE);
    // The next large page, whole: one entry of the same size (the first one's level now holds a PTE table).
    expect(asiMap(r.k, ASI_GLOBAL_NONSENSITIVE, va + size, size)).toBe(0);
    const whole = walk(r.sys.g, r.sys.tables, g, va + size);
    expect(whole.ok && whole.leaf.size).toBe(size);
    expect(r.sys.ghost.events).toEqual([]);
    asiUnmap(r.k, ASI_GLOBAL_NONSENSITIVE, va + size, PAGE_SIZE);
    expect(walk(r.sys.g, r.sys.tables, g, va + 2 * size - PAGE_SIZE).ok).toBe(false);
    expect(r.sys.ghost.events.map((e) => e.invariant)).toEqual(['NO-WARN', 'NO-WARN']);
  });

  test('test_percpu_alloc: static percpu data is mapped in the restricted address space on every CPU; F45: a dynamic allocation in the first chunk is not, on the posted code', () => {
    for (const options of [{}, { mapsFirstChunkDynamic: true }]) {
      const r = setupTestAsi({ options });
      const restricted = r.sys.asi25!.domains.get(ASI_GLOBAL_NONSENSITIVE)!.pgd!;
      const addrPresent = (pgd: number, va: number) => walk(r.sys.g, r.sys.tables, pgd, va).ok;
      // __alloc_percpu(DYNAMIC_PCPU_BUF_SZ = 2 pages, PAGE_SIZE): the model has the first chunk only.
      const dynamic = allocPercpu(r.sys, 2 * PAGE_SIZE, PAGE_SIZE, { name: 'dynamic_pcpu', owner: KERNEL, sensitive: false });
      if (typeof dynamic === 'number') throw new Error('the first chunk has room for two pages');
      const found: boolean[] = [];
      for (let cpu = 0; cpu < r.sys.cpus.length; cpu++) {
        const base = perCpuPtr(r.sys, 'cpu_asi_session', cpu);
        expect([addrPresent(r.sys.kernel.pgd, base), addrPresent(restricted, base)]).toEqual([true, true]);
        const dynBase = perCpuOffsetPtr(r.sys, dynamic.offset, cpu);
        const dynEnd = dynBase + 2 * PAGE_SIZE - 8;
        expect([addrPresent(r.sys.kernel.pgd, dynBase), addrPresent(r.sys.kernel.pgd, dynEnd)]).toEqual([true, true]);
        found.push(addrPresent(restricted, dynBase), addrPresent(restricted, dynEnd));
      }
      expect(found.every((x) => x === r.sys.options.mapsFirstChunkDynamic)).toBe(true);
    }
  });

  test('test_asi_intr: an NMI that reads sensitive data inside the critical section returns to the domain; after asi_relax it does not', () => {
    const r = setupTestAsi({ sensitivePages: 1 });
    const readSensitive = () => expect(accessVa(r.k, r.sensitive[0], 'read', false)).toBe(0);
    // Case 1: interrupt while in the critical section...
    r.run('asi_enter', asiEnter(r.k, r.domain));
    expect(asiIsRestricted(r.sys, r.k.cpu)).toBe(true);
    nmi(r, readSensitive);
    // ... on return must remain in the critical section.
    expect(asiIsRestricted(r.sys, r.k.cpu)).toBe(true);
    expect(asiInCriticalSection(r.k)).toBe(true);
    expect(r.counts().preExit).toBe(1);
    // Case 2: interrupt outside the critical section...
    asiRelax(r.k);
    nmi(r, readSensitive);
    // ... on return do not re-enter the critical section.
    expect(asiIsRestricted(r.sys, r.k.cpu)).toBe(false);
    expect(asiInCriticalSection(r.k)).toBe(false);
    expect(r.counts().preExit).toBe(2);
    expect(r.violations).toEqual([]);
    expect(r.sys.ghost.visited.filter((v) => v === 'page-fault@do_page_fault')).toHaveLength(2);
  });

  test('test_asi_intr_nesting: an NMI nested in an IRQ counts deeper, its exit lasts until the outermost return, which re-enters the domain', () => {
    const r = setupTestAsi({ sensitivePages: 1 });
    const seen = { iwLevel: -1, iwEntryRestricted: false, iwExitRestricted: true, nmiLevel: -1, nmiExitRestricted: true };
    r.run('asi_enter', asiEnter(r.k, r.domain));
    expect(asiIsRestricted(r.sys, r.k.cpu)).toBe(true);
    // Level 1: the IRQ work handler, on this CPU; level 2: an NMI it sends itself.
    deliver(r.k, { at: 0, kind: 'irq' }, 'test@irq_work_queue', () => {
      seen.iwLevel = asiIntrNestDepth(r.k);
      seen.iwEntryRestricted = asiIsRestricted(r.sys, r.k.cpu);
      nmi(r, () => {
        seen.nmiLevel = asiIntrNestDepth(r.k);
        expect(accessVa(r.k, r.sensitive[0], 'read', false)).toBe(0);
        seen.nmiExitRestricted = asiIsRestricted(r.sys, r.k.cpu);
      });
      seen.iwExitRestricted = asiIsRestricted(r.sys, r.k.cpu);
    });
    expect(seen.iwLevel).toBeGreaterThanOrEqual(1);
    expect(seen.iwLevel).toBeLessThan(seen.nmiLevel);
    expect(seen.iwEntryRestricted).toBe(true);
    expect(seen.nmiExitRestricted).toBe(false);
    // "Return to restricted domain only on critical section return."
    expect(seen.iwExitRestricted).toBe(false);
    expect(asiIsRestricted(r.sys, r.k.cpu)).toBe(true);
    expect(asiInCriticalSection(r.k)).toBe(true);
    expect(r.counts()).toEqual({ preExit: 1, postEnter: 2 });
    asiRelax(r.k);
    r.run('asi_exit', asiExit(r.k));
    expect(r.violations).toEqual([]);
  });
});

describe('what patches 03-05 state', () => {
  test('an NMI at every micro-step of asi_enter and asi_exit leaves curr_asi and CR3 agreeing on return, and the task where it was', () => {
    for (const path of ['asi_enter', 'asi_exit'] as const) {
      for (let at = 0; at <= 3; at++) {
        const r = setupTestAsi();
        if (path === 'asi_exit') {
          r.run('asi_enter', asiEnter(r.k, r.domain));
          asiRelax(r.k);
        }
        drive(r.k, path, path === 'asi_enter' ? asiEnter(r.k, r.domain) : asiExit(r.k), [{ at, kind: 'nmi' }]);
        expect(r.violations, `${path}, NMI after micro-step ${at}`).toEqual([]);
        expect(asiIsRestricted(r.sys, r.k.cpu), `${path}, NMI after micro-step ${at}`).toBe(path === 'asi_enter');
      }
    }
  });

  test('sensitive data read in the critical section: the fault exits and returns to the domain at once, a fault loop, and warn_if_bad_asi_pf says why', () => {
    const r = setupTestAsi({ sensitivePages: 1 });
    r.run('asi_enter', asiEnter(r.k, r.domain));
    expect(accessVa(r.k, r.sensitive[0], 'read', false)).toBeLessThan(0);
    expect(r.k.cpu.dead).toMatch(/^fault loop: read of .* faults 4 times in a row/);
    expect(r.sys.ghost.events.map((e) => e.message)).toContain(`cpu0: VM_WARN_ONCE: ASI-sensitive data access from critical section, addr=${formatVa(r.sys.g, r.sensitive[0])} class=TEST fired (RFC v2 2025)`);
  });

  test('sensitive data read after asi_relax: the fault exits, the read is retried on the unrestricted page table and succeeds, no warning', () => {
    const r = setupTestAsi({ sensitivePages: 1 });
    r.run('asi_enter', asiEnter(r.k, r.domain));
    asiRelax(r.k);
    expect(accessVa(r.k, r.sensitive[0], 'read', false)).toBe(0);
    expect(asiIsRestricted(r.sys, r.k.cpu)).toBe(false);
    expect(r.violations).toEqual([]);
  });

  test('preempted after asi_relax, on the restricted CR3: context_switch() leaves the domain first (patch 03), and the task comes back relaxed and unrestricted', () => {
    const r = setupTestAsi();
    // A third task, for the scheduler to run while cpu0's is preempted.
    expect(step(r.sys, { op: 'task_create' }).ret).toBeGreaterThan(0);
    r.run('asi_enter', asiEnter(r.k, r.domain));
    asiRelax(r.k);
    r.k.cpu.preemptCount--;
    const first = r.sys.kernel.current[0];
    deliver(r.k, { at: 0, kind: 'switch' }, 'test@preempt_enable');
    expect(r.sys.ghost.visited).toContain('schedule@write_cr3(unrestricted_cr3)');
    expect(r.sys.kernel.current[0]).toBe(first);
    expect(asiIsRestricted(r.sys, r.k.cpu)).toBe(false);
    expect(r.violations).toEqual([]);
  });

  test('asi_relax inside an interrupt of the critical section, and asi_exit inside the critical section, are WARNs', () => {
    const r = setupTestAsi();
    r.run('asi_enter', asiEnter(r.k, r.domain));
    deliver(r.k, { at: 0, kind: 'irq' }, 'test@now', () => asiRelax(r.k));
    expect(r.sys.ghost.events.map((e) => e.message)).toContain('cpu0: VM_WARN_ON_ONCE(asi_intr_nest_depth()) fired (RFC v2 2025)');
    const s = setupTestAsi();
    s.run('asi_enter', asiEnter(s.k, s.domain));
    s.run('asi_exit', asiExit(s.k));
    expect(s.violations.map((v) => v.message)).toContain('cpu0: WARN_ON_ONCE(asi_in_critical_section()) fired (RFC v2 2025)');
  });

  test('asi_init takes a reference to the one domain of an mm and class; the last asi_destroy frees its pgd; a failed allocation leaves nothing', () => {
    const r = setupTestAsi();
    const pgd = r.sys.asi25!.domains.get(r.domain)!.pgd!;
    expect(asiInit(r.k, r.mm, ASI_CLASS_TEST)).toEqual({ err: 0, domain: r.domain });
    asiDestroy(r.k, r.domain);
    expect(r.sys.tables.has(pgd)).toBe(true);
    asiDestroy(r.k, r.domain);
    expect(r.sys.tables.has(pgd)).toBe(false);
    expect(r.sys.asi25!.domains.get(r.domain)).toEqual({ pgd: null, mm: 0, refCount: 0, classId: 0 });
    r.sys.mem.failIn = 0;
    expect(asiInit(r.k, r.mm, ASI_CLASS_TEST).err).toBe(-12);
    expect(r.sys.asi25!.domains.get(r.domain)!.refCount).toBe(0);
    expect(asiInit(r.k, r.mm, ASI_CLASS_TEST).domain).toBe(r.domain);
    expect(r.sys.asi25!.domains.get(r.domain)!.pgd).not.toBeNull();
    asiUninitClass(r.sys, ASI_CLASS_TEST, r.k.out);
    expect(asiInit(r.k, r.mm, ASI_CLASS_TEST).err).toBe(-22);
  });
});

describe('the page allocator (patches 14, 15)', () => {
  /** A vmalloc of one page; its id and the one frame it got. */
  const vmallocPage = (r: Rig, sensitive: boolean) => {
    const id = step(r.sys, { op: 'vmalloc', pages: 1, sensitive }).ret;
    return { id, frame: r.sys.mem.allocs.get(r.sys.kernel.vmAreas.get(id)!.alloc)!.frames[0] };
  };

  /** alloc_pages through kmalloc_large: three pages' worth, an order-2 block; its id and first frame. */
  const allocPages = (r: Rig, sensitive: boolean) => {
    const id = step(r.sys, { op: 'kmalloc', size: 3 * PAGE_SIZE, sensitive }).ret;
    return { id, frame: r.sys.mem.allocs.get(r.sys.kernel.kmallocs.get(id)!.alloc)!.frames[0] };
  };

  test('F43: a page a sensitive owner freed, allocated again without __GFP_SENSITIVE, is mapped into the restricted address space with the old data in it', () => {
    const r = setupTestAsi();
    const secret = allocPages(r, true);
    step(r.sys, { op: 'kfree', id: secret.id });
    expect(allocPages(r, false).frame).toBe(secret.frame);
    expect(ASI_NONSENSITIVE.check(r.sys)).toMatch(new RegExp(`^the global nonsensitive pgd maps .* \\(pfn ${secret.frame}\\) of kmalloc, which still holds the data of kmalloc$`));
  });

  test("F43's fix, zeroesNonsensitive: the page is zeroed as it becomes nonsensitive, and mapped clean", () => {
    const r = setupTestAsi({ options: { zeroesNonsensitive: true } });
    const secret = allocPages(r, true);
    step(r.sys, { op: 'kfree', id: secret.id });
    expect(allocPages(r, false).frame).toBe(secret.frame);
    expect(ASI_NONSENSITIVE.check(r.sys)).toBeUndefined();
  });

  test('F44: a vmalloc of __GFP_SENSITIVE pages is mapped into the restricted address space at its vmalloc address (patch 17 maps every area)', () => {
    const r = setupTestAsi();
    const page = vmallocPage(r, true);
    expect(ASI_NONSENSITIVE.check(r.sys)).toMatch(new RegExp(`^the global nonsensitive pgd maps .* \\(pfn ${page.frame}\\) of vmalloc, allocated __GFP_SENSITIVE$`));
    expect(walk(r.sys.g, r.sys.tables, r.sys.asi25!.domains.get(ASI_GLOBAL_NONSENSITIVE)!.pgd!, directMapVa(r.sys, page.frame)).ok).toBe(false);
  });

  test("F44's fix, vmallocKeepsSensitive: such an area stays out of the global nonsensitive pgd; a nonsensitive one is mapped", () => {
    const r = setupTestAsi({ options: { vmallocKeepsSensitive: true } });
    const g = r.sys.asi25!.domains.get(ASI_GLOBAL_NONSENSITIVE)!.pgd!;
    const va = (p: { id: number }) => r.sys.kernel.vmAreas.get(p.id)!.va;
    const [secret, plain] = [vmallocPage(r, true), vmallocPage(r, false)];
    expect([walk(r.sys.g, r.sys.tables, g, va(secret)).ok, walk(r.sys.g, r.sys.tables, g, va(plain)).ok]).toEqual([false, true]);
    expect(ASI_NONSENSITIVE.check(r.sys)).toBeUndefined();
  });

  test('a nonsensitive page is mapped through the direct map while allocated; freed, it stays allocated until asi_async_free_work_fn (run as each op ends) has unmapped it', () => {
    const r = setupTestAsi();
    const g = r.sys.asi25!.domains.get(ASI_GLOBAL_NONSENSITIVE)!.pgd!;
    const page = vmallocPage(r, false);
    const va = directMapVa(r.sys, page.frame);
    expect(walk(r.sys.g, r.sys.tables, g, va).ok).toBe(true);
    vfree(r.sys, page.id, { out: [] });
    expect(r.sys.mem.frameAlloc[page.frame]).toBeGreaterThan(0);
    expect(walk(r.sys.g, r.sys.tables, g, va).ok).toBe(true);
    expect(vmallocPage(r, false).frame).not.toBe(page.frame);
    expect(walk(r.sys.g, r.sys.tables, g, va).ok).toBe(false);
    expect(r.sys.mem.frameAlloc[page.frame]).toBe(-1);
    expect(r.sys.asi25!.asyncFree).toEqual([]);
  });
});

describe("asi_test.c's change_page_attr cases (the series' branch, where both are skipped: \"Not yet supported in this branch\")", () => {
  /** lookup_address() and lookup_address_asi_global(): the entry mapping `va`, with its level. */
  const lookup = (sys: System, root: number, va: number) => {
    const slot = lookupAddressIn(sys, root, va);
    if (!slot) throw new Error(`KUNIT_ASSERT_NOT_NULL: nothing maps ${formatVa(sys.g, va)}`);
    return { pte: sys.tables.get(slot.table)![slot.index], level: slot.level };
  };
  const restrictedPgd = (sys: System) => sys.asi25!.domains.get(ASI_GLOBAL_NONSENSITIVE)!.pgd!;
  /** The two entries mapping `va`, unrestricted and restricted: what the case compares. */
  const both = (sys: System, va: number) => [lookup(sys, sys.kernel.pgd, va), lookup(sys, restrictedPgd(sys), va)];
  const cpa = (sys: System) => ({ sys, cpu: sys.cpus[0], out: [] });
  const setMemory = (sys: System, va: number, pages: number, how: 'ro' | 'rw' | '4k') =>
    expect(changePageAttrSetClr(cpa(sys), va, pages, how === 'ro' ? { set: 0, clr: _PAGE_RW } : how === 'rw' ? { set: _PAGE_RW, clr: 0 } : { set: 0, clr: 0, forceSplit: true })).toBe(0);

  /**
   * test_change_page_attr, one for one; the model's vmalloc of one page stands for its
   * alloc_pages(GFP_KERNEL, 0) and vmap() of that page. The first expectation that fails, or none.
   */
  const testChangePageAttr = (sys: System): string | undefined => {
    const failures: string[] = [];
    const expectEqualAndWrite = (what: string, va: number, write: boolean) => {
      const [unrestricted, restricted] = both(sys, va);
      if (restricted.pte !== unrestricted.pte) failures.push(`${what}: pte_val(*restricted_ptep) ${formatEntry(restricted.pte)} != pte_val(*ptep) ${formatEntry(unrestricted.pte)}`);
      if (((restricted.pte & _PAGE_RW) !== 0) !== write) failures.push(`${what}: pte_write(*restricted_ptep) is ${!write}`);
    };
    const area = sys.kernel.vmAreas.get(step(sys, { op: 'vmalloc', pages: 1, sensitive: false }).ret)!;
    const laddr = directMapVa(sys, sys.mem.allocs.get(area.alloc)!.frames[0]);
    setMemory(sys, laddr, 1, '4k');
    expectEqualAndWrite('a 4K page of the direct map', laddr, true);
    setMemory(sys, laddr, 1, 'ro');
    expectEqualAndWrite('set_memory_ro(laddr)', laddr, false);
    setMemory(sys, laddr, 1, 'rw');
    expectEqualAndWrite('set_memory_rw(laddr)', laddr, true);
    expectEqualAndWrite('vmap', area.va, true);
    setMemory(sys, area.va, 1, 'ro');
    expectEqualAndWrite('set_memory_ro(vaddr)', area.va, false);
    expectEqualAndWrite("set_memory_ro(vaddr)'s direct-map alias", laddr, false);
    setMemory(sys, area.va, 1, 'rw');
    return failures[0];
  };

  test('test_change_page_attr passes with the fixes, on both direct maps', () => {
    for (const profile of ['asi25-fixed', 'asi25-dm-fixed'] as const) expect(testChangePageAttr(createSystem({ geometry: 'small', cpus: 2, profile })), profile).toBeUndefined();
  });

  test("F48: on the September direct map as posted, set_memory_ro() of the direct map never reaches the restricted one (mirror_asi_direct_map changes the original cpa); mirrorTargetsAsiPgd mirrors it", () => {
    const posted = createSystem({ geometry: 'small', cpus: 2, profile: 'asi25-dm', options: { setMemoryReachesAsiCopies: true } });
    expect(testChangePageAttr(posted)).toMatch(/^a 4K page of the direct map: pte_val\(\*restricted_ptep\) pfn \d+ PWkx-L != pte_val\(\*ptep\) pfn \d+ PWkx-$/);
    expect(ASI_REFINE.check(posted)).toBeUndefined();
    setMemory(posted, directMapVa(posted, 0), 1, 'ro');
    expect(ASI_REFINE.check(posted)).toMatch(/^the global nonsensitive pgd maps .* PWkx-L, wider than the kernel's Prkx-$/);
    expect(testChangePageAttr(createSystem({ geometry: 'small', cpus: 2, profile: 'asi25-dm', options: { setMemoryReachesAsiCopies: true, mirrorTargetsAsiPgd: true } }))).toBeUndefined();
  });

  test("F50: as posted, on both direct maps, set_memory_ro() of a vmalloc address leaves the restricted copy asi_map() made writable; setMemoryReachesAsiCopies changes it too", () => {
    for (const profile of ['asi25', 'asi25-dm'] as const) {
      const sys = createSystem({ geometry: 'small', cpus: 2, profile, options: { mirrorTargetsAsiPgd: true } });
      // On January's direct map, the asi_map()ped copy of the direct map is behind too, so its case fails at set_memory_ro(laddr).
      expect(testChangePageAttr(sys), profile).toMatch(profile === 'asi25' ? /^set_memory_ro\(laddr\): pte_val/ : /^set_memory_ro\(vaddr\): pte_val/);
    }
    const sys = createSystem({ geometry: 'small', cpus: 2, profile: 'asi25-dm', options: { mirrorTargetsAsiPgd: true } });
    const area = sys.kernel.vmAreas.get(step(sys, { op: 'vmalloc', pages: 1, sensitive: false }).ret)!;
    setMemory(sys, area.va, 1, 'ro');
    expect(ASI_REFINE.check(sys)).toMatch(new RegExp(`^the global nonsensitive pgd maps ${formatVa(sys.g, area.va)} .*PWkx-, wider than the kernel's Prkx-$`));
  });

  test('test_change_page_attr_split_mapping: set_memory_4k() of a pageblock mapped 2M in both page tables splits both, entry for entry equal (with the fixes; F48 and F50 as posted)', () => {
    const pmdOrderPages = levelSize(GEOMETRIES.small, PGT_LEVEL_PMD) / PAGE_SIZE;
    const split = (profile: 'asi25' | 'asi25-fixed' | 'asi25-dm' | 'asi25-dm-fixed') => {
      const sys = createSystem({ geometry: 'small', cpus: 2, profile });
      // "Try to allocate pages with a large mapping in the direct map": alloc_pages(GFP_KERNEL, pmd_order).
      const a = allocPages(sys, { kind: 'kmalloc', owner: KERNEL, name: 'alloc_pages', pages: pmdOrderPages, sensitive: false, contiguousAlign: pmdOrderPages })!;
      const laddr = directMapVa(sys, a.frames[0]);
      expect(both(sys, laddr).map((e) => e.level >= PGT_LEVEL_PMD), profile).toEqual([true, true]);
      setMemory(sys, laddr, pmdOrderPages, '4k');
      return Array.from({ length: pmdOrderPages }, (_, i) => both(sys, laddr + i * PAGE_SIZE)).every(([u, r]) => u.level === PGT_LEVEL_PTE && r.level === PGT_LEVEL_PTE && u.pte === r.pte);
    };
    expect([split('asi25-fixed'), split('asi25-dm-fixed'), split('asi25'), split('asi25-dm')]).toEqual([true, true, false, false]);
  });

  test("F51: mirror_asi_direct_map's VM_WARN_ON_ONCE tests the byte after the range: set_memory_ro() of the last page of memory WARNs; mirrorWarnsOnLastByte tests the last byte", () => {
    for (const [last, warns] of [[false, true], [true, false]] as const) {
      const sys = createSystem({ geometry: 'small', cpus: 2, profile: 'asi25-dm', options: { mirrorWarnsOnLastByte: last } });
      setMemory(sys, directMapVa(sys, sys.kernel.layout.physFrames - 1), 1, 'ro');
      expect(sys.ghost.events.map((e) => e.message), String(last)).toEqual(warns ? [expect.stringContaining('VM_WARN_ON_ONCE(!is_direct_map(*cpa->vaddr + (cpa->numpages * PAGE_SIZE)))')] : []);
    }
  });

  test("F49: with the mirror fixed (F48), a set_direct_map_default_noflush() (secretmem's free) of a page in a sensitive pageblock maps it in the restricted direct map; mirrorMapsNonsensitiveOnly keeps it out, and the unmap still follows", () => {
    const run = (options: Partial<DesignOptions>) => {
      const sys = createSystem({ geometry: 'small', cpus: 2, profile: 'asi25-dm', options: { mirrorTargetsAsiPgd: true, ...options } });
      const secret = step(sys, { op: 'kmalloc', size: 3 * PAGE_SIZE, sensitive: true }).ret;
      const va = directMapVa(sys, sys.mem.allocs.get(sys.kernel.kmallocs.get(secret)!.alloc)!.frames[0]);
      // secretmem_fault's set_direct_map_invalid_noflush, then its free's set_direct_map_default_noflush.
      expect(changePageAttrSetClr(cpa(sys), va, 1, { set: 0, clr: _PAGE_PRESENT | _PAGE_RW })).toBe(0);
      const unmapped = ASI_REFINE.check(sys);
      expect(changePageAttrSetClr(cpa(sys), va, 1, { set: _PAGE_PRESENT | _PAGE_RW, clr: 0 })).toBe(0);
      return [unmapped, ASI_NONSENSITIVE.check(sys)];
    };
    expect(run({})).toEqual([undefined, expect.stringMatching(/^the global nonsensitive pgd maps .* of kmalloc, allocated __GFP_SENSITIVE$/)]);
    expect(run({ mirrorMapsNonsensitiveOnly: true })).toEqual([undefined, undefined]);
  });
});

describe('asi_test.c of the September 2025 series (mm: ASI direct map management), on asi25-dm', () => {
  /** do_many_alloc_pages(test, gfp, 0, count): order-0 alloc_pages, the case failing if one fails. */
  const doManyAllocPages = (r: Rig, sensitive: boolean, count: number) =>
    Array.from({ length: count }, (_, i) => {
      const a = allocPages(r.sys, { kind: 'kmalloc', owner: KERNEL, name: `alloc_pages ${i}`, pages: 1, sensitive });
      if (!a) throw new Error(`Failed to alloc order 0 page (GFP ${sensitive ? '__GFP_SENSITIVE' : 'GFP_KERNEL'}) iter ${i}`);
      return a;
    });

  for (const profile of ['asi25-dm', 'asi25-dm-fixed'] as const) {
    test(`test_alloc_sensitive_nonsensitive (${profile}): more than half of memory allocated nonsensitive is all mapped; freed and allocated again sensitive, all unmapped; no bad_page() nor WARN`, () => {
      const r = setupTestAsi({ profile });
      const judge = newChecker('incremental');
      // "First allocate more than half of the memory in the node as nonsensitive."
      const pageMajority = r.sys.kernel.layout.physFrames / 2 + 1;
      const nonsensitive = doManyAllocPages(r, false, pageMajority);
      expect(nonsensitive.filter((a) => directMapSensitive(r.sys, a.frames[0]))).toEqual([]);
      r.violations.push(...judge(r.sys, 'between-ops'));
      // "Now free them again and allocate the same amount as sensitive."
      for (const a of nonsensitive) freePages(r.sys, a.id);
      const sensitive = doManyAllocPages(r, true, pageMajority);
      expect(sensitive.filter((a) => !directMapSensitive(r.sys, a.frames[0]))).toEqual([]);
      // The flips went both ways: some pages of the second round were nonsensitive in the first.
      const first = new Set(nonsensitive.map((a) => a.frames[0]));
      expect(sensitive.some((a) => first.has(a.frames[0]))).toBe(true);
      r.violations.push(...judge(r.sys, 'between-ops'));
      // check_taint_post: "Kernel newly tainted after test. Maybe a WARN?"
      expect(r.violations).toEqual([]);
    });
  }

  test('F47: a CPU running restricted keeps its TLB entry of a pageblock __rmqueue_asi made sensitive and handed to a __GFP_SENSITIVE caller; with sensitiveFlipFlushesTlb the flip flushes it', () => {
    for (const [flush, expected] of [[false, /^cpu1, restricted \(PCID \d+\), can use its TLB entry for .* \(pfn (\d+)\) of kmalloc, allocated __GFP_SENSITIVE$/], [true, undefined]] as const) {
      const sys = createSystem({ geometry: 'small', cpus: 2, profile: 'asi25-dm', options: { sensitiveFlipFlushesTlb: flush } });
      const id = step(sys, { op: 'kmalloc', size: 8 * PAGE_SIZE, sensitive: false }).ret;
      const frame = sys.mem.allocs.get(sys.kernel.kmallocs.get(id)!.alloc)!.frames[0];
      // cpu1's task, in user space on its restricted domain, makes a system call that reads the page.
      expect(step(sys, { op: 'access', cpu: 1, va: directMapVa(sys, frame), access: 'read', intr: [] }).ret).toBe(0);
      step(sys, { op: 'kfree', id });
      // Sensitive pageblocks until none is left whole; the next one is the page's, flipped.
      let ret = 0;
      while (ret >= 0 && sys.mem.frameAlloc[frame] === -1) ret = step(sys, { op: 'kmalloc', size: 8 * PAGE_SIZE, sensitive: true }).ret;
      expect(pageblockSensitive(sys, frame)).toBe(true);
      expect(ASI_NONSENSITIVE.check(sys)).toEqual(expected && expect.stringMatching(expected));
    }
  });

  test('ALLOC_NOBLOCK (patches 16, 18): with no nonsensitive page free, a GFP_ATOMIC kmalloc under a lock with IRQs off fails and flips no pageblock; the same call with GFP_KERNEL flips one and succeeds; neither WARNs', () => {
    const sys = createSystem({ geometry: 'small', cpus: 2, profile: 'asi25-dm-fixed' });
    const judge = newChecker('incremental');
    const freeNonsensitive = () => sys.mem.frameAlloc.filter((id, f) => id === -1 && !pageblockSensitive(sys, f)).length;
    const nonsensitiveBlocks = () => sys.asi25!.pbNonsensitive.filter((b) => b === 1).length;
    while (freeNonsensitive() > 0) expect(step(sys, { op: 'kmalloc', size: PAGE_SIZE, sensitive: false }).ret).toBeGreaterThan(0);
    const blocks = nonsensitiveBlocks();
    const atomic = step(sys, { op: 'kmalloc', size: 8 * PAGE_SIZE, sensitive: false, atomic: true });
    expect([atomic.ret, nonsensitiveBlocks()]).toEqual([ENOMEM, blocks]);
    expect(step(sys, { op: 'kmalloc', size: 8 * PAGE_SIZE, sensitive: false }).ret).toBeGreaterThan(0);
    expect(nonsensitiveBlocks()).toBe(blocks + 1);
    expect(judge(sys, 'between-ops')).toEqual([]);
  });
});

describe('page_alloc_test.c of the September 2025 series, and the per-CPU page lists', () => {
  test('test_pindex_helpers: each allowed order, PCP migratetype and sensitivity has a pindex below NR_PCP_LISTS of its own (THP\'s unmovable and reclaimable share one), none unused, and pindex_to_order gives the order back', () => {
    // "Bit means "pindex not yet used"."
    const unused = new Set(Array.from({ length: NR_PCP_LISTS }, (_, i) => i));
    for (let order = 0; order < NR_PAGE_ORDERS; order++) {
      for (let mt = 0; mt < MIGRATE_PCPTYPES; mt++) {
        if (!pcpAllowedOrder(order)) continue;
        for (const sensitive of Array.from({ length: NR_SENSITIVITIES }, (_, i) => i === 1)) {
          const pindex = orderToPindex(migrateToFreetype(mt, sensitive), order);
          const what = `(order ${order} mt ${mt} sensitive ${sensitive})`;
          expect(pindex, `invalid pindex ${pindex} ${what}`).toBeLessThan(NR_PCP_LISTS);
          expect(unused.has(pindex), `pindex ${pindex} reused ${what}`).toBe(true);
          // "For THP, two migratetypes map to the same pindex, just manually exclude one of those cases."
          if (!(order === HPAGE_PMD_ORDER && mt === Math.min(MIGRATE_UNMOVABLE, MIGRATE_RECLAIMABLE))) unused.delete(pindex);
          expect(pindexToOrder(pindex), `roundtrip failed ${what}`).toBe(order);
        }
      }
    }
    expect([...unused], 'unused pindices').toEqual([]);
  });

  test('a freed page goes to the freeing CPU\'s list of its pageblock\'s freetype: the next allocation of that freetype takes it back, one of the other sensitivity does not; past pcp->high the oldest go back to the free lists', () => {
    const sys = createSystem({ geometry: 'small', cpus: 2, profile: 'asi25-dm-fixed' });
    const page = (sensitive: boolean) => allocPages(sys, { kind: 'kmalloc', owner: KERNEL, name: 'alloc_pages', pages: 1, sensitive })!;
    const a = page(false);
    const [frame] = a.frames;
    freePages(sys, a.id);
    // Process context runs on cpu0's state: its list holds the page (pcpFrame is 1 + the CPU).
    expect([sys.mem.frameAlloc[frame], sys.mem.pcpFrame[frame]]).toEqual([-1, 1]);
    // order_to_pindex keeps the sensitivities apart (the asi25-pindex-ignores-sensitivity mutant hands it out here).
    expect(page(true).frames[0]).not.toBe(frame);
    expect(page(false).frames[0]).toBe(frame);
    const freed = Array.from({ length: 5 }, () => page(false));
    for (const p of freed) freePages(sys, p.id);
    const held = freed.map((p) => sys.mem.pcpFrame[p.frames[0]]);
    // high is 4, batch 1: a free that brings the count to high gives the oldest back, down to high - batch.
    expect(held).toEqual([0, 0, 1, 1, 1]);
    expect(pcpCount(sys.asi25!.pcp, 0)).toBe(3);
  });

  test("check_new_page: a page a per-CPU list holds while it is still allocated (a bookkeeping slip) is handed out with bad_page()'s \"nonzero _refcount\" (NO-WARN)", () => {
    const sys = createSystem({ geometry: 'small', cpus: 2, profile: 'asi25-dm-fixed' });
    const judge = newChecker('incremental');
    const live = allocPages(sys, { kind: 'kmalloc', owner: KERNEL, name: 'live', pages: 1, sensitive: false })!;
    expect(judge(sys, 'between-ops')).toEqual([]);
    freeToPcp(sys.asi25!.pcp, sys.mem, 0, orderToPindex(migrateToFreetype(MIGRATE_UNMOVABLE, false), 0), live.frames[0]);
    expect(allocPages(sys, { kind: 'kmalloc', owner: KERNEL, name: 'again', pages: 1, sensitive: false })!.frames).toEqual(live.frames);
    expect(judge(sys, 'between-ops').map((v) => v.message)).toEqual([expect.stringContaining(`bad_page(pfn ${live.frames[0]}): "nonzero _refcount"`)]);
  });

  test('with memory used up, an order-1 allocation finds its pages on an order-0 list: one that may block drains the lists (drain_all_pages) and gets them; a GFP_ATOMIC one does not drain and fails', () => {
    const sys = createSystem({ geometry: 'small', cpus: 2, profile: 'asi25-dm-fixed' });
    const pages: Allocation[] = [];
    for (let a; (a = allocPages(sys, { kind: 'kmalloc', owner: KERNEL, name: 'alloc_pages', pages: 1, sensitive: false })); ) pages.push(a);
    const at = (f: number) => pages.find((p) => p.frames[0] === f);
    const pair = pages.find((p) => p.frames[0] % 2 === 0 && at(p.frames[0] + 1))!.frames[0];
    freePages(sys, at(pair)!.id);
    freePages(sys, at(pair + 1)!.id);
    const order1 = { kind: 'kmalloc', owner: KERNEL, name: 'order-1', pages: 2, sensitive: false, contiguousAlign: 2 } as const;
    const atomic: Log = [];
    expect(allocPages(sys, { ...order1, atomic: true }, atomic)).toBeUndefined();
    expect([sys.mem.pcpFrame[pair], sys.mem.pcpFrame[pair + 1]]).toEqual([1, 1]);
    const log: Log = [];
    expect(allocPages(sys, order1, log)?.frames).toEqual([pair, pair + 1]);
    expect(log.map((e) => e.text)).toContain('drain_all_pages: the per-CPU lists given back to the free lists');
  });
});

describe('F53: asi_taints at boot', () => {
  test('as posted, every CPU returns to user space from boot without a data flush, though the kernel ran unrestricted; with bootTaintsKernelData the first entry flushes', () => {
    for (const [fix, expected] of [[false, /^cpu0: task \d+'s critical section runs on mm\d+\/userspace with taints 0x1 its class must flush first \(since the last flushes kernel data, /], [true, undefined]] as const) {
      const sys = createSystem({ geometry: 'small', cpus: 2, profile: 'asi25', options: { bootTaintsKernelData: fix } });
      expect(ASI_TAINT.check(sys)).toEqual(expected && expect.stringMatching(expected));
      expect(sys.asi25!.exposed.map((e) => e.data.includes('kernel'))).toEqual([!fix, !fix]);
    }
  });

  test("a violation the booted system has already is no op's: whatever the first op, its shape (the function keep-going files it under) is 'boot'; one an op makes keeps the op's", () => {
    const config = { geometry: 'small', cpus: 2, profile: 'asi25' } as const;
    for (const op of [{ op: 'asi_create', flags: 0 }, { op: 'kmalloc', size: 64, sensitive: false }, { op: 'flush_tlb_mm', cpu: 1, intr: [] }] as const) {
      const { ops, failure } = runOps(config, [op]);
      expect([failure?.violations.map((v) => v.invariant), failingFunction(ops, failure!)]).toEqual([['ASI-TAINT'], 'boot']);
    }
    const { ops, failure } = runOps({ ...config, options: { bootTaintsKernelData: true } }, [{ op: 'vmalloc', pages: 1, sensitive: true }]);
    expect([failure?.atBoot, failingFunction(ops, failure!)]).toEqual([undefined, 'vmalloc']);
  });
});

describe('memory pressure in the 2025 walks', () => {
  test('16 seeded walks on asi25-dm-fixed flip pageblocks both ways and meet an ALLOC_NOBLOCK refusal; the 2019 walks make no GFP_ATOMIC kmalloc and no vmalloc of more than 6 pages', () => {
    const seen = new Set<string>();
    const config = { geometry: 'small', cpus: 2, profile: 'asi25-dm-fixed' } as const;
    for (let i = 0; i < 16; i++) {
      runSeededWalk(config, `pressure/${i}`, 60, undefined, {
        onStep: (_s, rec) => {
          for (const e of rec.outcome.log) for (const what of ['become sensitive', 'become nonsensitive', 'ALLOC_NOBLOCK']) if (e.text.includes(what)) seen.add(what);
        },
      });
    }
    expect([...seen].sort()).toEqual(['ALLOC_NOBLOCK', 'become nonsensitive', 'become sensitive']);
    const ops = Array.from({ length: 4 }, (_, i) => runSeededWalk({ ...config, profile: 'fixed' }, `pressure/${i}`, 60).ops).flat();
    expect(ops.filter((op) => (op.op === 'kmalloc' && op.atomic) || (op.op === 'vmalloc' && op.pages > 6))).toEqual([]);
  });
});

describe('CR3 under ASI (patches 20, 22): native_flush_tlb_local reads CR3 and writes it back', () => {
  /** flush_tlb_mm on cpu1 (a system call: relaxed, still on its userspace domain), an NMI reading a sensitive vmalloc page at point `at`; the invariants violated at its micro-steps. */
  const flushWithNmi = (mutant: 'asi25-cr3-helpers-skip-exit' | undefined, at: number) => {
    const sys = createSystem({ geometry: 'small', cpus: 2, profile: 'asi25-fixed', ...(mutant ? { mutant } : {}) });
    const va = sys.kernel.vmAreas.get(step(sys, { op: 'vmalloc', pages: 1, sensitive: true }).ret)!.va;
    const seen: string[] = [];
    const r = step(sys, { op: 'flush_tlb_mm', cpu: 1, intr: [{ at, kind: 'nmi', va }] }, () => seen.push(...CURR_ASI.check(sys) ? ['CURR-ASI'] : []));
    return { ret: r.ret, seen: [...new Set(seen)], landed: r.log.some((e) => /nmi at flush_tlb_mm_range@__native_read_cr3/.test(e.text)) };
  };

  test('as posted, an NMI that faults between the read and the write finds the CPU already unrestricted (patch 20\'s asi_exit first): curr_asi and CR3 agree at every point', () => {
    // Point 0 is the op's start; then asi_exit's CR3 write, the read, the write, the return.
    for (let at = 0; at <= 4; at++) expect(flushWithNmi(undefined, at).seen, `nmi@${at}`).toEqual([]);
    expect(flushWithNmi(undefined, 2).landed).toBe(true);
  });

  test('without the exits (asi25-cr3-helpers-skip-exit), the CR3 read is restricted, the NMI\'s fault exits, and the write-back undoes it: CURR-ASI', () => {
    expect(flushWithNmi('asi25-cr3-helpers-skip-exit', 1)).toEqual({ ret: 0, seen: ['CURR-ASI'], landed: true });
  });

  test('IRQs and preemption are off across the read and the write (flush_tlb_mm_range\'s local branch): only NMIs and exceptions land there', () => {
    const sys = createSystem({ geometry: 'small', cpus: 2, profile: 'asi25-fixed' });
    const r = step(sys, { op: 'flush_tlb_mm', cpu: 1, intr: [{ at: 1, kind: 'irq' }, { at: 2, kind: 'switch' }] });
    expect(r.log.filter((e) => /held off/.test(e.text)).length).toBe(2);
  });
});

describe('the asi25 profiles: the op alphabet on the 2025 design', () => {
  const config = { geometry: 'small', cpus: 2, profile: 'asi25-fixed' } as const;

  test("the 2019 API's own calls are -ENOSYS there, and no walk makes them", () => {
    const sys = createSystem(config);
    const asi = step(sys, { op: 'asi_create', flags: 0 }).ret;
    for (const op of [
      { op: 'asi_map', asi, ptr: sys.kernel.layout.startKernelMap, size: PAGE_SIZE, level: 0 },
      { op: 'asi_unmap', asi, ptr: sys.kernel.layout.startKernelMap },
      { op: 'asi_remap', asi, cur: null, ptr: sys.kernel.layout.startKernelMap, size: PAGE_SIZE },
      { op: 'asi_map_percpu', asi, var: 'cpu_asi_session' },
      { op: 'asi_unmap_percpu', asi, var: 'cpu_asi_session' },
      { op: 'asi_map_module', asi, module: 1 },
    ] as const) expect(step(sys, op).ret, op.op).toBe(ENOSYS);
    const made = new Set<string>();
    for (let seed = 0; seed < 40; seed++) for (const op of runChoices(config, fc.sample(choicesArb(30), { numRuns: 1, seed })[0], WALK_WEIGHTS).ops) made.add(op.op);
    expect([...made].filter((k) => !ASI25_OPS.has(k as OpKind))).toEqual([]);
    expect([...ASI25_OPS].filter((k) => !made.has(k))).toEqual([]);
  });

  test("asi_create is a new mm's KVM domain (and its userspace one); a critical section is a system call, which returns to user space in the task's own domain; asi_destroy waits while another CPU may enter", () => {
    const sys = createSystem(config);
    const a = sys.asi25!;
    const userDomain = (cpu: number) => `mm${a.tasks.get(sys.kernel.current[cpu])!.mm}/userspace`;
    // Between ops every CPU's task runs in user space, in its critical section.
    expect(sys.cpus.map((c) => [a.currAsi[c.id], a.tasks.get(sys.kernel.current[c.id])!.target])).toEqual([0, 1].map((c) => [userDomain(c), userDomain(c)]));
    expect(step(sys, { op: 'asi_create', flags: 1 }).ret).toBe(EINVAL);
    const asi = step(sys, { op: 'asi_create', flags: 0 }).ret;
    expect([a.domains.get(`mm${asi}/KVM`), a.domains.get(`mm${asi}/userspace`)]).toMatchObject([{ mm: asi, refCount: 1 }, { mm: asi, refCount: 1 }]);
    const r = step(sys, { op: 'asi_enter', cpu: 1, asi, intr: [], race: { at: 2, on: 0, op: { op: 'asi_destroy', asi } } });
    expect(r.ret).toBe(0);
    expect(r.log.map((e) => ('text' in e ? e.text : ''))).toContain(`cpu0: asi_destroy asi#${asi} = -EBUSY`);
    expect(sys.ghost.visited.filter((v) => v.endsWith('@write_cr3(asi_cr3)'))).toEqual(['asi_enter@write_cr3(asi_cr3)', 'exit_to_user_mode@write_cr3(asi_cr3)']);
    expect([a.currAsi[1], sys.cpus[1].preemptCount, a.tasks.get(sys.kernel.current[1])!.target]).toEqual([userDomain(1), 0, userDomain(1)]);
    expect(step(sys, { op: 'asi_destroy', asi }).ret).toBe(0);
    expect([a.domains.get(`mm${asi}/KVM`)!.refCount, a.domains.get(`mm${asi}/userspace`)!.refCount]).toEqual([0, 0]);
    expect(step(sys, { op: 'asi_enter', cpu: 0, asi, intr: [] }).ret).toBe(EINVAL);
  });

  test("the userspace class (patch 25): fork makes the child's mm and its domain, the last exit of an mm destroys it; a task preempted in user space comes back through its interrupt's return", () => {
    const sys = createSystem(config);
    const a = sys.asi25!;
    const child = step(sys, { op: 'task_create' }).ret;
    const mm = a.tasks.get(child)!.mm;
    expect(a.domains.get(`mm${mm}/userspace`)).toMatchObject({ refCount: 1 });
    // cpu0 runs the child: its task, in user space, is taken off the CPU from an interrupt.
    const parent = sys.kernel.current[0];
    expect(step(sys, { op: 'schedule', cpu: 0, task: child, intr: [] }).ret).toBe(0);
    expect([a.currAsi[0], a.tasks.get(child)!.target, a.tasks.get(parent)!.target]).toEqual([`mm${mm}/userspace`, `mm${mm}/userspace`, null]);
    // The parent made the system call: relaxed. Back on cpu1 it returns from it into its domain.
    expect(step(sys, { op: 'schedule', cpu: 1, task: parent, intr: [] }).ret).toBe(0);
    expect([a.currAsi[1], a.tasks.get(parent)!.target]).toEqual([`mm${a.tasks.get(parent)!.mm}/userspace`, `mm${a.tasks.get(parent)!.mm}/userspace`]);
    // A 'switch' while cpu0's child runs in user space: preempted from an interrupt, and back.
    expect(step(sys, { op: 'interrupt', cpu: 0, kind: 'switch', intr: [] }).ret).toBe(0);
    expect([a.currAsi[0], a.tasks.get(child)!.intrNestDepth]).toEqual([`mm${mm}/userspace`, 0]);
    expect(step(sys, { op: 'schedule', cpu: 0, task: [...sys.kernel.tasks.keys()].find((t) => !sys.kernel.current.includes(t))!, intr: [] }).ret).toBe(0);
    expect(step(sys, { op: 'task_exit', task: child }).ret).toBe(0);
    expect(a.domains.get(`mm${mm}/userspace`)).toMatchObject({ refCount: 0, pgd: null });
    expect(sys.ghost.events).toEqual([]);
  });

  test('KVM (patch 21): VMs of one VMM share its domain, one reference each; KVM_RUN enters it, handles exits on it, leaves it before returning; the last close destroys it', () => {
    const sys = createSystem(config);
    const vm = step(sys, { op: 'kvm_create_vm', memcg: 1 }).ret;
    const other = step(sys, { op: 'kvm_create_vm', memcg: 1 }).ret;
    const domain = sys.kvm!.vms.get(vm)!.asi25!;
    expect(sys.kvm!.vms.get(other)!.asi25).toBe(domain);
    expect(sys.asi25!.domains.get(domain)!.refCount).toBe(2);
    // A VM's domain is KVM's: no op names it.
    expect(step(sys, { op: 'asi_destroy', asi: sys.asi25!.domains.get(domain)!.mm }).ret).toBe(EINVAL);
    const vcpu = step(sys, { op: 'kvm_create_vcpu', vm }).ret;
    expect(sys.kvm!.vcpus.get(vcpu)!.asi).toBeNull();
    const r = step(sys, { op: 'kvm_run', cpu: 0, vcpu, exits: ['cpuid', 'msr'], intr: [] });
    expect(r.ret).toBe(0);
    expect(r.log.filter((e) => e.kind === 'note' && e.text.includes(': stays isolated')).length).toBe(2);
    // The new vCPU thread switched in, starting in user space (the VMM's userspace domain) before it
    // issues KVM_RUN; the VM's domain entered once (the exit handlers ran on it, so the second
    // entry found the CPU there), left by asi_exit(), and the VMM's domain again on the way back.
    const vmm = `mm${sys.asi25!.tasks.get(sys.kernel.current[0])!.mm}/userspace`;
    expect(sys.ghost.visited.filter((v) => v.endsWith('@write_cr3(asi_cr3)') || v.endsWith('@write_cr3(unrestricted_cr3)'))).toEqual([
      'schedule@write_cr3(unrestricted_cr3)',
      'exit_to_user_mode@write_cr3(asi_cr3)',
      'vcpu_run@write_cr3(asi_cr3)',
      'vcpu_run@write_cr3(unrestricted_cr3)',
      'exit_to_user_mode@write_cr3(asi_cr3)',
    ]);
    expect(sys.asi25!.currAsi[0]).toBe(vmm);
    expect(step(sys, { op: 'kvm_destroy_vm', vm }).ret).toBe(0);
    expect(sys.asi25!.domains.get(domain)!.refCount).toBe(1);
    expect(step(sys, { op: 'kvm_destroy_vm', vm: other }).ret).toBe(0);
    expect(sys.asi25!.domains.get(domain)!).toMatchObject({ refCount: 0, pgd: null });
  });

  test('F46: __get_current_cr3_fast WARNs on every VM entry as posted (inside the critical section), and not with its fix', () => {
    for (const [profile, warns] of [['asi25', true], ['asi25-fixed', false]] as const) {
      const sys = createSystem({ geometry: 'small', cpus: 2, profile });
      const vcpu = step(sys, { op: 'kvm_create_vcpu', vm: step(sys, { op: 'kvm_create_vm' }).ret }).ret;
      step(sys, { op: 'kvm_run', cpu: 0, vcpu, exits: ['cpuid'], intr: [] });
      expect(sys.ghost.events.some((e) => e.invariant === 'NO-WARN' && e.message === 'cpu0: VM_WARN_ON_ONCE(asi && asi_in_critical_section()) in __get_current_cr3_fast fired (RFC v2 2025)'), profile).toBe(warns);
      expect(sys.ghost.events.filter((e) => e.invariant !== 'NO-WARN'), profile).toEqual([]);
    }
  });
});
