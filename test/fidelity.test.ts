// Posted-code fidelity (issue 9, item 3): each test quotes the RFC v2 patch line, or the Linux 5.2
// line, that the `rfc-v2` profile follows, and shows what it does on a concrete model state; where
// that behaviour is a defect, the design option of `fixed` that fixes it.

import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { choicesArb } from '../src/generators/arbitraries.ts';
import { runChoices, runOps } from '../src/check/run.ts';
import { parseCounterexample } from '../src/check/counterexample.ts';
import { createSystem, step } from '../src/model/step.ts';
import type { Op } from '../src/model/ops.ts';
import type { Config, System } from '../src/model/system.ts';
import type { DesignOptions } from '../src/model/options.ts';
import { GEOMETRIES, PAGE_SIZE, PGT_LEVEL_P4D, PGT_LEVEL_PGD, PGT_LEVEL_PMD, PGT_LEVEL_PTE, PGT_LEVEL_PUD, indexAt, levelSize } from '../src/model/mm/geometry.ts';
import { walk } from '../src/model/mm/pagetable.ts';
import { violates } from '../src/check/shrink.ts';
import { _PAGE_RW, entryFrame, isLarge, isNone, mkEntry } from '../src/model/mm/pte.ts';
import { allocationOfFrame } from '../src/model/mm/memory.ts';

/** Past F1, F2 and F11, which fire at every asi_create of the posted code. */
const PAST_CREATE: Partial<DesignOptions> = { splitLargePages: true, percpuSecretsOwnPage: true, atomicAllocs: true };

function rfcV2(options: Partial<DesignOptions> = {}, kernel?: Config['kernel']): Config {
  return { geometry: 'small', cpus: 1, profile: 'rfc-v2', options: { ...PAST_CREATE, ...options }, ...(kernel ? { kernel } : {}) };
}

function run(config: Config, ops: readonly Op[]): { sys: System; rets: number[] } {
  const sys = createSystem(config);
  const rets = ops.map((op) => step(sys, op).ret);
  return { sys, rets };
}

function topEntry(sys: System, root: number, va: number): number {
  return sys.tables.get(root)![indexAt(sys.g, PGT_LEVEL_PGD, va)];
}

function invariantsAfter(config: Config, ops: readonly Op[]): string[] {
  return runOps(config, ops).failure?.violations.map((v) => v.invariant) ?? [];
}

describe('asi_clear_pgd_range (patch 11): pgd_clear() is a no-op with 4-level paging', () => {
  // RFC v2 patch 11, asi_clear_pgd_range:
  //     if (level == PGT_LEVEL_PGD) {
  //             pgd_clear(pgd);
  //             continue;
  //     }
  // Linux 5.2, include/asm-generic/pgtable-nop4d.h (x86-64 with CONFIG_X86_5LEVEL=n):
  //     static inline void pgd_clear(pgd_t *pgd)	{ }
  // and arch/x86/include/asm/pgtable.h with CONFIG_X86_5LEVEL=y, 4-level at run time:
  //     #define pgd_clear(pgd) (pgtable_l5_enabled() ? native_pgd_clear(pgd) : 0)
  // asi_clear_p4d_range's `p4d_clear(p4d)` is native_p4d_clear(), which writes the same entry.
  const v = createSystem(rfcV2()).kernel.layout.vmallocStart;
  const theOps: Op[] = [
    { op: 'asi_create', flags: 0 },
    { op: 'asi_map', asi: 1, ptr: v, size: PAGE_SIZE, level: PGT_LEVEL_P4D },
    // asi_set_pgd refuses an empty slot (pgd_none() is 0), but accepts the equal entry.
    { op: 'asi_map', asi: 1, ptr: v + PAGE_SIZE, size: PAGE_SIZE, level: PGT_LEVEL_PGD },
    { op: 'asi_unmap', asi: 1, ptr: v },
    { op: 'asi_unmap', asi: 1, ptr: v + PAGE_SIZE },
  ];

  test('the posted code leaves the vmalloc slot mapped after both ranges are unmapped (RANGE-NO-LEAK)', () => {
    const { sys, rets } = run(rfcV2(), theOps);
    expect(rets).toEqual([1, 0, 0, 0, 0]);
    const asi = sys.asis.get(1)!;
    expect(asi.ranges.map((r) => r.ptr)).not.toContain(v);
    expect(topEntry(sys, asi.pgd, v)).toBe(topEntry(sys, sys.kernel.pgd, v));
    expect(violates(rfcV2(), theOps, 'RANGE-NO-LEAK')).toBe(true);
  });

  test('fixed: clearPgdAsP4d clears the entry, as p4d_clear() does', () => {
    const config = rfcV2({ clearPgdAsP4d: true });
    const { sys } = run(config, theOps);
    expect(isNone(topEntry(sys, sys.asis.get(1)!.pgd, v))).toBe(true);
    // (The P4D-level range still exposes the rest of the slot it rounds out to: F4, not this finding.)
    expect(violates(config, theOps, 'RANGE-NO-LEAK')).toBe(false);
  });

  test('a P4D-level range alone is cleared: p4d_clear() writes the top-level entry', () => {
    const { sys } = run(rfcV2(), theOps.filter((_, i) => i !== 2 && i !== 4));
    expect(isNone(topEntry(sys, sys.asis.get(1)!.pgd, v))).toBe(true);
  });
});

