// Each way the checker could once be fooled (issue 9), as a specification: the blind spot is now
// seen, on a real model state, and the design option that closes it makes the same ops pass.

import { describe, expect, test } from 'vitest';
import { type RunResult, runOps } from '../src/check/run.ts';
import { createSystem, step } from '../src/model/step.ts';
import type { Op } from '../src/model/ops.ts';
import { type Config, cloneSystem } from '../src/model/system.ts';
import type { DesignOptions } from '../src/model/options.ts';
import { PAGE_SIZE, PGT_LEVEL_PMD, levelSize } from '../src/model/geometry.ts';
import { directMapVa } from '../src/model/kernel.ts';

const fixedWithout = (...off: (keyof DesignOptions)[]): Config => ({
  geometry: 'small',
  cpus: 2,
  profile: 'fixed',
  options: Object.fromEntries(off.map((o) => [o, false])) as Partial<DesignOptions>,
});
const FIXED: Config = { geometry: 'small', cpus: 2, profile: 'fixed' };

function violated(r: RunResult): string[] {
  return r.failure?.violations.map((v) => v.invariant) ?? [];
}

/**
 * Ops that map the direct-map page of a free frame, then allocate sensitive data that lands on it:
 * the frame is the one that is still the lowest free frame once asi_map has taken its tables.
 */
function mapFreeFrameThenAllocate(config: Config): Op[] {
  const sys = createSystem(config);
  step(sys, { op: 'asi_create', flags: 0 });
  for (let f = sys.mem.frameAlloc.indexOf(-1); f < sys.mem.frameAlloc.length; f++) {
    if (sys.mem.frameAlloc[f] !== -1) continue;
    const probe = cloneSystem(sys);
    const map: Op = { op: 'asi_map', asi: 1, ptr: directMapVa(sys, f), size: PAGE_SIZE, level: 0 };
    if (step(probe, map).ret === 0 && probe.mem.frameAlloc.indexOf(-1) === f) return [{ op: 'asi_create', flags: 0 }, map, { op: 'kmalloc', size: PAGE_SIZE, sensitive: true }];
  }
  throw new Error('no free frame stays the next one allocated');
}

describe('ISOLATION judges what a range reached when it was mapped, not what its addresses reach now', () => {
  test('a range mapped over a free frame does not license the sensitive data allocated there later', () => {
    const open = fixedWithout('mapRequiresLiveMemory');
    const ops = mapFreeFrameThenAllocate(open);
    const r = runOps(open, ops);
    expect(violated(r)).toEqual(['ISOLATION']);
    expect(r.failure!.violations[0].message).toContain('no range of it reached when it was mapped');
    const fixed = createSystem(FIXED);
    expect(ops.map((op) => step(fixed, op).ret)[1], 'the fix refuses the map').toBeLessThan(0);
    expect(runOps(FIXED, ops).failure).toBeUndefined();
  });

  test('a whole-entry copy that shares a kernel lower table does not license what the kernel maps under it later', () => {
    const sys = createSystem(FIXED);
    const pmd = levelSize(sys.g, PGT_LEVEL_PMD);
    // The vmalloc area in use ends inside a PMD: the next vmalloc lands under the kernel PTE table that maps it.
    const end = Math.max(...[...sys.kernel.vmAreas.values()].map((v) => v.va + v.span * PAGE_SIZE));
    expect(end % pmd).not.toBe(0);
    const ops: Op[] = [
      { op: 'asi_create', flags: 0 },
      { op: 'asi_map', asi: 1, ptr: end - (end % pmd), size: pmd, level: PGT_LEVEL_PMD },
      { op: 'vmalloc', pages: 1, sensitive: true },
    ];
    expect(violated(runOps(fixedWithout('privateLowerTables'), ops))).toContain('ISOLATION');
    expect(violated(runOps(FIXED, ops))).toEqual([]);
  });
});

describe('invariants that hold inside an op are judged at every micro-step', () => {
  const config: Config = { ...FIXED, mutant: 'stack-mapped-after-cr3' };
  const ops: Op[] = [
    { op: 'asi_create', flags: 0 },
    { op: 'asi_enter', cpu: 0, asi: 1, intr: [] },
  ];
  test('a stack mapped only after load_cr3 is caught at the micro-step where the CPU is isolated without it', () => {
    const r = runOps(config, ops);
    expect(violated(r)).toContain('STACK');
    expect(r.failure!.where).toBe('asi_enter@load_cr3(asi->pgd)');
  });
  test('the same ops look correct when only the state between ops is judged', () => {
    expect(runOps(config, ops, { microSteps: false }).failure).toBeUndefined();
  });
});

describe('CALLER-CONTRACT: a call told 0 got what it asked for, and no call removes what another caller mapped', () => {
  const sys = createSystem(FIXED);
  step(sys, { op: 'asi_create', flags: 0 });
  const buf = sys.kernel.kmallocs.get(step(sys, { op: 'kmalloc', size: 2 * PAGE_SIZE, sensitive: false }).ret)!.va;
  const cases: { name: string; fix: keyof DesignOptions; ops: Op[]; says: string }[] = [
    {
      name: "asi_unmap by one caller removes another caller's range at the same address",
      fix: 'unmapMatchesCaller',
      ops: [{ op: 'asi_map', asi: 1, ptr: buf, size: 0x40, level: 0 }, { op: 'asi_unmap', asi: 1, ptr: buf, caller: 1 }],
      says: 'which caller 0 mapped',
    },
    {
      name: 'asi_remap of the same pointer with a larger size returns 0 and maps nothing new',
      fix: 'remapChecksSize',
      ops: [{ op: 'asi_map', asi: 1, ptr: buf, size: 0x40, level: 0 }, { op: 'asi_remap', asi: 1, cur: buf, ptr: buf, size: 2 * PAGE_SIZE }],
      says: 'returned 0',
    },
    {
      name: 'a failing asi_map_percpu removes the ranges of that variable mapped before it',
      fix: 'percpuUndoesOwn',
      ops: [{ op: 'asi_map_percpu', asi: 1, var: 'rcu_data' }, { op: 'asi_map_percpu', asi: 1, var: 'rcu_data' }],
      says: 'failed (-16) and removed',
    },
  ];
  for (const c of cases) {
    test(`${c.name} (fixed by ${c.fix})`, () => {
      const ops: Op[] = [{ op: 'asi_create', flags: 0 }, { op: 'kmalloc', size: 2 * PAGE_SIZE, sensitive: false }, ...c.ops];
      const r = runOps(fixedWithout(c.fix), ops);
      expect(violated(r)).toEqual(['CALLER-CONTRACT']);
      expect(r.failure!.violations[0].message).toContain(c.says);
      expect(runOps(FIXED, ops).failure).toBeUndefined();
    });
  }
});
