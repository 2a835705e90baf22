// Every invariant of the catalogue, twice: it holds all along a correct run of the fixed design,
// and it reports a hand-built bad state (the state is broken directly, not through the model, so
// the test does not depend on the model being wrong in that exact way). A check that never fires
// or always fires would fail one of the two.

import { describe, expect, test } from 'vitest';
import { ASI_CLASS_TEST, asiDestroy, asiEnter, asiExit, asiInit, asiRelax } from '../src/model/asi25/runtime.ts';
import { nmi, setupTestAsi } from './asi25-rig.ts';
import { deliver, drive } from '../src/model/x86/entry.ts';
import { ASI_GLOBAL_NONSENSITIVE, asiMap, kernelPgdBoundary, physmapLeaf } from '../src/model/asi25/map.ts';
import { pageblockNrPages } from '../src/model/asi25/pageblock.ts';
import { INVARIANTS, checkAll, type Invariant } from '../src/invariants/index.ts';
import { createSystem, step } from '../src/model/step.ts';
import { type Op, formatOp } from '../src/model/ops.ts';
import type { Asi, AsiRange, Config, System } from '../src/model/system.ts';
import type { DesignOptions } from '../src/model/options.ts';
import {
  type PgtLevel,
  PAGE_SIZE,
  PGT_LEVEL_PGD,
  PGT_LEVEL_PMD,
  PGT_LEVEL_PTE,
  PGT_LEVEL_PUD,
  formatVa,
  indexAt,
} from '../src/model/mm/geometry.ts';
import { leaves, lowerLevel, walk } from '../src/model/mm/pagetable.ts';
import { _KERNPG_TABLE, _PAGE_NX, _PAGE_PRESENT, _PAGE_RW, PAGE_KERNEL, entryFrame, entryFlags, isNone, mkEntry } from '../src/model/mm/pte.ts';
import { frameCount, freeAllocation, unitAlloc } from '../src/model/mm/memory.ts';
import { ASI_MAP_ALL, ASI_MAP_CPU_HW_EVENTS, ASI_MAP_CPU_PTR, ASI_MAP_STACK_CANARY, asiLock } from '../src/model/asi/asi.ts';
import { spinLock } from '../src/model/x86/context.ts';
import { RacerWaits } from '../src/model/x86/smp.ts';
import { EBUSY, THREAD_PAGES, directMapVa, kernelUnmapPage, taskStackVa } from '../src/model/mm/kernel.ts';
import { judges } from '../src/invariants/types.ts';
import { changePageAttrSetClr } from '../src/model/mm/set-memory.ts';
import { perCpuPtr } from '../src/model/mm/percpu.ts';
import { ASI_SESSION_STATE_ACTIVE, ASI_SESSION_STATE_INACTIVE, cr3Pcid, kernelCr3 } from '../src/model/x86/cpu.ts';
import { KVM_SPECS } from './kvm-scenarios.ts';
import { EXIT_REASONS } from '../src/model/kvm/run.ts';

// ---- building states -------------------------------------------------------------------------

type Options = Partial<DesignOptions>;

/** Percpu variables on pages of their own: with overlapPolicy=refuse, ASI_MAP_ALL overlaps itself. */
const NON_OVERLAPPING_FLAGS = ASI_MAP_STACK_CANARY | ASI_MAP_CPU_PTR | ASI_MAP_CPU_HW_EVENTS;

function boot(options?: Options): System {
  return createSystem({ geometry: 'small', cpus: 2, profile: 'fixed', ...(options ? { options } : {}) });
}

function run(sys: System, op: Op): number {
  return step(sys, op).ret;
}

interface Fixture {
  readonly sys: System;
  readonly asi: Asi;
  /** A task of its own whose 4-page stack the ASI maps at PTE level. */
  readonly task: number;
  readonly stackVa: number;
  readonly stackRange: AsiRange;
}

/** A fixed-design system with one ASI that maps one task's stack. */
function withMappedStack(options?: Options, flags = ASI_MAP_ALL): Fixture {
  const sys = boot(options);
  const id = run(sys, { op: 'asi_create', flags });
  expect(id, 'asi_create').toBeGreaterThan(0);
  const task = run(sys, { op: 'task_create' });
  expect(task, 'task_create').toBeGreaterThan(0);
  const stackVa = taskStackVa(sys, sys.kernel.tasks.get(task)!);
  expect(run(sys, { op: 'asi_map', asi: id, ptr: stackVa, size: THREAD_PAGES * PAGE_SIZE, level: PGT_LEVEL_PTE }), 'asi_map of the stack').toBe(0);
  const asi = sys.asis.get(id)!;
  const stackRange = asi.ranges.find((r) => r.ptr === stackVa)!;
  expect(stackRange).toBeDefined();
  return { sys, asi, task, stackVa, stackRange };
}

/** The slot of the entry at `level` on the way to `va` in the tree under `root` (no allocation). */
function slotAt(sys: System, root: number, va: number, level: PgtLevel): { table: number; index: number } {
  let table = root;
  for (let l: PgtLevel = PGT_LEVEL_PGD; l !== level; l = lowerLevel(l)) {
    const e = sys.tables.get(table)![indexAt(sys.g, l, va)];
    expect(isNone(e), `no ${l}-level entry on the way to ${formatVa(sys.g, va)}`).toBe(false);
    table = entryFrame(e);
  }
  return { table, index: indexAt(sys.g, level, va) };
}

function setEntry(sys: System, slot: { table: number; index: number }, value: number): void {
  sys.tables.get(slot.table)![slot.index] = value;
}

function getEntry(sys: System, slot: { table: number; index: number }): number {
  return sys.tables.get(slot.table)![slot.index];
}

/** The ASI leaf that maps va (a PTE of the ASI's own table). */
function asiLeaf(f: Fixture, va: number) {
  const w = walk(f.sys.g, f.sys.tables, f.asi.pgd, va);
  if (!w.ok) throw new Error(`the ASI does not map ${formatVa(f.sys.g, va)}`);
  expect(f.asi.backend.some((b) => b.frame === w.leaf.table), 'leaf table is an ASI backend page').toBe(true);
  return w.leaf;
}

/** The check fires with a message, and the message names what it found. */
function expectCaught(inv: Invariant, sys: System, ...mentions: string[]): string {
  const message = inv.check(sys);
  expect(typeof message, `${inv.id} must report the hand-built bad state`).toBe('string');
  expect(message!.length).toBeGreaterThan(0);
  for (const m of mentions) expect(message).toContain(m);
  return message!;
}

// ---- correct runs ----------------------------------------------------------------------------

/**
 * A correct run: create an ASI, map a task's stack and (overlapping) one page of it, map a sensitive
 * kmalloc object and free it, unmap both stack ranges, let the task exit, destroy the ASI. The
 * invariant is checked after every step, as the runner does.
 */
function holdsAlongCorrectRun(inv: Invariant, options?: Options, flags = ASI_MAP_ALL): void {
  const sys = boot(options);
  if (inv.appliesTo) expect(inv.appliesTo(sys), `${inv.id} applies to this configuration`).toBe(true);
  const refuse = sys.options.overlapPolicy === 'refuse';
  const ok = (op: Op, expected?: number): number => {
    const ret = run(sys, op);
    if (expected !== undefined) expect(ret, formatOp(sys.g, op)).toBe(expected);
    else expect(ret, formatOp(sys.g, op)).toBeGreaterThan(0);
    expect(inv.check(sys), `${inv.id} after ${formatOp(sys.g, op)}`).toBeUndefined();
    return ret;
  };
  expect(inv.check(sys), `${inv.id} after boot`).toBeUndefined();
  const asi = ok({ op: 'asi_create', flags });
  const task = ok({ op: 'task_create' });
  const stackVa = taskStackVa(sys, sys.kernel.tasks.get(task)!);
  ok({ op: 'asi_map', asi, ptr: stackVa, size: THREAD_PAGES * PAGE_SIZE, level: PGT_LEVEL_PTE }, 0);
  ok({ op: 'asi_map', asi, ptr: stackVa + PAGE_SIZE, size: PAGE_SIZE, level: PGT_LEVEL_PTE }, refuse ? EBUSY : 0);
  const obj = ok({ op: 'kmalloc', size: PAGE_SIZE, sensitive: true });
  ok({ op: 'asi_map', asi, ptr: sys.kernel.kmallocs.get(obj)!.va, size: 0x40, level: PGT_LEVEL_PTE }, 0);
  ok({ op: 'kfree', id: obj }, 0);
  ok({ op: 'asi_unmap', asi, ptr: stackVa + PAGE_SIZE }, 0);
  ok({ op: 'asi_unmap', asi, ptr: stackVa }, 0);
  ok({ op: 'task_exit', task }, 0);
  ok({ op: 'asi_destroy', asi }, 0);
}

// ---- hand-built bad states, per invariant ------------------------------------------------------

interface Case {
  readonly name: string;
  readonly run: (inv: Invariant) => void;
}

interface Spec {
  readonly holds: Case[];
  readonly caught: Case[];
  /** Further statements about the invariant. */
  readonly also?: Case[];
}