describe('asi_map_range copies from current->mm->pgd (patches 08, 10, 14)', () => {
  // RFC v2 patch 08, asi_map_range:
  //     err = asi_copy_pgd_range(asi, asi->pgd, current->mm->pgd,
  //                              addr, end, level);
  // (patch 10 and patch 14's asi_unmap_overlap copy from current->mm->pgd as well.)
  const create: Op[] = [{ op: 'asi_create', flags: 0 }];

  test('from a kernel thread (current->mm == NULL) the copy dereferences NULL under asi->lock', () => {
    const config = rfcV2({}, { apiCaller: 'kernel-thread' });
    const { sys, rets } = run(config, create);
    expect(rets).toEqual([-14]);
    expect(sys.asis.size).toBe(0);
    const v = runOps(config, create).failure!.violations.find((x) => x.invariant === 'NO-WARN');
    expect(v?.message).toMatch(/NULL pointer dereference.*current->mm == NULL/);
  });

  test('fixed: copyFromInitMm copies from init_mm.pgd, the reference table patch 03 names', () => {
    // RFC v2 patch 03, asi_fault: "'reference' page table is init_mm.pgd."
    const config = rfcV2({ copyFromInitMm: true }, { apiCaller: 'kernel-thread' });
    expect(run(config, create).rets).toEqual([1]);
    expect(invariantsAfter(config, create)).toEqual([]);
  });

  test("a user task's pgd reads as init_mm.pgd: every top-level slot the kernel uses at run time exists at boot", () => {
    // Linux 5.2 pgd_ctor() copies the kernel half with clone_pgd_range(pgd + KERNEL_PGD_BOUNDARY,
    // swapper_pg_dir + KERNEL_PGD_BOUNDARY, KERNEL_PGD_PTRS): a later difference needs a top-level
    // entry the kernel creates after the mm (synced lazily by vmalloc_fault), which the model's
    // layout never does: vmalloc and modules each live in one slot populated at boot.
    for (const geometry of ['small', 'real'] as const) {
      const sys = createSystem({ geometry, cpus: 2, profile: 'rfc-v2' });
      const l = sys.kernel.layout;
      const slot = levelSize(sys.g, PGT_LEVEL_PGD);
      expect(l.vmallocEnd - l.vmallocStart).toBe(slot);
      expect(Math.floor(l.modulesStart / slot)).toBe(Math.floor((l.modulesEnd - 1) / slot));
      for (const va of [l.vmallocStart, l.modulesStart]) expect(isNone(topEntry(sys, sys.kernel.pgd, va))).toBe(false);
    }
  });
});

