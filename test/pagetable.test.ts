// The three views of a page table must agree: the hardware walk of one address (`walk`), the
// translations of a VA window (`leaves`), and the whole abstract map (`interpret`). Every invariant
// reads the page tables through one of them, so a disagreement would make the invariants lie.

import { describe, expect } from 'vitest';
import { fc, test } from '@fast-check/vitest';
import {
  type Geometry,
  GEOMETRIES,
  PAGE_SIZE,
  PGT_LEVEL_P4D,
  PGT_LEVEL_PGD,
  PGT_LEVEL_PMD,
  PGT_LEVEL_PTE,
  PGT_LEVEL_PUD,
  formatVa,
  levelSize,
  parseVa,
  vaLimit,
} from '../src/model/mm/geometry.ts';
import { type Tables, frameAt, interpret, leaves, walk } from '../src/model/mm/pagetable.ts';
import { computeLayout } from '../src/model/mm/kernel.ts';
import type { Config, System } from '../src/model/system.ts';
import { runChoices } from '../src/check/run.ts';
import { choicesArb } from '../src/generators/arbitraries.ts';
import type { Choice } from '../src/generators/choose.ts';

/** Resolves to asi_create(flags 0x1e) on a fresh system, so every run has an ASI page table to compare. */
const CREATE_ASI: Choice = { kind: 0, a: 0, b: 30, c: 0, d: 0 };
const opLists = choicesArb(15).map((cs) => [CREATE_ASI, ...cs]);

const CONFIGS: readonly Config[] = [
  { geometry: 'small', cpus: 2, profile: 'rfc-v2' },
  { geometry: 'small', cpus: 2, profile: 'fixed' },
];

/** The kernel page table and the page table of every live ASI. */
function roots(sys: System): { name: string; root: number }[] {
  return [{ name: 'kernel', root: sys.kernel.pgd }, ...[...sys.asis.values()].map((a) => ({ name: `asi#${a.id}`, root: a.pgd }))];
}

/** Every disagreement between interpret() and a page-by-page hardware walk, as readable lines. */
function interpretVersusWalk(g: Geometry, tables: Tables, root: number): string[] {
  const map = interpret(g, tables, root);
  const bad: string[] = [];
  let mapped = 0;
  for (let va = 0; va < vaLimit(g); va += PAGE_SIZE) {
    const w = walk(g, tables, root, va);
    const m = map.get(va);
    if (!w.ok) {
      if (m !== undefined) bad.push(`${formatVa(g, va)}: walk fails (${w.reason}) but interpret maps pfn ${m.frame}`);
      continue;
    }
    mapped++;
    const expected = { frame: frameAt(w.leaf, va), flags: w.leaf.flags };
    if (m === undefined) bad.push(`${formatVa(g, va)}: walk maps pfn ${expected.frame} but interpret has nothing`);
    else if (m.frame !== expected.frame || m.flags !== expected.flags)
      bad.push(`${formatVa(g, va)}: walk gives pfn ${expected.frame} flags ${expected.flags}, interpret pfn ${m.frame} flags ${m.flags}`);
  }
  if (map.size !== mapped) bad.push(`interpret has ${map.size} pages, the walk maps ${mapped}`);
  for (const va of map.keys()) if (va % PAGE_SIZE !== 0 || va < 0 || va >= vaLimit(g)) bad.push(`interpret key ${va} is not a page of the address space`);
  return bad;
}

describe('interpret() is the page-by-page hardware walk', () => {
  for (const config of CONFIGS) {
    test.prop([opLists], { numRuns: 20 })(
      `${config.profile}: for the kernel pgd and every ASI pgd, each page maps exactly as walk() says, and nothing else is mapped`,
      (choices) => {
        const { system: sys } = runChoices(config, choices);
        for (const { name, root } of roots(sys)) {
          expect(interpretVersusWalk(sys.g, sys.tables, root), `${name} page table`).toEqual([]);
        }
      },
    );
  }

  test('the runs compared above start with an ASI that maps something (the comparison is not vacuous)', () => {
    for (const config of CONFIGS) {
      const { system: sys, ops } = runChoices(config, [CREATE_ASI]);
      expect(ops[0].op).toBe('asi_create');
      expect(sys.asis.size).toBe(1);
      expect(interpret(sys.g, sys.tables, sys.kernel.pgd).size).toBeGreaterThan(0);
      for (const a of sys.asis.values()) expect(interpret(sys.g, sys.tables, a.pgd).size).toBeGreaterThan(0);
    }
  });
});