// ---- CPUs ---------------------------------------------------------------------------------------

/** A fixed-design system where cpu0 runs isolated in an ASI_MAP_ALL ASI. */
function isolatedCpu0(): { sys: System; asi: Asi } {
  const sys = boot();
  const id = run(sys, { op: 'asi_create', flags: ASI_MAP_ALL });
  expect(run(sys, { op: 'asi_enter', cpu: 0, asi: id, intr: [] }), 'asi_enter').toBe(0);
  expect(sys.cpus[0].session.state).toBe(ASI_SESSION_STATE_ACTIVE);
  return { sys, asi: sys.asis.get(id)! };
}

/**
 * A correct CPU run: enter with an IRQ inside the barrier window and an NMI nested in it, an access
 * that faults into asi_fault, an NMI while isolated, a context switch, exit, and an IPI shootdown.
 */
function holdsAlongCpuRun(inv: Invariant): void {
  const sys = boot();
  const ok = (op: Op): number => {
    const ret = run(sys, op);
    expect(ret, formatOp(sys.g, op)).toBeGreaterThanOrEqual(0);
    expect(inv.check(sys), `${inv.id} after ${formatOp(sys.g, op)}`).toBeUndefined();
    return ret;
  };
  const asi = ok({ op: 'asi_create', flags: ASI_MAP_ALL });
  const task = ok({ op: 'task_create' });
  const area = ok({ op: 'vmalloc', pages: 2, sensitive: true });
  ok({ op: 'asi_enter', cpu: 0, asi, intr: [{ at: 11, kind: 'irq', nested: [{ at: 3, kind: 'nmi' }] }] });
  ok({ op: 'asi_enter', cpu: 0, asi, intr: [] });
  ok({ op: 'access', cpu: 0, va: sys.kernel.vmAreas.get(area)!.va, access: 'read', intr: [] });
  ok({ op: 'asi_enter', cpu: 1, asi, intr: [] });
  ok({ op: 'interrupt', cpu: 1, kind: 'nmi', intr: [{ at: 2, kind: 'exception' }] });
  ok({ op: 'schedule', cpu: 1, task, intr: [] });
  ok({ op: 'asi_enter', cpu: 1, asi, intr: [{ at: 5, kind: 'switch' }] });
  ok({ op: 'asi_exit', cpu: 1, asi, intr: [{ at: 3, kind: 'irq' }] });
  ok({ op: 'vfree', id: area });
}

/**
 * What a path records as it happens (a double fault, a handler body on the wrong CR3, a WARN_ON),
 * produced by the model itself: a mutant (or profile) whose code does it, driven by real ops.
 */
function recordedCase(name: string, config: Partial<Config>, ops: (sys: System) => Op[], ...mentions: string[]): Case {
  return {
    name,
    run: (inv) => {
      const sys = createSystem({ geometry: 'small', cpus: 2, profile: 'fixed', ...config });
      const list = ops(sys);
      for (const op of list.slice(0, -1)) run(sys, op);
      expect(inv.check(sys), 'before the last op').toBeUndefined();
      run(sys, list[list.length - 1]);
      expectCaught(inv, sys, ...mentions);
    },
  };
}

const enterCpu0: Op[] = [
  { op: 'asi_create', flags: 0 },
  { op: 'asi_enter', cpu: 0, asi: 1, intr: [] },
];

/**
 * Two CPUs in asi#1 (fixed without asiEnterExclusive); cpu0 switches to another task, and just
 * after its context switch began, with IRQs off, cpu1 faults on an address asi#1 does not map:
 * each CPU's asi_exit unmaps its stack and IPIs the other to flush it. The last op is the race.
 */
function ipiDeadlock(options: Partial<DesignOptions>): { sys: System; last: Op } {
  const sys = createSystem({ geometry: 'small', cpus: 2, profile: 'fixed', options });
  for (const op of [...enterCpu0, { op: 'asi_enter', cpu: 1, asi: 1, intr: [] } as Op]) run(sys, op);
  const task = run(sys, { op: 'task_create' });
  const fault: Op = { op: 'access', cpu: 1, va: sys.kernel.layout.vmallocEnd - PAGE_SIZE, access: 'write', intr: [] };
  return { sys, last: { op: 'schedule', cpu: 0, task, intr: [], race: { at: 1, op: fault } } };
}

/**
 * An ASI whose struct asi is mapped in it: a kmalloc-2k neighbour shares its slab page, and a caller
 * maps the whole page. cpu0 is isolated in it; the last op is an asi_unmap made on cpu0, whose
 * lock word is reachable there but whose range record is not.
 */
function structAsiMapped(options: Partial<DesignOptions>): { sys: System; last: Op } {
  const sys = createSystem({ geometry: 'small', cpus: 2, profile: 'fixed', options });
  const id = run(sys, { op: 'asi_create', flags: 0 });
  const neighbour = sys.kernel.kmallocs.get(run(sys, { op: 'kmalloc', size: 0x800, sensitive: false }))!;
  const page = sys.kernel.kmallocs.get(sys.asis.get(id)!.struct)!.va & ~(PAGE_SIZE - 1);
  expect(neighbour.va & ~(PAGE_SIZE - 1), 'the neighbour shares the slab page of struct asi').toBe(page);
  expect(run(sys, { op: 'asi_map', asi: id, ptr: page, size: PAGE_SIZE, level: PGT_LEVEL_PTE })).toBe(0);
  expect(run(sys, { op: 'asi_enter', cpu: 0, asi: id, intr: [] })).toBe(0);
  return { sys, last: { op: 'asi_unmap', asi: id, ptr: page, on: 0 } };
}