describe('CONFIG_TRANSPARENT_HUGEPAGE is a switch of the modelled kernel (patches 08, 11)', () => {
  // RFC v2 patch 08, asi_copy_pmd_range:
  //     if (level == PGT_LEVEL_PMD || pmd_none(*src_pmd) ||
  //         pmd_trans_huge(*src_pmd) || pmd_devmap(*src_pmd)) {
  // Linux 5.2 include/asm-generic/pgtable.h, without CONFIG_TRANSPARENT_HUGEPAGE:
  //     static inline int pmd_trans_huge(pmd_t pmd)
  //     {
  //             return 0;
  //     }
  // arch/x86/include/asm/pgtable.h: pmd_present() is true for a PSE entry, so the copy goes on to
  //     err = asi_copy_pte_range(asi, dst_pmd, src_pmd, addr, next);
  // whose pte_offset_map(src_pmd, addr) points into the large page's first frame.
  const create: Op[] = [{ op: 'asi_create', flags: 0 }];

  test('THP on (the default): the kernel text large page is copied verbatim', () => {
    const { sys } = run(rfcV2({ splitLargePages: false }), create);
    const w = walk(sys.g, sys.tables, sys.asis.get(1)!.pgd, sys.kernel.layout.startKernelMap);
    expect(w.ok && w.leaf.level).toBe(PGT_LEVEL_PMD);
  });

  test('THP off: the copy reads the kernel text as a PTE table (PT-OWN) and maps none of it', () => {
    const config = rfcV2({ splitLargePages: false }, { thp: false });
    const { sys, rets } = run(config, create);
    expect(rets).toEqual([1]);
    expect(walk(sys.g, sys.tables, sys.asis.get(1)!.pgd, sys.kernel.layout.startKernelMap).ok).toBe(false);
    const textPmd = walk(sys.g, sys.tables, sys.kernel.pgd, sys.kernel.layout.startKernelMap);
    const frame = textPmd.ok ? textPmd.leaf.frame : -1;
    expect(allocationOfFrame(sys.mem, frame)?.name).toBe('kernel image');
    const v = runOps(config, create).failure!.violations.map((x) => `${x.invariant}: ${x.message}`);
    expect(v).toContain(`PT-OWN: ASI 1 copy reads pfn ${frame}, a data page of kernel image, as a pte table (a kernel pmd large page that pmd_trans_huge/pud_trans_huge do not see without CONFIG_TRANSPARENT_HUGEPAGE)`);
    expect(v.some((x) => x.startsWith('ENTRY-MAPPED'))).toBe(true);
  });

  test('an unvalidated asi_pXX_offset into a data page (offset-not-validated) is a PT-OWN violation, not a model crash', () => {
    // What once crashed the model in entryAt (seeded walk crash-11 of asi-check 0.1): the ASI holds
    // a kernel 1G direct-map entry copied whole, and a PTE-level map inside it walks through the
    // large entry's frame as if it were a PMD table it owns.
    const config: Config = { geometry: 'small', cpus: 2, profile: 'fixed', mutant: 'offset-not-validated', options: { privateLowerTables: false, mapRequiresLiveMemory: false, mapRefusesSharedSlabPages: false } };
    const l = createSystem(config).kernel.layout;
    const pud = levelSize(GEOMETRIES.small, PGT_LEVEL_PUD);
    const last = l.directMap + l.physFrames * PAGE_SIZE - pud;
    const res = runOps(config, [
      { op: 'asi_create', flags: 0 },
      { op: 'asi_map', asi: 1, ptr: last, size: pud, level: PGT_LEVEL_PUD },
      { op: 'asi_map', asi: 1, ptr: last + PAGE_SIZE, size: PAGE_SIZE, level: PGT_LEVEL_PTE },
    ]);
    expect(res.failure?.violations.map((v) => v.invariant)).toContain('PT-OWN');
    expect(res.failure!.violations.find((v) => v.invariant === 'PT-OWN')!.message).toMatch(/into data page pfn \d+ \(.*\), which it does not own/);
  });

  test('fixed: pmdLargeNotTransHuge sees the PSE bit with THP off', () => {
    const config = rfcV2({ pmdLargeNotTransHuge: true, splitLargePages: false }, { thp: false });
    const { sys } = run(config, create);
    const w = walk(sys.g, sys.tables, sys.asis.get(1)!.pgd, sys.kernel.layout.startKernelMap);
    expect(w.ok && w.leaf.level).toBe(PGT_LEVEL_PMD);
  });

  test('THP off: asi_clear_pmd_range walks into a large entry instead of clearing it', () => {
    // RFC v2 patch 11, asi_clear_pmd_range:
    //     if (level == PGT_LEVEL_PMD || pmd_trans_huge(*pmd) ||
    //         pmd_devmap(*pmd)) {
    //             pmd_clear(pmd);
    // The ASI holds the kernel's large text PMD (as a PMD-level copy leaves it); the PTE-level core
    // range of the kernel image is unmapped (with clearPresentPmd, F3's fix, so that the clear
    // looks at populated entries at all).
    for (const [fix, stays] of [[false, true], [true, false]] as const) {
      const sys = createSystem(rfcV2({ clearPresentPmd: true, pmdLargeNotTransHuge: fix, splitLargePages: false }, { thp: false }));
      const text = sys.kernel.layout.startKernelMap;
      step(sys, { op: 'asi_create', flags: 0 });
      const asiPgd = sys.asis.get(1)!.pgd;
      const i = indexAt(sys.g, PGT_LEVEL_PMD, text);
      sys.tables.get(findPmdTable(sys, asiPgd, text))![i] = sys.tables.get(findPmdTable(sys, sys.kernel.pgd, text))![i];
      const out = step(sys, { op: 'asi_unmap', asi: 1, ptr: text });
      expect(walk(sys.g, sys.tables, asiPgd, text).ok).toBe(stays);
      expect(out.log.some((e) => e.kind === 'pr_err' && /PTE pfn \d+ not found/.test(e.text))).toBe(stays);
    }
  });

  test('patch 08 `if (!pmd_present(*src_pmd))`: pr_warn and pmd_clear(dst_pmd)', () => {
    // RFC v2 patch 08, asi_copy_pmd_range:
    //     if (!pmd_present(*src_pmd)) {
    //             pr_warn("ASI %p: PMD not present for [%lx,%lx]\n",
    //                     asi, addr, next - 1);
    //             pmd_clear(dst_pmd);
    //             continue;
    //     }
    const config = rfcV2();
    const sys = createSystem(config);
    const v = sys.kernel.layout.vmallocStart;
    step(sys, { op: 'asi_create', flags: 0 });
    expect(step(sys, { op: 'asi_map', asi: 1, ptr: v, size: PAGE_SIZE, level: PGT_LEVEL_PTE }).ret).toBe(0);
    const asiPgd = sys.asis.get(1)!.pgd;
    expect(walk(sys.g, sys.tables, asiPgd, v).ok).toBe(true);
    // A kernel PMD entry that is not none and not present (what pmd_present() calls not present).
    const pmdTable = findPmdTable(sys, sys.kernel.pgd, v);
    const i = indexAt(sys.g, PGT_LEVEL_PMD, v);
    sys.tables.get(pmdTable)![i] = mkEntry(entryFrame(sys.tables.get(pmdTable)![i]), _PAGE_RW);
    const out = step(sys, { op: 'asi_map', asi: 1, ptr: v + PAGE_SIZE, size: PAGE_SIZE, level: PGT_LEVEL_PTE });
    expect(out.ret).toBe(0);
    expect(out.log.some((e) => e.kind === 'pr_warn' && /PMD not present/.test(e.text))).toBe(true);
    // The ASI's PMD entry is cleared: the first range is gone from the ASI page table with it.
    expect(walk(sys.g, sys.tables, asiPgd, v).ok).toBe(false);
  });

  test('the kernel settings of a saved configuration are validated, those of its format version only', () => {
    const file = (kernel: unknown, version = 2) =>
      JSON.stringify({ format: 'asi-check-counterexample', version, asiCheck: '0.2.0', title: 't', invariant: 'PT-OWN', message: '', config: { geometry: 'small', cpus: 1, profile: 'rfc-v2', kernel }, ops: create });
    expect(parseCounterexample(file({ thp: false, apiCaller: 'kernel-thread', slab: false, kmemcg: false, pml: false })).config.kernel).toEqual({ thp: false, apiCaller: 'kernel-thread', slab: false, kmemcg: false, pml: false });
    expect(() => parseCounterexample(file({ thp: 'off' }))).toThrow(/kernel.thp/);
    expect(() => parseCounterexample(file({ apiCaller: 'kworker' }))).toThrow(/apiCaller/);
    expect(() => parseCounterexample(file({ pti: true }))).toThrow(/unknown kernel setting/);
    expect(parseCounterexample(file({ layout: 1, slab: true })).config.kernel).toEqual({ layout: 1, slab: true });
    expect(() => parseCounterexample(file({ layout: 2 }))).toThrow(/kernel.layout must be 1/);
    // Format 1 (asi-check 0.1): its settings, replayed on its memory.
    expect(parseCounterexample(file({ thp: false, slab: true }, 1)).config.kernel).toEqual({ thp: false, slab: true, layout: 1 });
    expect(() => parseCounterexample(file({ kmemcg: false }, 1))).toThrow(/unknown kernel setting "kmemcg" \(format version 1\)/);
    expect(parseCounterexample(file({ layout: 1 }, 1)).config.kernel, 'a loaded format-1 file written back as it is').toEqual({ layout: 1 });
  });

  test('fixed violates no invariant in a kernel without THP, its ASI API called from a kernel thread', () => {
    const config: Config = { geometry: 'small', cpus: 2, profile: 'fixed', kernel: { thp: false, apiCaller: 'kernel-thread' } };
    fc.assert(fc.property(choicesArb(30), (choices) => runChoices(config, choices).failure === undefined), { numRuns: 60, seed: 9 });
  });
});

