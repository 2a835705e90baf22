// The 2025 runtime's test rig (test/asi25.test.ts, and CURR-ASI in test/invariants.test.ts):
// setup_test_asi() of arch/x86/mm/asi_test.c on the model, with every invariant judged at every
// micro-step and after every path. The domain maps what the series maps: the global nonsensitive
// pgd asi_init copies (patches 12, 14, 16, 17).

import { expect } from 'vitest';
import { createSystem, step } from '../src/model/step.ts';
import { type System, newGhost } from '../src/model/system.ts';
import type { Exec, Path } from '../src/model/asi/session.ts';
import { deliver, drive } from '../src/model/x86/entry.ts';
import { type Violation, newChecker } from '../src/invariants/index.ts';
import { ASI_CLASS_TEST, ASI_TAINTS_CONTROL_MASK, ASI_TAINTS_DATA_MASK, asiExit, asiInit, asiInitClass, syscallEnterFromUserMode } from '../src/model/asi25/runtime.ts';
import type { DesignOptions, ProfileName } from '../src/model/options.ts';
import { PAGE_SIZE } from '../src/model/mm/geometry.ts';

/** The taint policy setup_test_asi() registers ("Arbitrary policy"). */
const TEST_POLICY = { preventControl: ASI_TAINTS_CONTROL_MASK, protectData: ASI_TAINTS_DATA_MASK, set: ASI_TAINTS_CONTROL_MASK | ASI_TAINTS_DATA_MASK };

export interface Rig {
  readonly sys: System;
  readonly k: Exec;
  readonly domain: string;
  /** The mm of the test (mm_alloc, kthread_use_mm). */
  readonly mm: number;
  /** The VAs of the sensitive allocations, which no domain maps. */
  readonly sensitive: readonly number[];
  /** Every violation any invariant found, at any micro-step or between steps. */
  readonly violations: Violation[];
  /** Runs a path on cpu0 with every invariant judged after each of its micro-steps. */
  run(name: string, path: Path): void;
  /** The hooks' counters: CR3 writes onto the domain, and off it onto the unrestricted pgd. */
  counts(): { postEnter: number; preExit: number };
}

/**
 * setup_test_asi(): asi_init_class(ASI_CLASS_TEST), mm_alloc() and kthread_use_mm(), then
 * asi_init(); and preempt_disable(), as every case does first. `sensitivePages`: pages allocated
 * __GFP_SENSITIVE first (alloc_pages through kmalloc_large), for the handlers to read. `profile`:
 * the posted code (asi25, or asi25-dm with the September direct map) or its fixes (the -fixed
 * ones), `options` overriding any.
 */
export function setupTestAsi({ sensitivePages = 0, profile = 'asi25', options = {} }: { sensitivePages?: number; profile?: Extract<ProfileName, 'asi25' | 'asi25-fixed' | 'asi25-dm' | 'asi25-dm-fixed'>; options?: Partial<DesignOptions> } = {}): Rig {
  // F53 (asi_taints clean at boot) holds from boot on every CPU of the posted profiles: fixed here,
  // so that each case shows its own behaviour (test/asi25.test.ts holds F53 on its own).
  const sys = createSystem({ geometry: 'small', cpus: 2, profile, options: { bootTaintsKernelData: true, ...options } });
  const sensitive = Array.from({ length: sensitivePages }, () => sys.kernel.kmallocs.get(step(sys, { op: 'kmalloc', size: 3 * PAGE_SIZE, sensitive: true }).ret)!.va);
  const violations: Violation[] = [];
  const check = newChecker('incremental');
  const judge = (phase: 'micro-step' | 'between-ops' = 'micro-step') => violations.push(...check(sys, phase));
  const k: Exec = { sys, cpu: sys.cpus[0], out: [], observe: () => judge() };
  expect(asiInitClass(sys, ASI_CLASS_TEST, TEST_POLICY, k.out)).toBeGreaterThanOrEqual(0);
  // KUnit runs the case in a kernel thread: cpu0's task enters the kernel (a system call, which
  // relaxes its userspace critical section), leaves its userspace domain, and becomes that thread.
  syscallEnterFromUserMode(k);
  drive(k, 'asi_exit', asiExit(k));
  const mm = sys.asi25!.nextMm++;
  Object.assign(sys.asi25!.tasks.get(sys.kernel.current[0])!, { mm, user: false });
  const { err, domain } = asiInit(k, mm, ASI_CLASS_TEST);
  expect(err).toBeGreaterThanOrEqual(0);
  k.cpu.preemptCount++;
  // What boot and the setup did is no part of the case: its counters start here, as a step's do.
  sys.ghost = newGhost();
  const visits = (suffix: string) => sys.ghost.visited.filter((v) => v.endsWith(suffix)).length;
  return {
    sys,
    k,
    domain: domain!,
    mm,
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