const SPECS: Record<string, Spec> = {
  ...KVM_SPECS,
  'ENTRY-MAPPED': {
    holds: [{ name: 'fixed profile, CPUs', run: (inv) => holdsAlongCpuRun(inv) }],
    caught: [
      {
        name: "an ASI whose pte for cpu1's cpu_asi_session is cleared",
        run: (inv) => {
          const { sys, asi } = isolatedCpu0();
          expect(inv.check(sys)).toBeUndefined();
          const va = perCpuPtr(sys, 'cpu_asi_session', 1);
          setEntry(sys, slotAt(sys, asi.pgd, va, PGT_LEVEL_PTE), 0);
          expectCaught(inv, sys, `asi#${asi.id}`, 'cpu_asi_session', formatVa(sys.g, va));
        },
      },
      recordedCase(
        'an IRQ right after load_cr3 pushes its frame on a stack the ASI does not map yet: double fault (stack-mapped-after-cr3)',
        { mutant: 'stack-mapped-after-cr3' },
        () => [{ op: 'asi_create', flags: 0 }, { op: 'asi_enter', cpu: 0, asi: 1, intr: [{ at: 7, kind: 'irq' }] }],
        'cpu0',
        'double fault',
        'the current stack',
      ),
    ],
  },
  PROGRESS: {
    holds: [
      { name: 'fixed profile, CPUs', run: (inv) => holdsAlongCpuRun(inv) },
      {
        name: 'fixed: cpu1 is refused asi#1 while cpu0 is in it (asiEnterExclusive), so the fault and the context switch need no IPI',
        run: (inv) => {
          const { sys, last } = ipiDeadlock({});
          expect(sys.cpus[1].session.state).toBe(ASI_SESSION_STATE_INACTIVE);
          run(sys, last);
          expect(sys.cpus.map((c) => c.dead)).toEqual([undefined, undefined]);
          expect(inv.check(sys)).toBeUndefined();
        },
      },
      {
        name: 'fixed: an asi_unmap made on an isolated CPU leaves isolation before it takes asi->lock (apiLeavesIsolation)',
        run: (inv) => {
          const { sys, last } = structAsiMapped({});
          expect(run(sys, last)).toBe(0);
          expect(sys.cpus[0].dead).toBeUndefined();
          expect(sys.cpus[0].session.state).toBe(ASI_SESSION_STATE_INACTIVE);
          expect(inv.check(sys)).toBeUndefined();
        },
      },
    ],
    caught: [
      recordedCase(
        'rfc-v2: a probe of an unmapped address in an IRQ that aborted isolation loops forever in asi_fault',
        { profile: 'rfc-v2' },
        (sys) => [...enterCpu0, { op: 'interrupt', cpu: 0, kind: 'irq', va: sys.kernel.layout.vmallocEnd - PAGE_SIZE, intr: [] }],
        'cpu0',
        'fault loop',
      ),
      {
        name: "two CPUs in one ASI each flush the other's TLB by IPI with IRQs off, from asi_exit in a context switch and in a page fault: deadlock (fixed without asiEnterExclusive)",
        run: (inv) => {
          const { sys, last } = ipiDeadlock({ asiEnterExclusive: false });
          expect(inv.check(sys)).toBeUndefined();
          const log = step(sys, last).log.map((e) => e.text);
          expect(log.some((l) => l.endsWith("waits at schedule@read state: asi_unmap of asi#1's IPI waits for cpu0, whose IRQs are off"))).toBe(true);
          expect(sys.cpus.map((c) => c.dead)).toEqual(['deadlock', 'deadlock']);
          expectCaught(inv, sys, 'deadlock cpu0 -> cpu1 -> cpu0', "cpu0 waits for cpu1 to take asi_unmap of asi#1's IPI", 'with IRQs off, waits for cpu0');
        },
      },
      {
        name: "an asi_unmap made on a CPU isolated in an ASI that maps its struct asi faults under asi->lock, and the abort's asi_exit takes asi->lock again (fixed without apiLeavesIsolation)",
        run: (inv) => {
          const { sys, last } = structAsiMapped({ apiLeavesIsolation: false });
          expect(inv.check(sys)).toBeUndefined();
          run(sys, last);
          expect(sys.cpus[0].dead).toBe('deadlock');
          expectCaught(inv, sys, 'deadlock: cpu0', 'in page-fault handler, holding asi#1->lock', 'waits for asi#1->lock, which it holds itself');
        },
      },
      recordedCase(
        "rfc-v2: an NMI while an asi_map_percpu made on an isolated CPU holds asi->lock (the posted code runs it on the ASI page table): the NMI's asi_exit takes asi->lock again",
        { profile: 'rfc-v2' },
        () => [...enterCpu0, { op: 'asi_map_percpu', asi: 1, var: 'cpu_hw_events', on: 0, intr: [{ at: 1, kind: 'nmi' }] }],
        'deadlock: cpu0',
        'in nmi handler, holding asi#1->lock',
        'waits for asi#1->lock, which it holds itself',
      ),
      {
        name: 'a spinlock taken again on the CPU that holds it (what an NMI running asi_exit inside asi_unmap would do)',
        run: (inv) => {
          const { sys, asi } = isolatedCpu0();
          sys.exec = sys.cpus[0];
          spinLock(sys, asiLock(asi), true);
          expect(inv.check(sys)).toBeUndefined();
          spinLock(sys, asiLock(asi), false);
          expectCaught(inv, sys, 'deadlock', 'cpu0', `waits for asi#${asi.id}->lock, which it holds itself`);
        },
      },
      {
        name: 'the CPU in flight takes a spinlock that a racing op holds while it waits for that CPU',
        run: (inv) => {
          const { sys, asi } = isolatedCpu0();
          sys.exec = sys.cpus[0];
          sys.spinning = { cpu: 1, op: 'asi_unmap', wait: new RacerWaits('it waits for cpu0', false, [asiLock(asi)]) };
          spinLock(sys, `asi#${asi.id}->fault_lock`, false);
          expect(inv.check(sys)).toBeUndefined();
          spinLock(sys, asiLock(asi), true);
          expectCaught(inv, sys, 'deadlock cpu0 -> cpu1 -> cpu0', `to release asi#${asi.id}->lock`, 'cpu1, in asi_unmap holding');
        },
      },
    ],
  },
  'CR3-RESTORED': {
    holds: [{ name: 'fixed profile, CPUs', run: (inv) => holdsAlongCpuRun(inv) }],
    caught: [
      {
        name: 'a CPU with an INACTIVE session left on the ASI CR3',
        run: (inv) => {
          const { sys, asi } = isolatedCpu0();
          expect(inv.check(sys)).toBeUndefined();
          Object.assign(sys.cpus[0].session, { state: ASI_SESSION_STATE_INACTIVE, asi: null, task: null });
          expectCaught(inv, sys, 'cpu0', `asi#${asi.id}`);
        },
      },
      recordedCase('an NMI handler body that runs on the ASI CR3 (nmi-skips-abort)', { mutant: 'nmi-skips-abort' }, () => [...enterCpu0, { op: 'interrupt', cpu: 0, kind: 'nmi', intr: [] }], 'cpu0', 'nmi handler body', 'asi#1'),
    ],
  },
  SESSION: {
    holds: [{ name: 'fixed profile, CPUs', run: (inv) => holdsAlongCpuRun(inv) }],
    caught: [
      {
        name: 'abort_depth left at 1 after every handler returned',
        run: (inv) => {
          const { sys } = isolatedCpu0();
          expect(inv.check(sys)).toBeUndefined();
          sys.cpus[0].session.abortDepth = 1;
          expectCaught(inv, sys, 'cpu0', 'abort_depth');
        },
      },
      {
        name: 'an ACTIVE session whose ASI was destroyed',
        run: (inv) => {
          const { sys, asi } = isolatedCpu0();
          sys.asis.delete(asi.id);
          expectCaught(inv, sys, 'cpu0', `asi#${asi.id}`);
        },
      },
    ],
  },
  STACK: {
    holds: [{ name: 'fixed profile, CPUs', run: (inv) => holdsAlongCpuRun(inv) }],
    caught: [
      {
        name: "the isolated CPU's stack page cleared from the ASI",
        run: (inv) => {
          const { sys, asi } = isolatedCpu0();
          expect(inv.check(sys)).toBeUndefined();
          const va = taskStackVa(sys, sys.kernel.tasks.get(sys.kernel.current[0])!);
          setEntry(sys, slotAt(sys, asi.pgd, va, PGT_LEVEL_PTE), 0);
          expectCaught(inv, sys, 'cpu0', formatVa(sys.g, va));
        },
      },
      {
        name: 'a stack mapped by asi_enter still mapped after its session ended',
        run: (inv) => {
          const { sys, asi } = isolatedCpu0();
          Object.assign(sys.cpus[0].session, { state: ASI_SESSION_STATE_INACTIVE, asi: null, task: null });
          sys.cpus[0].cr3 = kernelCr3(sys);
          expectCaught(inv, sys, `asi#${asi.id}`, 'still maps', 'mapped by asi_enter on cpu0');
        },
      },
    ],
  },
  'KERNEL-RULES': {
    holds: [{ name: 'fixed profile, CPUs', run: (inv) => holdsAlongCpuRun(inv) }],
    caught: [
      {
        name: 'schedule() on a CPU whose preempt_count was left raised',
        run: (inv) => {
          const sys = boot();
          const task = run(sys, { op: 'task_create' });
          sys.cpus[0].preemptCount = 1;
          run(sys, { op: 'schedule', cpu: 0, task, intr: [] });
          expectCaught(inv, sys, 'cpu0', 'preempt_count 1');
        },
      },
    ],
    also: [
      recordedCase(
        'fixed without asiEnterExclusive: an NMI makes asi_exit unmap the stack from asi#1, which cpu1 is in too, and asi_unmap sends its TLB flush IPI with IRQs off',
        { options: { asiEnterExclusive: false } },
        () => [{ op: 'asi_create', flags: 0 }, { op: 'asi_enter', cpu: 1, asi: 1, intr: [] }, { op: 'asi_enter', cpu: 0, asi: 1, intr: [{ at: 9, kind: 'nmi' }] }],
        'smp_call_function_many with IRQs disabled',
        'asi_unmap of asi#1',
        'cpu0',
      ),
      {
        name: 'rfc-v2: asi_map_range allocates with GFP_KERNEL under spin_lock_irqsave(&asi->lock)',
        run: (inv) => {
          const sys = createSystem({ geometry: 'small', cpus: 2, profile: 'rfc-v2' });
          run(sys, { op: 'asi_create', flags: 0 });
          expectCaught(inv, sys, 'sleeping function', 'asi#1->lock');
        },
      },
    ],
  },

  'PT-WF': {
    holds: [{ name: 'fixed profile', run: (inv) => holdsAlongCorrectRun(inv) }],
    caught: [
      {
        name: 'an ASI pmd entry that points at a kernel-image frame, which is not a page-table page',
        run: (inv) => {
          const f = withMappedStack();
          expect(inv.check(f.sys)).toBeUndefined();
          const image = [...f.sys.mem.allocs.values()].find((a) => a.kind === 'kernel-image')!;
          const frame = image.frames[0];
          setEntry(f.sys, slotAt(f.sys, f.asi.pgd, f.stackVa, PGT_LEVEL_PMD), mkEntry(frame, _KERNPG_TABLE));
          expectCaught(inv, f.sys, `asi#${f.asi.id}`, `pfn ${frame}`);
        },
      },
      {
        name: 'an ASI pud entry that points at a PTE table (a table of the wrong level)',
        run: (inv) => {
          const f = withMappedStack();
          const pte = asiLeaf(f, f.stackVa).table;
          setEntry(f.sys, slotAt(f.sys, f.asi.pgd, f.stackVa, PGT_LEVEL_PUD), mkEntry(pte, _KERNPG_TABLE));
          expectCaught(inv, f.sys, `asi#${f.asi.id}`, `pfn ${pte}`);
        },
      },
      {
        name: 'an ASI leaf that maps a frame beyond physical memory',
        run: (inv) => {
          const f = withMappedStack();
          const leaf = asiLeaf(f, f.stackVa);
          setEntry(f.sys, leaf, mkEntry(frameCount(f.sys.mem) + 1, PAGE_KERNEL));
          expectCaught(inv, f.sys, `asi#${f.asi.id}`, `pfn ${leaf.table}`);
        },
      },
      {
        name: 'a kernel pmd entry that points at a freed frame',
        run: (inv) => {
          const f = withMappedStack();
          const free = f.sys.mem.frameAlloc.indexOf(-1);
          expect(free).toBeGreaterThanOrEqual(0);
          setEntry(f.sys, slotAt(f.sys, f.sys.kernel.pgd, f.stackVa, PGT_LEVEL_PMD), mkEntry(free, _KERNPG_TABLE));
          expectCaught(inv, f.sys, 'kernel', `pfn ${free}`);
        },
      },
    ],
  },

  'PT-OWN': {
    holds: [{ name: 'fixed profile', run: (inv) => holdsAlongCorrectRun(inv) }],
    caught: [
      recordedCase(
        'an asi_map that walks into a kernel table and writes it (offset-not-validated)',
        { mutant: 'offset-not-validated', options: { privateLowerTables: false } },
        (sys) => [{ op: 'asi_create', flags: 0 }, { op: 'asi_map', asi: 1, ptr: sys.kernel.layout.ceaBase, size: PAGE_SIZE, level: PGT_LEVEL_PTE }],
        'ASI 1 wrote',
        'which it does not own',
      ),
      {
        name: 'an ASI that counts a kernel page-table page among its backend pages',
        run: (inv) => {
          const f = withMappedStack();
          const kernelTable = slotAt(f.sys, f.sys.kernel.pgd, f.stackVa, PGT_LEVEL_PTE).table;
          f.asi.backend.push({ frame: kernelTable, level: PGT_LEVEL_PTE });
          expectCaught(inv, f.sys, `asi#${f.asi.id}`, `pfn ${kernelTable}`);
        },
      },
      {
        name: "an ASI whose pgd is another ASI's page-table page",
        run: (inv) => {
          const f = withMappedStack();
          const other = run(f.sys, { op: 'asi_create', flags: 0 });
          expect(other).toBeGreaterThan(0);
          expect(inv.check(f.sys)).toBeUndefined();
          const stolen = f.sys.asis.get(other)!.pgd;
          f.asi.backend.push({ frame: stolen, level: PGT_LEVEL_PGD });
          expectCaught(inv, f.sys, `asi#${f.asi.id}`, `pfn ${stolen}`);
        },
      },
    ],
  },

  'RANGE-NO-OVERLAP': {
    holds: [{ name: 'overlapPolicy=refuse (an overlapping map is refused)', run: (inv) => holdsAlongCorrectRun(inv, { overlapPolicy: 'refuse' }, NON_OVERLAPPING_FLAGS) }],
    caught: [
      {
        name: 'two tracked ranges of one ASI whose extents overlap',
        run: (inv) => {
          const f = withMappedStack({ overlapPolicy: 'refuse' }, NON_OVERLAPPING_FLAGS);
          expect(inv.check(f.sys)).toBeUndefined();
          f.asi.ranges = [...f.asi.ranges, { ...f.stackRange, ptr: f.stackVa + PAGE_SIZE, size: PAGE_SIZE, entries: [], ghostReached: [] }];
          expectCaught(inv, f.sys, `asi#${f.asi.id}`, formatVa(f.sys.g, f.stackVa + PAGE_SIZE));
        },
      },
    ],
    also: [
      {
        name: 'applies under overlapPolicy=refuse only: the other policies allow overlaps',
        run: (inv) => {
          expect(inv.appliesTo?.(boot({ overlapPolicy: 'refuse' }))).toBe(true);
          expect(inv.appliesTo?.(boot({ overlapPolicy: 'count-ranges' }))).toBe(false);
          expect(inv.appliesTo?.(boot({ overlapPolicy: 'refcount-entries' }))).toBe(false);
        },
      },
    ],
  },

  'RANGE-OVERLAP-ACCOUNTED': {
    holds: [
      { name: 'fixed profile (overlapPolicy=refcount-entries)', run: (inv) => holdsAlongCorrectRun(inv) },
      { name: 'fixed profile with overlapPolicy=count-ranges', run: (inv) => holdsAlongCorrectRun(inv, { overlapPolicy: 'count-ranges' }) },
    ],
    caught: [
      {
        name: 'count-ranges: a range whose overlap count is not the number of ranges overlapping it',
        run: (inv) => {
          const f = withMappedStack({ overlapPolicy: 'count-ranges' });
          expect(inv.check(f.sys)).toBeUndefined();
          f.stackRange.overlap += 1;
          expectCaught(inv, f.sys, `asi#${f.asi.id}`, formatVa(f.sys.g, f.stackVa));
        },
      },
      {
        name: 'refcount-entries: an entry whose reference count is not the number of ranges relying on it',
        run: (inv) => {
          const f = withMappedStack({ overlapPolicy: 'refcount-entries' });
          expect(inv.check(f.sys)).toBeUndefined();
          const key = f.stackRange.entries[0];
          expect(key).toBeDefined();
          f.asi.entryRefs.set(key, (f.asi.entryRefs.get(key) ?? 0) + 1);
          expectCaught(inv, f.sys, `asi#${f.asi.id}`, key);
        },
      },
      {
        name: 'refcount-entries: a reference held for an entry no range relies on',
        run: (inv) => {
          const f = withMappedStack({ overlapPolicy: 'refcount-entries' });
          const key = `${PGT_LEVEL_PTE}:${f.sys.kernel.layout.vmallocEnd - PAGE_SIZE}`;
          expect(f.asi.ranges.some((r) => r.entries.includes(key))).toBe(false);
          f.asi.entryRefs.set(key, 1);
          expectCaught(inv, f.sys, `asi#${f.asi.id}`, key);
        },
      },
      {
        name: 'a step that cleared a translation a live range still covers',
        run: (inv) => {
          const f = withMappedStack();
          const va = f.stackVa + PAGE_SIZE;
          setEntry(f.sys, asiLeaf(f, va), 0);
          f.sys.ghost.cleared.push({ asi: f.asi.id, va, size: PAGE_SIZE });
          expectCaught(inv, f.sys, `asi#${f.asi.id}`, formatVa(f.sys.g, va));
        },
      },
    ],
    also: [
      {
        name: 'count-ranges with exact extents: counts are judged on the rounded extents patch 14 counts (no false positive)',
        run: (inv) => {
          const f = withMappedStack({ overlapPolicy: 'count-ranges' });
          const ptr = f.sys.kernel.kmallocs.get(run(f.sys, { op: 'kmalloc', size: 3 * PAGE_SIZE, sensitive: false }))!.va; // 4-page aligned: ptr and the next page share a PMD
          expect(run(f.sys, { op: 'asi_map', asi: f.asi.id, ptr, size: PAGE_SIZE, level: PGT_LEVEL_PMD })).toBe(0);
          expect(run(f.sys, { op: 'asi_map', asi: f.asi.id, ptr: ptr + PAGE_SIZE, size: PAGE_SIZE, level: PGT_LEVEL_PTE })).toBe(0);
          expect(f.asi.ranges[0].overlap, 'patch 14 counts the PTE range inside the PMD range\'s rounded extent').toBe(1);
          expect(inv.check(f.sys)).toBeUndefined();
        },
      },
    ],
  },

  'RANGE-NO-LEAK': {
    holds: [{ name: 'fixed profile', run: (inv) => holdsAlongCorrectRun(inv) }],
    caught: [
      {
        name: 'a translation left in the ASI page table after its range stopped being tracked',
        run: (inv) => {
          const f = withMappedStack();
          expect(inv.check(f.sys)).toBeUndefined();
          f.asi.ranges = f.asi.ranges.filter((r) => r !== f.stackRange);
          expectCaught(inv, f.sys, `asi#${f.asi.id}`, formatVa(f.sys.g, f.stackVa));
        },
      },
      {
        name: 'an ASI removed from the system while its page-table pages stay allocated',
        run: (inv) => {
          const f = withMappedStack();
          const owned = [f.asi.pgd, ...f.asi.backend.map((b) => b.frame)];
          f.sys.asis.delete(f.asi.id);
          const message = expectCaught(inv, f.sys, `asi#${f.asi.id}`);
          const pfn = Number(/pfn (\d+)/.exec(message)?.[1]);
          expect(owned).toContain(pfn);
        },
      },
      {
        name: 'an ASI page-table page that is allocated but not tracked as a backend page',
        run: (inv) => {
          const f = withMappedStack();
          const lost = f.asi.backend.pop()!;
          expectCaught(inv, f.sys, `pfn ${lost.frame}`);
        },
      },
    ],
  },

  'RANGE-EXACT': {
    holds: [{ name: 'fixed profile', run: (inv) => holdsAlongCorrectRun(inv) }],
    caught: [
      {
        name: 'a page of a tracked range that the kernel maps but the ASI does not',
        run: (inv) => {
          const f = withMappedStack();
          expect(inv.check(f.sys)).toBeUndefined();
          const va = f.stackVa + 2 * PAGE_SIZE;
          setEntry(f.sys, asiLeaf(f, va), 0);
          expectCaught(inv, f.sys, `asi#${f.asi.id}`, formatVa(f.sys.g, va));
        },
      },
    ],
  },

  REFINE: {
    holds: [{ name: 'fixed profile', run: (inv) => holdsAlongCorrectRun(inv) }],
    caught: [
      {
        name: 'an ASI leaf writable where the kernel maps the page read-only',
        run: (inv) => {
          const f = withMappedStack();
          expect(inv.check(f.sys)).toBeUndefined();
          const leaf = leaves(f.sys.g, f.sys.tables, f.asi.pgd).find((l) => {
            const k = walk(f.sys.g, f.sys.tables, f.sys.kernel.pgd, l.va);
            return l.level === PGT_LEVEL_PTE && k.ok && (k.leaf.flags & _PAGE_RW) === 0;
          });
          expect(leaf, 'the ASI maps some kernel read-only page (kernel text)').toBeDefined();
          const e = getEntry(f.sys, leaf!);
          setEntry(f.sys, leaf!, mkEntry(entryFrame(e), entryFlags(e) | _PAGE_RW));
          expectCaught(inv, f.sys, `asi#${f.asi.id}`, formatVa(f.sys.g, leaf!.va));
        },
      },
      {
        name: 'an ASI leaf executable where the kernel maps the page NX',
        run: (inv) => {
          const f = withMappedStack();
          const leaf = asiLeaf(f, f.stackVa);
          const e = getEntry(f.sys, leaf);
          expect(entryFlags(e) & _PAGE_NX).toBe(_PAGE_NX);
          setEntry(f.sys, leaf, mkEntry(entryFrame(e), entryFlags(e) & ~_PAGE_NX));
          expectCaught(inv, f.sys, `asi#${f.asi.id}`, formatVa(f.sys.g, f.stackVa));
        },
      },
      {
        name: 'an ASI leaf that maps a different frame than the kernel at the same address',
        run: (inv) => {
          const f = withMappedStack();
          const leaf = asiLeaf(f, f.stackVa);
          const e = getEntry(f.sys, leaf);
          const image = [...f.sys.mem.allocs.values()].find((a) => a.kind === 'kernel-image')!.frames[0];
          setEntry(f.sys, leaf, mkEntry(image, entryFlags(e)));
          expectCaught(inv, f.sys, `asi#${f.asi.id}`, `pfn ${image}`);
        },
      },
      {
        name: 'a live range whose memory the kernel has freed since it was mapped (stale mapping)',
        run: (inv) => {
          const f = withMappedStack();
          const alloc = unitAlloc(f.stackRange.ghostReached[0]);
          expect(alloc).toBeDefined();
          expect(freeAllocation(f.sys.mem, alloc)).toBeDefined();
          expectCaught(inv, f.sys, `asi#${f.asi.id}`, `#${alloc}`);
        },
      },
    ],
  },

  ISOLATION: {
    holds: [{ name: 'fixed profile', run: (inv) => holdsAlongCorrectRun(inv) }],
    caught: [
      {
        name: "an ASI entry that exposes another task's stack, which no range requested",
        run: (inv) => {
          const f = withMappedStack();
          expect(inv.check(f.sys)).toBeUndefined();
          const victim = [...f.sys.kernel.tasks.values()].find((t) => t.id !== f.task)!;
          const stack = f.sys.mem.allocs.get(f.sys.kernel.vmAreas.get(victim.stack)!.alloc)!;
          expect(stack.sensitive).toBe(true);
          const frame = stack.frames[0];
          const table = asiLeaf(f, f.stackVa).table;
          const entries = f.sys.tables.get(table)!;
          const index = entries.findIndex((e) => isNone(e));
          expect(index, 'a free slot in the ASI PTE table').toBeGreaterThanOrEqual(0);
          entries[index] = mkEntry(frame, PAGE_KERNEL);
          expectCaught(inv, f.sys, `asi#${f.asi.id}`, `pfn ${frame}`, stack.name);
        },
      },
      {
        name: "a Global TLB entry of an isolated CPU that reaches another task's stack",
        run: (inv) => {
          const { sys, asi } = isolatedCpu0();
          expect(inv.check(sys)).toBeUndefined();
          const victim = [...sys.kernel.tasks.values()].find((t) => t.id !== sys.kernel.current[0])!;
          const stack = sys.mem.allocs.get(sys.kernel.vmAreas.get(victim.stack)!.alloc)!;
          sys.cpus[0].tlb.set(`G:${Math.floor(taskStackVa(sys, victim) / PAGE_SIZE)}`, { frame: stack.frames[0], flags: PAGE_KERNEL, alloc: stack.id, root: sys.kernel.pgd, rootAlloc: sys.mem.frameAlloc[sys.kernel.pgd] });
          expectCaught(inv, sys, 'cpu0', `asi#${asi.id}`, 'Global TLB entry', stack.name);
        },
      },
    ],
  },

  'TLB-COHERENT': {
    holds: [
      { name: 'fixed profile, CPUs', run: (inv) => holdsAlongCpuRun(inv) },
      { name: 'fixed profile', run: (inv) => holdsAlongCorrectRun(inv) },
      {
        name: "the September direct map: a page read through it, freed and reused (it stays mapped), then set_direct_map_invalid_noflush()'d: stale only until the flush its caller owes",
        run: (inv) => {
          const sys = createSystem({ geometry: 'small', cpus: 2, profile: 'asi25-dm-fixed' });
          const id = run(sys, { op: 'kmalloc', size: 3 * PAGE_SIZE, sensitive: false });
          const frame = sys.mem.allocs.get(sys.kernel.kmallocs.get(id)!.alloc)!.frames[0];
          const va = directMapVa(sys, frame);
          expect(run(sys, { op: 'access', cpu: 1, va, access: 'read', intr: [] })).toBe(0);
          run(sys, { op: 'kfree', id });
          expect(run(sys, { op: 'kmalloc', size: 3 * PAGE_SIZE, sensitive: false })).toBeGreaterThan(0);
          expect(sys.mem.frameAlloc[frame], 'the same frame, reused').toBeGreaterThan(id);
          expect(inv.check(sys), 'the direct map still gives the translation').toBeUndefined();
          sys.ghost.noflushPending.add(va);
          expect(changePageAttrSetClr({ sys, cpu: sys.cpus[0], out: [] }, va, 1, { set: 0, clr: _PAGE_PRESENT | _PAGE_RW, noCheckAlias: true, noFlush: true })).toBe(0);
          expect(inv.check(sys), "the flush is owed by set_direct_map_invalid_noflush()'s caller").toBeUndefined();
          sys.ghost.noflushPending.clear();
          expectCaught(inv, sys, 'cpu1', formatVa(sys.g, va), `pfn ${frame}`);
        },
      },
    ],
    caught: [
      {
        name: 'a CPU that keeps a translation of a vfree()d page after the purge, when the frame went to a new owner',
        run: (inv) => {
          // Pages of their own (slab off): the frame's next owner is a page allocation.
          const sys = createSystem({ geometry: 'small', cpus: 2, profile: 'fixed', kernel: { slab: false } });
          const area = run(sys, { op: 'vmalloc', pages: 1, sensitive: false });
          const va = sys.kernel.vmAreas.get(area)!.va;
          expect(run(sys, { op: 'access', cpu: 1, va, access: 'read', intr: [] })).toBe(0);
          const cached = [...sys.cpus[1].tlb.values()].find((e) => e.frame === sys.mem.allocs.get(sys.kernel.vmAreas.get(area)!.alloc)!.frames[0])!;
          expect(cached).toBeDefined();
          const saved = new Map(sys.cpus[1].tlb);
          run(sys, { op: 'vfree', id: area });
          expect(inv.check(sys), 'a stale entry to a free frame: its flush may still be pending').toBeUndefined();
          run(sys, { op: 'kmalloc', size: PAGE_SIZE, sensitive: true });
          expect(inv.check(sys), 'reused while the area waits for the lazy purge: 5.2 owes the flush to the purge').toBeUndefined();
          // module_load's set_memory_ro purges the lazy list, but (broken here by hand) cpu1 is never flushed.
          run(sys, { op: 'module_load', pages: 1 });
          expect(sys.kernel.vmapPurge).toEqual([]);
          for (const [k, e] of saved) sys.cpus[1].tlb.set(k, e);
          expectCaught(inv, sys, 'cpu1', formatVa(sys.g, va), `pfn ${cached.frame}`);
        },
      },
    ],
    also: [
      {
        name: 'rfc-v2 (F20 then a reuse): asi_unmap flushes nothing, and the frame the isolated CPU still reaches is handed to another owner',
        run: (inv) => {
          // Pages of their own (slab off): the object's frame goes back to the page allocator.
          const sys = createSystem({ geometry: 'small', cpus: 2, profile: 'fixed', options: { asiUnmapFlushesTlb: false, freeUnmapsAsi: false }, kernel: { slab: false } });
          const asi = run(sys, { op: 'asi_create', flags: 0 });
          const obj = run(sys, { op: 'kmalloc', size: 0x40, sensitive: false });
          const va = sys.kernel.kmallocs.get(obj)!.va;
          expect(run(sys, { op: 'asi_map', asi, ptr: va, size: 0x40, level: PGT_LEVEL_PTE })).toBe(0);
          expect(run(sys, { op: 'asi_enter', cpu: 0, asi, intr: [] })).toBe(0);
          expect(run(sys, { op: 'access', cpu: 0, va, access: 'read', intr: [] })).toBe(0);
          expect(run(sys, { op: 'asi_unmap', asi, ptr: va })).toBe(0);
          expect(run(sys, { op: 'kfree', id: obj })).toBe(0);
          expect(inv.check(sys)).toBeUndefined();
          run(sys, { op: 'kmalloc', size: 0x40, sensitive: true });
          expectCaught(inv, sys, 'cpu0', formatVa(sys.g, va));
        },
      },
    ],
  },

  'CALLER-CONTRACT': {
    holds: [
      { name: 'fixed profile', run: (inv) => holdsAlongCorrectRun(inv) },
      { name: 'fixed profile, CPUs', run: (inv) => holdsAlongCpuRun(inv) },
    ],
    caught: [
      {
        name: 'an asi_map that returned 0 with its range not tracked (dropped by hand from the list the call left)',
        run: (inv) => {
          const f = withMappedStack();
          expect(inv.check(f.sys)).toBeUndefined();
          f.asi.ranges = f.asi.ranges.filter((r) => r !== f.stackRange);
          const [call] = f.sys.ghost.apiCalls;
          f.sys.ghost.apiCalls = [{ ...call, rangesAfter: f.asi.ranges }];
          expectCaught(inv, f.sys, 'asi_map by caller 0 returned 0', formatVa(f.sys.g, f.stackVa));
        },
      },
      {
        name: "KVM's own calls: an asi_map of vmx_isolation_init_mapping that returned 0 with its range not tracked (dropped by hand)",
        run: (inv) => {
          const sys = boot();
          run(sys, { op: 'kvm_create_vm' });
          expect(run(sys, { op: 'kvm_create_vcpu', vm: 1 })).toBeGreaterThan(0);
          expect(inv.check(sys)).toBeUndefined();
          const calls = sys.ghost.apiCalls;
          expect(calls.map((c) => c.call)).toEqual(expect.arrayContaining(['asi_map_percpu', 'asi_map_module', 'asi_map']));
          const i = calls.findIndex((c) => c.call === 'asi_map');
          const dropped = calls[i].rangesAfter.filter((r) => r.ptr !== calls[i].asked[0].ptr);
          sys.ghost.apiCalls = calls.map((c, j) => (j === i ? { ...c, rangesAfter: dropped } : c));
          expectCaught(inv, sys, 'asi_map by caller 0 returned 0', formatVa(sys.g, calls[i].asked[0].ptr));
        },
      },
      {
        name: "rfc-v2: an asi_unmap by caller 1 that removes caller 0's range",
        run: (inv) => {
          const f = withMappedStack({ unmapMatchesCaller: false });
          run(f.sys, { op: 'asi_unmap', asi: f.asi.id, ptr: f.stackVa, caller: 1 });
          expectCaught(inv, f.sys, 'asi_unmap by caller 1', 'which caller 0 mapped');
        },
      },
    ],
  },

  'NO-WARN': {
    holds: [{ name: 'fixed profile', run: (inv) => holdsAlongCorrectRun(inv) }],
    caught: [
      recordedCase(
        'asi_enter of a session left ABORTED warns (finish-abort-skips-exit)',
        { mutant: 'finish-abort-skips-exit' },
        () => [...enterCpu0, { op: 'interrupt', cpu: 0, kind: 'irq', intr: [] }, { op: 'asi_enter', cpu: 0, asi: 1, intr: [] }],
        'WARN_ON(state == ASI_SESSION_STATE_ABORTED)',
      ),
    ],
    also: [
      {
        name: 'does not report events that belong to another invariant (PT-OWN)',
        run: (inv) => {
          const f = withMappedStack();
          f.sys.ghost.events.push({ invariant: 'PT-OWN', message: 'not a warning' });
          expect(inv.check(f.sys)).toBeUndefined();
        },
      },
    ],
  },
  'CURR-ASI': {
    holds: [
      {
        name: 'the 2025 runtime: asi_enter, an IRQ with a nested NMI that leaves the domain, the outermost return re-entering it, asi_relax, asi_exit; an NMI at every micro-step of asi_enter',
        run: (inv) => {
          const r = setupTestAsi();
          r.run('asi_enter', asiEnter(r.k, r.domain));
          deliver(r.k, { at: 0, kind: 'irq' }, 'test@now', () => nmi(r, () => drive(r.k, 'asi_exit', asiExit(r.k))));
          asiRelax(r.k);
          r.run('asi_exit', asiExit(r.k));
          for (let at = 0; at <= 3; at++) {
            const n = setupTestAsi();
            drive(n.k, 'asi_enter', asiEnter(n.k, n.domain), [{ at, kind: 'nmi' }]);
            r.violations.push(...n.violations);
          }
          expect(r.violations.filter((v) => v.invariant === inv.id)).toEqual([]);
          expect(r.sys.asi25!.currAsi[0]).toBeNull();
        },
      },
    ],
    caught: [
      {
        name: 'curr_asi left set after the unrestricted CR3 write (asi_exit without its last statement)',
        run: (inv) => {
          const r = setupTestAsi();
          r.run('asi_enter', asiEnter(r.k, r.domain));
          asiRelax(r.k);
          const exit = asiExit(r.k);
          exit.next();
          r.sys.asi25!.cr3Window[0] = null;
          expect(inv.check(r.sys)).toBe(`cpu0: curr_asi is ${r.domain} but CR3 holds kernel/pcid1`);
        },
      },
      {
        name: 'a CPU left on a domain whose curr_asi was cleared',
        run: (inv) => {
          const r = setupTestAsi();
          r.run('asi_enter', asiEnter(r.k, r.domain));
          r.sys.asi25!.currAsi[0] = null;
          expect(inv.check(r.sys)).toBe(`cpu0: curr_asi is NULL but CR3 holds ${r.domain}/pcid3073`);
        },
      },
    ],
  },
  'ASI-CRITICAL': {
    holds: [
      {
        name: 'the 2025 design: critical sections with an IRQ or an NMI at each point, its handler reading sensitive data (a fault, asi_exit, and re-entry on the way out)',
        run: (inv) => {
          for (let at = 0; at <= 4; at++) {
            for (const kind of ['irq', 'nmi'] as const) {
              const r = setupTestAsi({ sensitivePages: 1 });
              drive(r.k, 'asi_enter', asiEnter(r.k, r.domain), [{ at, kind, va: r.sensitive[0] }]);
              expect(inv.check(r.sys), `${kind}@${at}`).toBeUndefined();
              expect(r.violations.filter((v) => v.invariant === inv.id), `${kind}@${at}`).toEqual([]);
              expect(r.sys.asi25!.currAsi[0]).toBe(r.domain);
            }
          }
        },
      },
    ],
    caught: [
      {
        name: 'an interrupt of the critical section that left the domain and returned without re-entering it',
        run: (inv) => {
          const r = setupTestAsi();
          r.run('asi_enter', asiEnter(r.k, r.domain));
          r.sys.asi25!.currAsi[0] = null;
          r.k.cpu.cr3 = kernelCr3(r.sys);
          expect(inv.check(r.sys)).toBe(`cpu0: task ${r.sys.kernel.current[0]} is in its critical section on ${r.domain}, but curr_asi is NULL and CR3 holds kernel/pcid1`);
        },
      },
    ],
  },
  'ASI-TAINT': {
    holds: [
      {
        name: 'the 2025 design with its fixes: every process in user space, system calls into a caller domain and KVM_RUN, an NMI reading sensitive data at each point of a critical section (asi_exit taints, the re-entry flushes)',
        run: (inv) => {
          for (let at = 0; at <= 4; at++) {
            const sys = createSystem({ geometry: 'small', cpus: 2, profile: 'asi25-fixed' });
            const held: (string | undefined)[] = [];
            const judge = () => held.push(inv.check(sys));
            const secret = sys.kernel.kmallocs.get(step(sys, { op: 'kmalloc', size: 3 * PAGE_SIZE, sensitive: true }).ret)!.va;
            const asi = step(sys, { op: 'asi_create', flags: 0 }).ret;
            step(sys, { op: 'asi_enter', cpu: 0, asi, intr: [{ at, kind: 'nmi', va: secret }] }, judge);
            const vcpu = step(sys, { op: 'kvm_create_vcpu', vm: step(sys, { op: 'kvm_create_vm' }).ret }).ret;
            step(sys, { op: 'kvm_run', cpu: 1, vcpu, exits: ['cpuid', 'ept-violation'], intr: [{ at, kind: 'nmi', va: secret }] }, judge);
            judge();
            expect(held.filter((m) => m !== undefined), `nmi@${at}`).toEqual([]);
            // The NMI's read of the secret left the critical section through asi_exit, which tainted.
            expect(sys.ghost.visited.some((v) => v.endsWith('@write_cr3(unrestricted_cr3)')), `nmi@${at}`).toBe(true);
          }
        },
      },
    ],
    caught: [
      {
        name: "kernel data left when a domain's critical section runs (mutant asi25-enter-skips-data-flush: boot's return to user space, tainted, flushes nothing)",
        run: (inv) => {
          const sys = createSystem({ geometry: 'small', cpus: 2, profile: 'asi25-fixed', mutant: 'asi25-enter-skips-data-flush' });
          expect(inv.check(sys)).toMatch(/^cpu0: task \d+'s critical section runs on mm\d+\/userspace with taints 0x1 its class must flush first \(since the last flushes kernel data, /);
        },
      },
      {
        name: "a taint the code never set (mutant asi25-exit-skips-kernel-taint): asi_taints is clean, but the kernel ran unrestricted since the last data flush",
        run: (inv) => {
          const sys = createSystem({ geometry: 'small', cpus: 2, profile: 'asi25-fixed', mutant: 'asi25-exit-skips-kernel-taint' });
          expect(inv.check(sys)).toBeUndefined();
          const secret = sys.kernel.kmallocs.get(step(sys, { op: 'kmalloc', size: 3 * PAGE_SIZE, sensitive: true }).ret)!.va;
          step(sys, { op: 'interrupt', cpu: 0, kind: 'irq', va: secret, intr: [] });
          expect(sys.asi25!.taints[0] & 1).toBe(0);
          expect(inv.check(sys)).toMatch(/^cpu0: task \d+'s critical section runs on mm\d+\/userspace with taints 0x1 its class must flush first \(since the last flushes kernel data/);
        },
      },
      {
        name: "another process's user space ran since the last control flush (a hand-built ghost): OTHER_MM_CONTROL, which the userspace class prevents",
        run: (inv) => {
          const sys = createSystem({ geometry: 'small', cpus: 2, profile: 'asi25-fixed' });
          expect(inv.check(sys)).toBeUndefined();
          sys.asi25!.exposed[1] = { data: [], control: ['user:99'] };
          expect(inv.check(sys)).toMatch(/^cpu1: task \d+'s critical section runs on mm\d+\/userspace with taints 0x40 its class must flush first \(since the last flushes user:99 control ran there\)$/);
        },
      },
    ],
  },
  'ASI-NONSENSITIVE': {
    holds: [
      {
        name: "the 2025 design with F43's and F44's fixes: vmallocs, sensitive and not, a sensitive one freed and its page reused zeroed, a nonsensitive one freed through the worker",
        run: (inv) => {
          const r = setupTestAsi({ profile: 'asi25-fixed' });
          const held: (string | undefined)[] = [];
          const vmalloc = (sensitive: boolean) => step(r.sys, { op: 'vmalloc', pages: 1, sensitive }).ret;
          const secret = vmalloc(true);
          const plain = vmalloc(false);
          held.push(inv.check(r.sys));
          step(r.sys, { op: 'vfree', id: secret });
          vmalloc(false);
          held.push(inv.check(r.sys));
          // asi_async_free_work_fn runs as the op ends.
          step(r.sys, { op: 'vfree', id: plain });
          held.push(inv.check(r.sys));
          expect(held).toEqual([undefined, undefined, undefined]);
          expect(r.sys.asi25!.asyncFree).toEqual([]);
        },
      },
    ],
    caught: [
      {
        name: 'F43: pages a sensitive kmalloc_large freed, reused by a nonsensitive one, mapped unzeroed (the posted code)',
        run: (inv) => {
          const r = setupTestAsi();
          step(r.sys, { op: 'kfree', id: step(r.sys, { op: 'kmalloc', size: 3 * PAGE_SIZE, sensitive: true }).ret });
          step(r.sys, { op: 'kmalloc', size: 3 * PAGE_SIZE, sensitive: false });
          expect(inv.check(r.sys)).toMatch(/which still holds the data of kmalloc$/);
        },
      },
      {
        name: "a TLB entry for a __GFP_SENSITIVE page under the domain's PCID, on a CPU running restricted",
        run: (inv) => {
          const r = setupTestAsi();
          const obj = r.sys.kernel.kmallocs.get(step(r.sys, { op: 'kmalloc', size: 3 * PAGE_SIZE, sensitive: true }).ret)!;
          r.run('asi_enter', asiEnter(r.k, r.domain));
          expect(inv.check(r.sys)).toBeUndefined();
          const w = walk(r.sys.g, r.sys.tables, r.sys.kernel.pgd, obj.va);
          if (!w.ok) throw new Error('the kernel maps the object');
          const frame = w.leaf.frame + (obj.va - w.leaf.va) / PAGE_SIZE;
          r.k.cpu.tlb.set(`${cr3Pcid(r.k.cpu.cr3)}:${obj.va / PAGE_SIZE}`, { frame, flags: w.leaf.flags, alloc: r.sys.mem.frameAlloc[frame], root: r.sys.kernel.pgd, rootAlloc: r.sys.mem.frameAlloc[r.sys.kernel.pgd] });
          expect(inv.check(r.sys)).toMatch(/^cpu0, restricted \(PCID 3073\), can use its TLB entry for .* of kmalloc, allocated __GFP_SENSITIVE$/);
        },
      },
      {
        name: 'a __GFP_SENSITIVE page asi_map()ped into the global nonsensitive pgd',
        run: (inv) => {
          const r = setupTestAsi();
          const obj = r.sys.kernel.kmallocs.get(step(r.sys, { op: 'kmalloc', size: 3 * PAGE_SIZE, sensitive: true }).ret)!;
          expect(inv.check(r.sys)).toBeUndefined();
          expect(asiMap(r.k, ASI_GLOBAL_NONSENSITIVE, obj.va, PAGE_SIZE)).toBe(0);
          expect(inv.check(r.sys)).toMatch(/^the global nonsensitive pgd maps .* of kmalloc, allocated __GFP_SENSITIVE$/);
        },
      },
    ],
  },
  'ASI-REFINE': {
    holds: [
      {
        name: 'the 2025 design: vmalloc and kmalloc areas mapped and freed (through the worker), a module loaded read-only and unloaded',
        run: (inv) => {
          const r = setupTestAsi({ profile: 'asi25-fixed' });
          const held: (string | undefined)[] = [];
          const area = step(r.sys, { op: 'vmalloc', pages: 2, sensitive: false }).ret;
          const obj = step(r.sys, { op: 'kmalloc', size: 3 * PAGE_SIZE, sensitive: false }).ret;
          const module = step(r.sys, { op: 'module_load', pages: 2 }).ret;
          held.push(inv.check(r.sys));
          for (const op of [{ op: 'vfree', id: area }, { op: 'kfree', id: obj }, { op: 'module_unload', id: module }] as const) step(r.sys, op);
          held.push(inv.check(r.sys));
          expect(held).toEqual([undefined, undefined]);
          expect(r.sys.asi25!.asyncFree).toEqual([]);
        },
      },
    ],
    caught: [
      {
        name: 'a vmalloc area the kernel unmapped (vunmap without patch 17\'s asi_unmap)',
        run: (inv) => {
          const r = setupTestAsi();
          const va = r.sys.kernel.vmAreas.get(step(r.sys, { op: 'vmalloc', pages: 1, sensitive: false }).ret)!.va;
          kernelUnmapPage(r.sys, va);
          expect(inv.check(r.sys)).toMatch(/^the global nonsensitive pgd maps .* -> pfn \d+, which the kernel no longer maps$/);
        },
      },
      {
        name: "a module's read-only text writable in the global nonsensitive pgd",
        run: (inv) => {
          // On the fixes: as posted, the module's set_memory_ro() already leaves its direct-map alias writable there (F50).
          const r = setupTestAsi({ profile: 'asi25-fixed' });
          const va = r.sys.kernel.modules.get(step(r.sys, { op: 'module_load', pages: 1 }).ret)!.va;
          const w = walk(r.sys.g, r.sys.tables, r.sys.asi25!.domains.get(ASI_GLOBAL_NONSENSITIVE)!.pgd!, va);
          if (!w.ok) throw new Error('patch 17 maps the module area');
          const entries = r.sys.tables.get(w.leaf.table)!;
          entries[w.leaf.index] = mkEntry(entryFrame(entries[w.leaf.index]), entryFlags(entries[w.leaf.index]) | _PAGE_RW);
          expect(inv.check(r.sys)).toMatch(/^the global nonsensitive pgd maps 0x[0-9a-f]+ PWkX-, wider than the kernel's PrkX-$/);
        },
      },
    ],
  },
  'ASI-PGD-SHARED': {
    holds: [
      {
        name: 'the 2025 design: a domain made, then vmalloc, kmalloc and module areas mapped after it',
        run: (inv) => {
          const r = setupTestAsi();
          step(r.sys, { op: 'vmalloc', pages: 3, sensitive: false });
          step(r.sys, { op: 'kmalloc', size: 3 * PAGE_SIZE, sensitive: false });
          step(r.sys, { op: 'module_load', pages: 2 });
          expect(inv.check(r.sys)).toBeUndefined();
        },
      },
    ],
    caught: [
      {
        name: 'a kernel-half pgd entry set in the global nonsensitive pgd after the domain copied it',
        run: (inv) => {
          const r = setupTestAsi();
          const global = r.sys.tables.get(r.sys.asi25!.domains.get(ASI_GLOBAL_NONSENSITIVE)!.pgd!)!;
          const i = global.findIndex((e, index) => index >= kernelPgdBoundary(r.sys) && isNone(e));
          global[i] = mkEntry(r.sys.asi25!.domains.get(r.domain)!.pgd!, _KERNPG_TABLE);
          expect(inv.check(r.sys)).toMatch(new RegExp(`^mm\\d+/\\w+'s pgd entry ${i} is none, the global nonsensitive pgd's pfn \\d+ .*: what was mapped there since asi_init does not reach the domain$`));
        },
      },
    ],
  },
  'ASI-PAGEBLOCK': {
    holds: [
      {
        name: 'the September direct map: boot, then allocations that flip pageblocks to nonsensitive and back (both profiles)',
        run: (inv) => {
          for (const profile of ['asi25-dm', 'asi25-dm-fixed'] as const) {
            const r = setupTestAsi({ profile });
            const plain = step(r.sys, { op: 'kmalloc', size: 8 * PAGE_SIZE, sensitive: false, count: 4 }).ret;
            step(r.sys, { op: 'vmalloc', pages: 5, sensitive: false });
            expect(inv.check(r.sys)).toBeUndefined();
            step(r.sys, { op: 'kfree', id: plain });
            while (step(r.sys, { op: 'kmalloc', size: 8 * PAGE_SIZE, sensitive: true }).ret >= 0);
            expect(inv.check(r.sys)).toBeUndefined();
          }
        },
      },
      {
        name: 'a system on the January direct map (asi_map of each allocation) is not judged',
        run: (inv) => {
          expect(judges(inv, setupTestAsi().sys)).toBe(false);
        },
      },
    ],
    caught: [
      {
        name: "a pageblock's PB_nonsensitive set with its 2M leaf still non-present, and a leaf made present under a sensitive pageblock",
        run: (inv) => {
          const r = setupTestAsi({ profile: 'asi25-dm-fixed' });
          const bits = r.sys.asi25!.pbNonsensitive;
          const b = bits.lastIndexOf(0);
          bits[b] = 1;
          expect(inv.check(r.sys)).toMatch(new RegExp(`^pageblock ${b} \\(pfn \\d+-\\d+\\) is nonsensitive \\(PB_nonsensitive 1\\) but pfn \\d+ is absent from the restricted direct map, present in the unrestricted one$`));
          bits[b] = 0;
          const { table, index } = physmapLeaf(r.sys, directMapVa(r.sys, b * pageblockNrPages(r.sys)));
          r.sys.tables.get(table)![index] |= _PAGE_PRESENT;
          expect(inv.check(r.sys)).toMatch(new RegExp(`^pageblock ${b} .* is sensitive \\(PB_nonsensitive 0\\) but pfn \\d+ is mapped in the restricted direct map$`));
        },
      },
    ],
  },
  'ASI-KVM': {
    holds: [
      {
        name: 'the 2025 design with its fixes: two VMs of one VMM, KVM_RUN with every exit reason, an NMI at each of its first points',
        run: (inv) => {
          for (let at = 0; at < 12; at++) {
            const sys = createSystem({ geometry: 'small', cpus: 2, profile: 'asi25-fixed' });
            const held: (string | undefined)[] = [];
            const vm = step(sys, { op: 'kvm_create_vm', memcg: 1 }).ret;
            step(sys, { op: 'kvm_create_vm', memcg: 1 });
            const vcpu = step(sys, { op: 'kvm_create_vcpu', vm }).ret;
            step(sys, { op: 'kvm_run', cpu: 1, vcpu, exits: [...EXIT_REASONS], intr: [{ at, kind: 'nmi' }] }, () => held.push(inv.check(sys)));
            held.push(inv.check(sys));
            expect(held.filter((m) => m !== undefined), `nmi@${at}`).toEqual([]);
          }
        },
      },
    ],
    caught: [
      {
        name: "KVM_RUN returning to user space without patch 21's asi_exit() (mutant asi25-kvm-run-skips-exit)",
        run: (inv) => {
          const sys = createSystem({ geometry: 'small', cpus: 2, profile: 'asi25-fixed', mutant: 'asi25-kvm-run-skips-exit' });
          const vcpu = step(sys, { op: 'kvm_create_vcpu', vm: step(sys, { op: 'kvm_create_vm' }).ret }).ret;
          step(sys, { op: 'kvm_run', cpu: 0, vcpu, exits: ['cpuid'], intr: [] });
          expect(inv.check(sys)).toMatch(/^cpu0: KVM_RUN of vCPU \d+ returns to user space with curr_asi mm\d+\/KVM on cr3 mm\d+\/KVM\/pcid1025$/);
        },
      },
      {
        name: "VM-exit loading a HOST_CR3 read before asi_enter(), the VMM's userspace domain's (mutant asi25-kvm-host-cr3-before-enter)",
        run: (inv) => {
          const sys = createSystem({ geometry: 'small', cpus: 2, profile: 'asi25-fixed', mutant: 'asi25-kvm-host-cr3-before-enter' });
          const vcpu = step(sys, { op: 'kvm_create_vcpu', vm: step(sys, { op: 'kvm_create_vm' }).ret }).ret;
          const seen: (string | undefined)[] = [];
          step(sys, { op: 'kvm_run', cpu: 0, vcpu, exits: ['cpuid'], intr: [] }, () => seen.push(inv.check(sys)));
          expect(seen.find((m) => m !== undefined)).toMatch(/^cpu0: VM-exit of vCPU \d+ loads HOST_CR3 mm\d+\/userspace\/pcid2049 while curr_asi is mm\d+\/KVM$/);
        },
      },
    ],
  },
  'ASI-DOMAIN-LIVE': {
    holds: [
      {
        name: 'the 2025 design: asi_enter on cpu0, asi_relax, asi_exit, then the last asi_destroy; a second reference dropped while a CPU is in the domain',
        run: (inv) => {
          const r = setupTestAsi();
          const held: (string | undefined)[] = [];
          expect(asiInit(r.k, r.mm, ASI_CLASS_TEST).domain).toBe(r.domain);
          r.run('asi_enter', asiEnter(r.k, r.domain));
          asiDestroy(r.k, r.domain);
          held.push(inv.check(r.sys));
          asiRelax(r.k);
          r.run('asi_exit', asiExit(r.k));
          asiDestroy(r.k, r.domain);
          held.push(inv.check(r.sys));
          expect(held).toEqual([undefined, undefined]);
          expect(r.sys.asi25!.domains.get(r.domain)!.refCount).toBe(0);
        },
      },
    ],
    caught: [
      {
        name: 'the last asi_destroy while cpu0 is still in the domain, in its critical section',
        run: (inv) => {
          const r = setupTestAsi();
          r.run('asi_enter', asiEnter(r.k, r.domain));
          asiDestroy(r.k, r.domain);
          expect(inv.check(r.sys)).toBe(`cpu0's curr_asi is ${r.domain}, destroyed (its pgd freed)`);
        },
      },
      {
        name: 'the last asi_destroy after an asi_exit without asi_relax (which WARNs): the task still targets the domain',
        run: (inv) => {
          const r = setupTestAsi();
          r.run('asi_enter', asiEnter(r.k, r.domain));
          const task = r.sys.kernel.current[0];
          r.run('asi_exit', asiExit(r.k));
          asiDestroy(r.k, r.domain);
          expect(inv.check(r.sys)).toBe(`task ${task}'s asi_state.target is ${r.domain}, destroyed`);
        },
      },
    ],
  },
};

describe('the invariant catalogue', () => {
  test('every invariant has a correct run and a hand-built bad state in this file, and ids are unique', () => {
    const ids = INVARIANTS.map((i) => i.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.filter((id) => !SPECS[id] || SPECS[id].holds.length === 0 || SPECS[id].caught.length === 0)).toEqual([]);
  });

  test('a fresh fixed system with one ASI (ASI_MAP_ALL) violates nothing', () => {
    const sys = boot();
    expect(checkAll(sys)).toEqual([]);
    expect(run(sys, { op: 'asi_create', flags: ASI_MAP_ALL })).toBeGreaterThan(0);
    expect(checkAll(sys)).toEqual([]);
  });

  test('checkAll reports a violation under the id of the invariant that found it', () => {
    const f = withMappedStack();
    f.sys.ghost.events.push({ invariant: 'NO-WARN', message: 'WARN_ON(x)' });
    expect(checkAll(f.sys)).toEqual([{ invariant: 'NO-WARN', message: 'WARN_ON(x)' }]);
  });
});

for (const inv of INVARIANTS) {
  describe(`${inv.id}: ${inv.statement}`, () => {
    const spec = SPECS[inv.id];
    if (!spec) return;
    for (const h of spec.holds) test(`holds after every step of a correct run (${h.name})`, () => h.run(inv));
    for (const c of spec.caught) test(`catches: ${c.name}`, () => c.run(inv));
    for (const c of spec.also ?? []) test(c.name, () => c.run(inv));
  });
}
