// The 2025 runtime's test rig (test/asi25.test.ts, and CURR-ASI in test/invariants.test.ts):
// setup_test_asi() of arch/x86/mm/asi_test.c on the model, with every invariant judged at every
// micro-step and after every path.

import { expect } from 'vitest';
import { createSystem, step } from '../src/model/step.ts';
import type { System } from '../src/model/system.ts';
import type { Exec, Path } from '../src/model/asi/session.ts';
import { deliver, drive } from '../src/model/x86/entry.ts';
import { type Violation, newChecker } from '../src/invariants/index.ts';
import { ASI25_POSTED, ASI_CLASS_TEST, ASI_TAINTS_CONTROL_MASK, ASI_TAINTS_DATA_MASK, type Asi25Options, asi25Boot, asiInit, asiInitClass } from '../src/model/asi25/runtime.ts';
import { KERNEL, allocFrames } from '../src/model/mm/memory.ts';
import { PGT_LEVEL_PGD, PGT_LEVEL_PTE, type PgtLevel, indexAt } from '../src/model/mm/geometry.ts';
import { lowerLevel } from '../src/model/mm/pagetable.ts';
import { entryFlags, entryFrame, isLarge, isNone, mkEntry } from '../src/model/mm/pte.ts';

/** The taint policy setup_test_asi() registers ("Arbitrary policy"). */
const TEST_POLICY = { preventControl: ASI_TAINTS_CONTROL_MASK, protectData: ASI_TAINTS_DATA_MASK, set: ASI_TAINTS_CONTROL_MASK | ASI_TAINTS_DATA_MASK };

export interface Rig {
  readonly sys: System;
  readonly k: Exec;
  readonly domain: string;
  /** The VAs of the sensitive pages, which the domain does not map. */
  readonly sensitive: readonly number[];
  /** Every violation any invariant found, at any micro-step or between steps. */
  readonly violations: Violation[];
  /** Runs a path on cpu0 with every invariant judged after each of its micro-steps. */
  run(name: string, path: Path): void;
  /** The hooks' counters: CR3 writes onto the domain, and off it onto the unrestricted pgd. */
  counts(): { postEnter: number; preExit: number };
}

/**
 * The domain's pgd made to map what the kernel maps but the pages at `unmapped` (each mapped by a
 * PTE, as vmalloc maps): its own copy of every kernel page table, as patches 11-19 build a domain
 * from the global nonsensitive pgd, which the model does not have yet (test/asi25.test.ts).
 */
function mapKernelBut(sys: System, pgd: number, unmapped: readonly number[]): void {
  const copy = (src: number, dst: number, level: PgtLevel) => {
    const from = sys.tables.get(src)!;
    const to = sys.tables.get(dst)!;
    for (let i = 0; i < from.length; i++) {
      if (isNone(from[i])) continue;
      if (level === PGT_LEVEL_PTE || isLarge(from[i])) {
        to[i] = from[i];
        continue;
      }
      const t = allocFrames(sys.mem, { kind: 'pgtable', owner: KERNEL, name: 'a test domain table', pages: 1, sensitive: false, level: lowerLevel(level) })!.frames[0];
      sys.tables.set(t, new Int32Array(from.length));
      to[i] = mkEntry(t, entryFlags(from[i]));
      copy(entryFrame(from[i]), t, lowerLevel(level));
    }
  };
  copy(sys.kernel.pgd, pgd, PGT_LEVEL_PGD);
  for (const va of unmapped) {
    let table = pgd;
    for (let level: PgtLevel = PGT_LEVEL_PGD; level !== PGT_LEVEL_PTE; level = lowerLevel(level)) {
      const e = sys.tables.get(table)![indexAt(sys.g, level, va)];
      expect(isNone(e) || isLarge(e), 'a page the test unmaps is mapped by a PTE').toBe(false);
      table = entryFrame(e);
    }
    sys.tables.get(table)![indexAt(sys.g, PGT_LEVEL_PTE, va)] = 0;
  }
}

/**
 * setup_test_asi(): asi_init_class(ASI_CLASS_TEST), mm_alloc() and kthread_use_mm() (mm 1), then
 * asi_init(); and preempt_disable(), as every case does first. `pgd`: the domain maps what the
 * kernel maps but `sensitivePages` vmalloc'd pages, alloc_pages(GFP_KERNEL | __GFP_SENSITIVE) for
 * the handlers to read (mapKernelBut); or 'empty', as asi_init made it.
 */
export function setupTestAsi({ pgd = 'kernel', sensitivePages = 0, options = ASI25_POSTED }: { pgd?: 'kernel' | 'empty'; sensitivePages?: number; options?: Asi25Options } = {}): Rig {
  const sys = createSystem({ geometry: 'small', cpus: 2, profile: 'fixed' });
  const sensitive = Array.from({ length: sensitivePages }, () => {
    const id = step(sys, { op: 'vmalloc', pages: 1, sensitive: true }).ret;
    return sys.kernel.vmAreas.get(id)!.va;
  });
  sys.asi25 = asi25Boot(sys, options);
  const violations: Violation[] = [];
  const check = newChecker('incremental');
  const judge = (phase: 'micro-step' | 'between-ops' = 'micro-step') => violations.push(...check(sys, phase));
  const k: Exec = { sys, cpu: sys.cpus[0], out: [], observe: () => judge() };
  expect(asiInitClass(sys, ASI_CLASS_TEST, TEST_POLICY, k.out)).toBeGreaterThanOrEqual(0);
  sys.asi25.tasks.get(sys.kernel.current[0])!.mm = 1;
  const { err, domain } = asiInit(k, 1, ASI_CLASS_TEST);
  expect(err).toBeGreaterThanOrEqual(0);
  if (pgd === 'kernel') mapKernelBut(sys, sys.asi25.domains.get(domain!)!.pgd!, sensitive);
  k.cpu.preemptCount++;
  const visits = (suffix: string) => sys.ghost.visited.filter((v) => v.endsWith(suffix)).length;
  return {
    sys,
    k,
    domain: domain!,
    sensitive,
    violations,
    run: (name, path) => {
      drive(k, name, path);
      judge('between-ops');
    },
    counts: () => ({ postEnter: visits('@write_cr3(asi_cr3)'), preExit: visits('@write_cr3(unrestricted_cr3)') }),
  };
}

/** An NMI arriving now on cpu0, its handler body doing `body`. */
export function nmi(r: Rig, body: () => void): void {
  deliver(r.k, { at: 0, kind: 'nmi' }, 'test@now', body);
}