function findPmdTable(sys: System, root: number, va: number): number {
  let table = root;
  for (const level of [PGT_LEVEL_PGD, PGT_LEVEL_PUD] as const) {
    const e = sys.tables.get(table)![indexAt(sys.g, level, va)];
    if (isNone(e) || isLarge(e)) throw new Error('no PMD table');
    table = entryFrame(e);
  }
  return table;
}

describe('espfix sits in its own top-level slot, after a hole (Documentation/x86/x86_64/mm.rst)', () => {
  // Linux 5.2 mm.rst, 4-level paging:
  //     fffffe0000000000 |   -2    TB | fffffe7fffffffff |  0.5 TB | cpu_entry_area mapping
  //     fffffe8000000000 |   -1.5  TB | fffffeffffffffff |  0.5 TB | ... unused hole
  //     ffffff0000000000 |   -1    TB | ffffff7fffffffff |  0.5 TB | %esp fixup stacks
  // arch/x86/include/asm/pgtable_64_types.h: #define ESPFIX_PGD_ENTRY _AC(-2, UL)
  for (const geometry of ['real', 'small'] as const) {
    test(`${geometry} geometry: asi_create's cpu_entry_area range spills into the hole, not into espfix`, () => {
      const sys = createSystem({ geometry, cpus: 2, profile: 'rfc-v2' });
      const l = sys.kernel.layout;
      const slot = (va: number) => indexAt(sys.g, PGT_LEVEL_PGD, va);
      const entries = 2 ** sys.g.bitsPerLevel;
      expect(slot(l.espfixBase)).toBe(entries - 2);
      expect(slot(l.ceaBase)).toBe(entries - 4);
      expect(isNone(topEntry(sys, sys.kernel.pgd, l.ceaBase + levelSize(sys.g, PGT_LEVEL_PGD)))).toBe(true);
      step(sys, { op: 'asi_create', flags: 0 });
      expect(walk(sys.g, sys.tables, sys.asis.get(1)!.pgd, l.espfixBase).ok).toBe(false);
    });
  }
});