describe('leaves(lo, hi) is a window of the full enumeration', () => {
  const limit = vaLimit(GEOMETRIES.small);
  const bound = fc.oneof(
    fc.integer({ min: 0, max: limit }),
    fc.integer({ min: 0, max: limit / PAGE_SIZE }).map((p) => p * PAGE_SIZE),
  );
  for (const config of CONFIGS) {
    test.prop([opLists, fc.array(fc.tuple(bound, bound), { minLength: 1, maxLength: 8 })], { numRuns: 20 })(
      `${config.profile}: leaves(lo, hi) returns exactly the leaves of leaves() that intersect [lo, hi), in address order`,
      (choices, windows) => {
        const { system: sys } = runChoices(config, choices);
        for (const { name, root } of roots(sys)) {
          const all = leaves(sys.g, sys.tables, root);
          for (let i = 1; i < all.length; i++) expect(all[i].va, `${name}: leaves in address order`).toBeGreaterThanOrEqual(all[i - 1].va + all[i - 1].size);
          for (const [lo, hi] of windows) {
            const expected = all.filter((l) => l.va < hi && lo < l.va + l.size);
            expect(leaves(sys.g, sys.tables, root, lo, hi), `${name} [${lo}, ${hi})`).toEqual(expected);
          }
        }
      },
    );
  }
});

describe('geometry', () => {
  const real = GEOMETRIES.real;
  const small = GEOMETRIES.small;

  test('real geometry: one entry covers 4K at PTE, 2M at PMD, 1G at PUD, 512G at PGD (and the folded P4D)', () => {
    expect(levelSize(real, PGT_LEVEL_PTE)).toBe(4 * 1024);
    expect(levelSize(real, PGT_LEVEL_PMD)).toBe(2 * 1024 ** 2);
    expect(levelSize(real, PGT_LEVEL_PUD)).toBe(1024 ** 3);
    expect(levelSize(real, PGT_LEVEL_PGD)).toBe(512 * 1024 ** 3);
    expect(levelSize(real, PGT_LEVEL_P4D)).toBe(levelSize(real, PGT_LEVEL_PGD));
    expect(vaLimit(real)).toBe(2 ** 48);
  });

  test('small geometry: 8 entries per table, a 2^24-byte address space', () => {
    expect(levelSize(small, PGT_LEVEL_PTE)).toBe(PAGE_SIZE);
    expect(levelSize(small, PGT_LEVEL_PMD)).toBe(8 * PAGE_SIZE);
    expect(levelSize(small, PGT_LEVEL_PUD)).toBe(64 * PAGE_SIZE);
    expect(levelSize(small, PGT_LEVEL_PGD)).toBe(512 * PAGE_SIZE);
    expect(vaLimit(small)).toBe(2 ** 24);
  });

  test('real geometry: formatVa prints the x86-64 kernel addresses of Documentation/x86/x86_64/mm.rst', () => {
    const l = computeLayout(real);
    expect(formatVa(real, l.directMap)).toBe('0xffff888000000000');
    expect(formatVa(real, l.vmallocStart)).toBe('0xffffc90000000000');
    expect(formatVa(real, l.startKernelMap)).toBe('0xffffffff80000000');
    expect(formatVa(real, l.modulesStart)).toBe('0xffffffffa0000000');
    expect(formatVa(real, 0)).toBe('0xffff000000000000');
  });

  for (const g of [real, small]) {
    test.prop([fc.integer({ min: 0, max: vaLimit(g) - 1 })], { numRuns: 200 })(
      `${g.name} geometry: parseVa(formatVa(va)) === va, and the plain number parses to the same address`,
      (va) => {
        expect(parseVa(g, formatVa(g, va))).toBe(va);
        expect(parseVa(g, String(va))).toBe(va);
        expect(parseVa(g, '0x' + va.toString(16))).toBe(va);
      },
    );

    test(`${g.name} geometry: parseVa refuses text that is not an address of the model`, () => {
      expect(parseVa(g, 'xyz')).toBeUndefined();
      expect(parseVa(g, '')).toBeUndefined();
      expect(parseVa(g, '-4096')).toBeUndefined();
      expect(parseVa(g, '0x' + vaLimit(g).toString(16))).toBeUndefined();
      expect(parseVa(g, '0x' + (vaLimit(g) * 2).toString(16))).toBeUndefined();
    });
  }
});