describe('NMI context (KERNEL-RULES): asi_exit from the end of an NMI', () => {
  // RFC v2 patch 02, asi_finish_abort (ASI_FINISH_ABORT at the end of every handler, NMI included):
  //     asi_exit(this_cpu_read(cpu_asi_session.asi));
  // patch 15, asi_exit:
  //     /* unmap stack */
  //     asi_unmap(asi, current->stack);
  // and patch 14, asi_unmap:
  //     spin_lock_irqsave(&asi->lock, flags);
  //     ...
  //     kfree(range_mapping);
  const ops: Op[] = [
    { op: 'asi_create', flags: 0 },
    { op: 'asi_enter', cpu: 0, asi: 1, intr: [] },
    { op: 'interrupt', cpu: 0, kind: 'nmi', intr: [] },
  ];
  const kernelRules = (config: Config, o: readonly Op[]): string[] => {
    const sys = createSystem(config);
    return o.flatMap((op) => (step(sys, op), sys.ghost.events.filter((e) => e.invariant === 'KERNEL-RULES').map((e) => e.message)));
  };

  test('the posted code takes asi->lock and kfrees the range in NMI context', () => {
    expect(kernelRules(rfcV2(), ops)).toEqual([
      'BUG: spin_lock(asi#1->lock) in NMI context on cpu0 (preempt_count 2, IRQs off, in nmi handler)',
      'BUG: kfree(range_mapping) in asi_unmap of asi#1 in NMI context on cpu0 (preempt_count 3, IRQs off, in nmi handler, holding asi#1->lock)',
    ]);
    expect(invariantsAfter(rfcV2(), ops)).toContain('KERNEL-RULES');
  });

  test('the other fixes do not help: fixed without nmiDefersExit breaks the rule too', () => {
    const config: Config = { geometry: 'small', cpus: 1, profile: 'fixed', options: { nmiDefersExit: false } };
    expect(invariantsAfter(config, ops)).toEqual(['KERNEL-RULES']);
  });

  test('fixed: nmiDefersExit ends the session in the NMI and unmaps the stack from irq_work once IRQs are on', () => {
    const config: Config = { geometry: 'small', cpus: 1, profile: 'fixed' };
    // The NMI lands inside an IRQ handler (IRQs off) before it aborts: the NMI ends the session,
    // and the irq_work waits for the IRQ handler's iret.
    const nested: Op[] = [...ops.slice(0, 2), { op: 'interrupt', cpu: 0, kind: 'irq', intr: [{ at: 1, kind: 'nmi' }] }];
    for (const o of [ops, nested]) {
      const sys = createSystem(config);
      const logs = o.map((op) => step(sys, op).log);
      const stack = sys.kernel.layout.vmallocStart;
      expect(sys.cpus[0].session.state).toBe(0);
      expect(sys.cpus[0].session.deferredUnmap).toBeNull();
      expect(walk(sys.g, sys.tables, sys.asis.get(1)!.pgd, stack).ok).toBe(false);
      expect(logs[2].some((e) => e.text === `cpu0: irq at ${o === ops ? 'nmi' : 'irq'}@iret (cr3 kernel/pcid1)`)).toBe(true);
      expect(invariantsAfter(config, o)).toEqual([]);
    }
  });

  test('fixed: no deferred unmap outlives its op', () => {
    const config: Config = { geometry: 'small', cpus: 2, profile: 'fixed' };
    let nmis = 0;
    fc.assert(
      fc.property(choicesArb(30), (choices) => {
        const r = runChoices(config, choices, undefined, {
          onStep: (sys, rec) => {
            nmis += rec.outcome.log.filter((e) => / nmi at /.test(e.text)).length;
            expect(sys.cpus.map((c) => c.session.deferredUnmap)).toEqual(sys.cpus.map(() => null));
          },
        });
        return r.failure === undefined;
      }),
      { numRuns: 100, seed: 11 },
    );
    expect(nmis).toBeGreaterThan(0);
  });
});
