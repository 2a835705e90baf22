// KVM (issue 12): the per-vCPU ASI as patch 24 populates it, its error paths, KVM_RUN's exits and
// where each leaves isolation, the module parameter off, and the KVM findings on their options.

import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { runOps } from '../src/check/run.ts';
import { createSystem, step } from '../src/model/step.ts';
import { SESSION_STATE_NAMES, kernelCr3 } from '../src/model/x86/cpu.ts';
import { perCpuOffsetPtr, perCpuPtr } from '../src/model/mm/percpu.ts';
import { structPageVa } from '../src/model/mm/kernel.ts';
import { EXIT_REASONS } from '../src/model/kvm/run.ts';
import { kvVa } from '../src/model/mm/slab.ts';
import { type Op, formatOp } from '../src/model/ops.ts';
import type { Config, System } from '../src/model/system.ts';
import { CURRENT_TASK, NULL_BUS, ONE_VCPU, REUSED_MEMSLOTS, SWEEP_CONFIG, TWO_LAPICS, TWO_SRCU, slabNeighbour, failInInit, kvmConfig, nmiBeforeBarrier, pointOf, run, runFails, runHolds, slabConfig } from './kvm-scenarios.ts';

function boot(ops: readonly Op[], config = kvmConfig()): System {
  const sys = createSystem(config);
  for (const op of ops) step(sys, op);
  return sys;
}

describe('KVM_CREATE_VCPU (patches 23, 24)', () => {
  test('one ASI per vCPU, mapping what vmx_isolation_init_mapping maps, in its order', () => {
    const sys = boot([{ op: 'kvm_create_vm' }, { op: 'kvm_create_vcpu', vm: 1 }, { op: 'kvm_create_vcpu', vm: 1 }]);
    const [a, b] = [...sys.kvm!.vcpus.values()];
    expect(a.asi).not.toBeNull();
    expect(b.asi).not.toBe(a.asi);
    const asi = sys.asis.get(a.asi!)!;
    const va = (id: number) => sys.kernel.kmallocs.get(id)!.va;
    const cpuvar = (v: Parameters<typeof perCpuPtr>[1]) => [0, 1].map((c) => perCpuPtr(sys, v, c));
    const mod = (id: number) => sys.kernel.modules.get(id)!.va;
    const k = sys.kvm!;
    const vm = k.vms.get(1)!;
    const srcu = sys.kernel.percpuObjects.get(vm.srcu!.srcu)!;
    // enable_pml: sizeof(struct page) at vmx->pml_pg, a struct page *: its vmemmap entry.
    const pmlStructPage = structPageVa(sys, sys.mem.allocs.get(sys.kernel.kmallocs.get(a.pml!)!.alloc)!.frames[0]);
    const expected = [
      ...cpuvar('context_tracking'),
      ...cpuvar('irq_stat'),
      mod(k.modules.kvm),
      ...[0, 1].map((c) => perCpuOffsetPtr(sys, srcu.offset, c)),
      mod(k.modules.kvmIntel),
      ...cpuvar('current_vcpu'),
      vm.va,
      ...[a.vmx, a.run, a.apic, k.l1dFlushPages].map(va),
      pmlStructPage,
      ...[a.guestMsrs, a.vmcs, a.msrBitmap, a.pioData].map(va),
    ];
    // list_add puts the newest range first.
    expect(asi.ranges.filter((r) => r.madeBy === undefined).map((r) => r.ptr).reverse()).toEqual(expected);
  });

  test('address_space_isolation=0: no ASI, the guest runs on the kernel CR3, nothing is violated', () => {
    const config = kvmConfig({ kvmAddressSpaceIsolation: false });
    const ops = [...ONE_VCPU, run(0, 2, [...EXIT_REASONS])];
    runHolds(config, ops);
    const sys = boot(ops, config);
    expect(sys.asis.size).toBe(0);
    expect(sys.cpus[0].cr3).toBe(kernelCr3(sys));
  });
});

/** What a system holds that the last close must give back: its objects, areas, modules, ASIs, tasks and frames. */
interface Held {
  readonly kmallocs: ReadonlySet<number>;
  readonly vmAreas: ReadonlySet<number>;
  readonly modules: ReadonlySet<number>;
  readonly asis: ReadonlySet<number>;
  readonly tasks: ReadonlySet<number>;
  /** The allocation of each frame (-1: free). */
  readonly frames: Int32Array;
}

function held(sys: System): Held {
  const k = sys.kernel;
  return { kmallocs: new Set(k.kmallocs.keys()), vmAreas: new Set(k.vmAreas.keys()), modules: new Set(k.modules.keys()), asis: new Set(sys.asis.keys()), tasks: new Set(k.tasks.keys()), frames: sys.mem.frameAlloc.slice() };
}

/**
 * What KVM made that is still there after the last close, `before` being the system before the
 * first KVM op. Kept by design, and nothing else: kvm.ko and kvm-intel.ko, loaded with the first
 * VM, with vmx_l1d_flush_pages (vmx_init's, freed only by module unload); the vCPU threads, which
 * are the VMM's tasks (their task_struct and stack), not KVM's; and the kernel page tables that
 * vmalloc populated, which Linux never frees. Everything else, objects on slab pages and in percpu
 * units included, must be gone, and every frame free before is free again, held by what is kept,
 * or a slab page SLUB keeps for its cache (an empty slab stays up to min_partial; what is on it is
 * judged object by object).
 */
function kvmLeftovers(before: Held, sys: System): string[] {
  const k = sys.kernel;
  const threads = [...k.tasks.values()].filter((t) => !before.tasks.has(t.id));
  const keptObjects = new Set([...(sys.kvm ? [sys.kvm.l1dFlushPages] : []), ...threads.map((t) => t.struct)]);
  const keptAreas = new Set(threads.map((t) => t.stack));
  const keptModules = new Set(sys.kvm ? [sys.kvm.modules.kvm, sys.kvm.modules.kvmIntel] : []);
  const keptAllocs = new Set([...[...keptObjects].map((o) => k.kmallocs.get(o)!.alloc), ...[...keptAreas].map((a) => k.vmAreas.get(a)!.alloc), ...[...keptModules].map((m) => k.modules.get(m)!.alloc)]);
  const left: string[] = [];
  const name = (alloc: number) => sys.mem.allocs.get(alloc)?.name ?? `allocation ${alloc}`;
  for (const [id, o] of k.kmallocs) if (!before.kmallocs.has(id) && !keptObjects.has(id)) left.push(`kmalloc #${id}: ${o.part === undefined ? name(o.alloc) : sys.mem.allocs.get(o.alloc)!.parts!.find((p) => p.id === o.part)!.name}`);
  for (const [id, a] of k.vmAreas) if (!before.vmAreas.has(id) && !keptAreas.has(id)) left.push(`vmalloc area #${id}: ${name(a.alloc)}`);
  for (const [id, m] of k.modules) if (!before.modules.has(id) && !keptModules.has(id)) left.push(`module #${id}: ${name(m.alloc)}`);
  for (const id of sys.asis.keys()) if (!before.asis.has(id)) left.push(`asi#${id}`);
  for (const a of sys.mem.allocs.values()) for (const p of a.parts ?? []) if (p.owner?.kind === 'vm') left.push(`${a.name}: ${p.name}`);
  sys.mem.frameAlloc.forEach((alloc, frame) => {
    if (alloc < 0 || alloc === before.frames[frame] || keptAllocs.has(alloc)) return;
    const a = sys.mem.allocs.get(alloc);
    if ((a?.kind === 'pgtable' && a.owner.kind === 'kernel') || a?.kind === 'slab') return;
    left.push(`frame ${frame}: ${name(alloc)}`);
  });
  if (sys.kvm && (sys.kvm.vms.size || sys.kvm.vcpus.size)) left.push(`VMs ${[...sys.kvm.vms.keys()]}, vCPUs ${[...sys.kvm.vcpus.keys()]}`);
  return left;
}

/**
 * Ops, stepped without checks, then the VMM's exit (every VM still open is closed: a KVM_CREATE_VM
 * that failed shifts the ids later ops name), and what KVM left behind.
 */
function leftAfter(config: Config, ops: readonly Op[]): { sys: System; rets: number[]; left: string[] } {
  const sys = createSystem(config);
  const before = held(sys);
  const rets = ops.map((op) => step(sys, op).ret);
  for (const vm of [...(sys.kvm?.vms.keys() ?? [])]) step(sys, { op: 'kvm_destroy_vm', vm });
  return { sys, rets, left: kvmLeftovers(before, sys) };
}

const region = (vm: number, slot: number, pages: number, gfn?: number): Op => ({ op: 'kvm_set_memory_region', vm, slot, pages, ...(gfn === undefined ? {} : { gfn }) });
const bus = (vm: number, n: number, register: boolean): Op => ({ op: 'kvm_io_bus', vm, bus: n, register });
const close = (vm: number): Op => ({ op: 'kvm_destroy_vm', vm });

/** A life of VMs, ending with the last close. */
interface Life {
  readonly name: string;
  readonly config: Config;
  readonly ops: readonly Op[];
  /**
   * Whether each of its allocations is also made to fail in turn: not for the two-VM life, which
   * makes the calls of the others (a VM made while another lives, a vCPU, slots, runs) at twice
   * the cost of a step on the small geometry.
   */
  readonly failing: boolean;
}

const LIVES: readonly Life[] = [
  {
    name: 'one vCPU: memslots created, moved and deleted, buses registered and unregistered, KVM_RUN on both CPUs, woken on the other after HLT',
    config: kvmConfig(),
    ops: [...ONE_VCPU, run(0, 2, ['cpuid']), region(1, 1, 1), bus(1, 0, true), { ...run(1, 2, ['hlt', 'io']), wake: 0 }, region(1, 1, 1, 12), region(1, 0, 0), bus(1, 1, false), run(1, 2, ['ept-violation', 'mmio']), close(1)],
    failing: true,
  },
  { name: 'two vCPUs of one VM, each run on both CPUs, one preempted', config: kvmConfig(), ops: [...ONE_VCPU, { op: 'kvm_create_vcpu', vm: 1 }, run(0, 2, ['cpuid']), run(1, 3, ['io']), run(1, 2, ['msr']), run(0, 3, ['cpuid', 'io'], 20, 'switch'), close(1)], failing: true },
  { name: 'a VM closed, then another made and run while the modules stay loaded', config: kvmConfig(), ops: [{ op: 'kvm_create_vm' }, { op: 'kvm_create_vcpu', vm: 1 }, run(0, 2, ['io']), close(1), { op: 'kvm_create_vm' }, { op: 'kvm_create_vcpu', vm: 3 }, region(3, 0, 1), run(1, 4, ['ept-violation']), close(3)], failing: true },
  {
    name: 'two VMs with a vCPU each, the second closed first',
    config: SWEEP_CONFIG,
    ops: [...ONE_VCPU, { op: 'kvm_create_vm' }, { op: 'kvm_create_vcpu', vm: 3 }, region(3, 0, 2), run(0, 2, ['io']), run(1, 4, ['ept-violation']), run(1, 2, ['cpuid']), region(3, 1, 1), run(0, 4, ['io']), close(3), close(1)],
    failing: false,
  },
  { name: 'slab caches: one vCPU, a memslot and a bus changed, KVM_RUN on both CPUs', config: slabConfig(), ops: [...ONE_VCPU, run(0, 2, ['cpuid']), region(1, 1, 1), bus(1, 1, false), run(1, 2, ['io', 'hlt']), close(1)], failing: true },
];

describe('the last close gives back everything KVM made: objects, vmalloc areas, ASIs and their page tables, frames', () => {
  for (const { name, config, ops, failing } of LIVES) {
    test(name, () => {
      runHolds(config, ops);
      const { sys, rets, left } = leftAfter(config, ops);
      expect(rets.filter((r) => r < 0), 'every call of the life succeeds').toEqual([]);
      expect(left).toEqual([]);
      expect(sys.kvm!.asis.size).toBe(0);
    });

    if (!failing) continue;
    test(`${name}: with any one of its allocations failing`, () => {
      let failures = 0;
      for (let n = 0; ; n++) {
        const { sys, left } = leftAfter(config, [{ op: 'fail_alloc', after: n }, ...ops]);
        // The armed failure left unconsumed: every allocation of the life has failed once.
        if (sys.mem.failIn >= 0) break;
        failures++;
        expect(left, `allocation ${n} failing`).toEqual([]);
      }
      expect(failures).toBeGreaterThan(20);
    });
  }
});

/** Where each exit reason's handler leaves the session on `fixed`: still isolated, or aborted and left. */
function exitOutcomes(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const reason of EXIT_REASONS) {
    const sys = boot(ONE_VCPU);
    step(sys, run(0, 2, [reason]), (where) => {
      if (where === `vcpu_run@${reason === 'hlt' ? 'kvm_vcpu_block' : `handle_exit(${reason})`}`) out[reason] = SESSION_STATE_NAMES[sys.cpus[0].session.state];
    });
  }
  return out;
}

describe('KVM_RUN (patches 21, 25, 26)', () => {
  test('each exit reason touches what it needs: mapped data keeps isolation, the rest aborts it', () => {
    const outcomes = exitOutcomes();
    console.log('exit reason x session after its handler:', outcomes);
    expect(outcomes).toEqual({
      'ept-violation': 'INACTIVE', // the guest page is not mapped: asi_fault
      io: 'INACTIVE', // pio_data and the PIO bus are mapped, the ioeventfd its range leads to is not: asi_fault
      mmio: 'ACTIVE', // the buses are mapped, and no device is on them
      msr: 'ACTIVE',
      cpuid: 'ACTIVE',
      hlt: 'INACTIVE', // kvm_vcpu_block schedules: kvm_may_access_sensitive_data
      'external-interrupt': 'INACTIVE', // the host's IRQ handler aborts
      nmi: 'INACTIVE', // the host's NMI handler aborts
      'preemption-timer': 'ACTIVE', // the lapic is mapped
    });
  });

  test("an external-interrupt exit runs the host's IRQ handler with IRQs still off, before local_irq_enable (5.2 vmx_handle_external_intr)", () => {
    const sys = boot(ONE_VCPU);
    const seen: string[] = [];
    step(sys, run(0, 2, ['external-interrupt']), (where) => {
      if (where.startsWith('irq@') || where === 'vcpu_run@local_irq_enable') seen.push(`${where} irqs ${sys.cpus[0].irqsDisabled ? 'off' : 'on'}`);
    });
    expect(seen).toContain('irq@handler body irqs off');
    expect(seen.filter((s) => s.startsWith('irq@')).every((s) => s.endsWith('irqs off'))).toBe(true);
    expect(seen.at(-1)).toBe('vcpu_run@local_irq_enable irqs on');
  });

  test('the memslots and buses a run remaps are the current ones', () => {
    const sys = boot([...ONE_VCPU, run(0, 2, ['cpuid']), { op: 'kvm_set_memory_region', vm: 1, slot: 1, pages: 1 }, run(0, 2, ['cpuid'])]);
    const vcpu = sys.kvm!.vcpus.get(2)!;
    const vm = sys.kvm!.vms.get(1)!;
    expect(vcpu.asiMemslots).toEqual(vm.memslots.map((m) => kvVa(sys, m)));
    expect(vcpu.asiBuses).toEqual(vm.buses.map((b) => b!.va));
  });
});

describe('slab caches (KernelConfig.slab, on by default): objects share pages as in 5.2 SLUB', () => {
  test("two VMs' vCPUs: the posted kvm_lapics share a kmalloc-512 page; each vcpu_vmx has an order-3 kvm_vcpu slab of its own", () => {
    const sys = boot(TWO_LAPICS, slabConfig({ kvmMapsOwnPages: false, mapRefusesSharedSlabPages: false }));
    const obj = (id: number) => sys.kernel.kmallocs.get(id)!;
    const slabOf = (id: number) => sys.mem.allocs.get(obj(id).alloc)!;
    const [a, b] = [...sys.kvm!.vcpus.values()];
    expect(slabOf(a.apic).name).toBe('kmalloc-512 slab');
    expect(obj(b.apic).va - obj(a.apic).va).toBe(512);
    expect(slabOf(a.vmx).name).toBe('kvm_vcpu slab');
    expect(slabOf(a.vmx).frames.length).toBe(8);
    expect(slabOf(b.vmx)).not.toBe(slabOf(a.vmx));
    // fixed: kvmMapsOwnPages gives each lapic a kmalloc-4k object, a page of its own.
    const fixed = boot(TWO_LAPICS, slabConfig());
    expect(fixed.mem.allocs.get(fixed.kernel.kmallocs.get([...fixed.kvm!.vcpus.values()][0].apic)!.alloc)!.name).toBe('kmalloc-4k slab');
  });

  test('the slot kfree frees is the next one kmalloc hands out (the freelist is last-freed first), as a new object', () => {
    const sys = createSystem(slabConfig());
    const first = step(sys, { op: 'kmalloc', size: 100, sensitive: true }).ret;
    const { alloc: slab, va, part } = sys.kernel.kmallocs.get(first)!;
    const second = step(sys, { op: 'kmalloc', size: 100, sensitive: true }).ret;
    step(sys, { op: 'kfree', id: first });
    expect(sys.mem.allocs.get(slab)!.parts!.map((p) => p.name)).toEqual(['kmalloc']);
    const third = sys.kernel.kmallocs.get(step(sys, { op: 'kmalloc', size: 0x80, sensitive: false }).ret)!;
    expect([third.alloc, third.va]).toEqual([slab, va]);
    expect(third.part).not.toBe(part);
    step(sys, { op: 'kfree', id: second });
    step(sys, { op: 'kfree', id: third.id });
    expect(sys.mem.allocs.get(slab)!.parts, 'an empty slab stays with its cache').toEqual([]);
  });

  test('an empty slab goes back to the page allocator once its cache holds min_partial other partial slabs (6 for kmalloc-8k), and stays before', () => {
    const sys = createSystem(slabConfig());
    // Eight order-3 slabs of four kmalloc-8k objects each, A to H; H is the active slab.
    const ids = Array.from({ length: 32 }, () => step(sys, { op: 'kmalloc', size: 0x2000, sensitive: false }).ret);
    const slabOf = (i: number) => sys.kernel.kmallocs.get(ids[i])!.alloc;
    expect(new Set(ids.map((_, i) => slabOf(i))).size).toBe(8);
    const [a, g, h] = [slabOf(0), slabOf(24), slabOf(28)];
    // B to F partial: A, emptied with five other partial slabs, stays.
    for (const s of [1, 2, 3, 4, 5]) step(sys, { op: 'kfree', id: ids[4 * s] });
    for (const i of [0, 1, 2, 3]) step(sys, { op: 'kfree', id: ids[i] });
    expect(sys.mem.allocs.get(a)?.parts, 'five other partial slabs: A stays, empty').toEqual([]);
    // G, emptied with six (A to F), goes; H, the active slab, is never discarded.
    for (const i of [24, 25, 26, 27]) step(sys, { op: 'kfree', id: ids[i] });
    expect(sys.mem.allocs.has(g), 'six other partial slabs: G goes').toBe(false);
    for (const i of [28, 29, 30, 31]) step(sys, { op: 'kfree', id: ids[i] });
    expect(sys.mem.allocs.get(h)?.parts, 'the active slab stays').toEqual([]);
  });
});

describe("the vCPU thread: a task of its own, preempted and migrated (5.2 vcpu_load, kvm_sched_out/kvm_sched_in)", () => {
  test('KVM_RUN runs the vCPU thread on the op\'s CPU; a run on another CPU migrates it there, and its old CPU runs another task', () => {
    const sys = boot([...ONE_VCPU, run(0, 2, ['cpuid'])]);
    const vcpu = sys.kvm!.vcpus.get(2)!;
    const thread = vcpu.thread!;
    expect(sys.kernel.tasks.get(thread)).toBeDefined();
    expect([sys.kernel.current[0], vcpu.cpu]).toEqual([thread, 0]);
    const out = step(sys, run(1, 2, ['cpuid']));
    expect([sys.kernel.current[1], vcpu.cpu]).toEqual([thread, 1]);
    expect(sys.kernel.current[0]).not.toBe(thread);
    expect(out.log.map((l) => l.text)).toContain('vCPU 2: vmx_vcpu_load on cpu1, migrated from cpu0');
  });

  test('an HLT exit blocks the thread, and woken on another CPU it runs the rest of vcpu_run there: kvm_sched_in loads the vCPU on that CPU, the next entry is isolated there (fixed)', () => {
    const ops: Op[] = [...ONE_VCPU, { op: 'task_create' }, { ...run(0, 2, ['hlt', 'cpuid']), wake: 1 }];
    const sys = boot(ops.slice(0, -1));
    const entries: string[] = [];
    const out = step(sys, ops[ops.length - 1], (where) => {
      if (where === 'vcpu_run@VM-exit') entries.push(`cpu0 ${SESSION_STATE_NAMES[sys.cpus[0].session.state]}, cpu1 ${SESSION_STATE_NAMES[sys.cpus[1].session.state]}`);
    });
    const vcpu = sys.kvm!.vcpus.get(2)!;
    expect(entries).toEqual(['cpu0 ACTIVE, cpu1 INACTIVE', 'cpu0 INACTIVE, cpu1 ACTIVE']);
    expect([vcpu.cpu, sys.kernel.current[1]]).toEqual([1, vcpu.thread]);
    expect(sys.kernel.current[0]).not.toBe(vcpu.thread);
    expect(out.log.map((l) => l.text)).toContain('vCPU 2: vmx_vcpu_load on cpu1, migrated from cpu0');
    runHolds(kvmConfig(), ops);
  });

  test('a preemption inside vcpu_run fires kvm_sched_out (kvm_arch_vcpu_put leaves isolation) and kvm_sched_in; the next entry is isolated again (fixed)', () => {
    const base = [...ONE_VCPU, run(0, 2, ['cpuid', 'cpuid'])];
    const at = pointOf(kvmConfig(), base, 'handle_exit(cpuid)');
    const sys = boot(ONE_VCPU);
    const states: string[] = [];
    step(sys, run(0, 2, ['cpuid', 'cpuid'], at, 'switch'), (where) => {
      if (['schedule@kvm_sched_out', 'schedule@kvm_sched_in', 'vcpu_run@VM-exit'].includes(where)) states.push(`${where} ${SESSION_STATE_NAMES[sys.cpus[0].session.state]}`);
    });
    expect(states).toEqual(['vcpu_run@VM-exit ACTIVE', 'schedule@kvm_sched_out INACTIVE', 'schedule@kvm_sched_in INACTIVE', 'vcpu_run@VM-exit ACTIVE']);
    runHolds(kvmConfig(), [...ONE_VCPU, run(0, 2, ['cpuid', 'cpuid'], at, 'switch')]);
  });
});

/** A KVM_RUN of vCPU 2 in the migration property: where it is issued, its exits, where HLT wakes the thread, where a preemption lands. */
const migratingRun = fc.record({
  cpu: fc.nat(2),
  exits: fc.array(fc.constantFrom(...EXIT_REASONS), { minLength: 1, maxLength: 3 }),
  wake: fc.option(fc.nat(2), { nil: undefined }),
  preemptAt: fc.option(fc.nat(50), { nil: undefined }),
});

describe('the vCPU thread follows its runs (3 CPUs, fixed)', () => {
  test('KVM_RUN of one vCPU on any CPU, woken on any CPU after an HLT exit, preempted anywhere: every invariant holds, and the thread runs, on one CPU only, where the run ended, which is vcpu->cpu', () => {
    const config = kvmConfig({}, undefined, 3);
    const seen = { migrated: 0, woken: 0, preempted: 0 };
    fc.assert(
      fc.property(fc.array(migratingRun, { minLength: 1, maxLength: 5 }), (runs) => {
        // A task of its own for the blocked thread's CPU and the preemptions to switch to.
        const setup: Op[] = [...ONE_VCPU, { op: 'task_create' }];
        const ops: Op[] = [...setup, ...runs.map((r) => ({ ...run(r.cpu, 2, r.exits, r.preemptAt, 'switch'), ...(r.wake === undefined ? {} : { wake: r.wake }) }))];
        const wrong: string[] = [];
        let last = -1;
        const result = runOps(config, ops, {
          onStep: (sys, { op, outcome }, i) => {
            if (op.op !== 'kvm_run') return;
            const r = runs[i - setup.length];
            const vcpu = sys.kvm!.vcpus.get(2)!;
            // An HLT exit blocks the thread; woken on another CPU, it runs the rest of vcpu_run there.
            const end = r.exits.includes('hlt') && r.wake !== undefined ? r.wake : r.cpu;
            const on = sys.kernel.current.flatMap((t, cpu) => (t === vcpu.thread ? [cpu] : []));
            if (outcome.ret !== 0 || on.join() !== String(end) || vcpu.cpu !== end) wrong.push(`${formatOp(sys.g, op)} = ${outcome.ret}: the thread runs on [${on}], vcpu->cpu ${vcpu.cpu}, not cpu${end}`);
            if (last >= 0 && last !== r.cpu) seen.migrated++;
            if (end !== r.cpu) seen.woken++;
            if (sys.ghost.landed.some((l) => l.startsWith('vcpu_run@') && l.endsWith(':switch'))) seen.preempted++;
            last = end;
          },
        });
        expect(result.failure, JSON.stringify(result.failure?.violations)).toBeUndefined();
        expect(wrong).toEqual([]);
      }),
      { numRuns: 30, seed: 12 },
    );
    expect(Object.values(seen).every((n) => n > 0), JSON.stringify(seen)).toBe(true);
  });
});

describe('KVM_SET_USER_MEMORY_REGION (5.2 __kvm_set_memory_region, patch 26)', () => {
  const region = (slot: number, pages: number, gfn?: number): Op => ({ op: 'kvm_set_memory_region', vm: 1, slot, pages, ...(gfn === undefined ? {} : { gfn }) });
  const memslots0 = (sys: System) => kvVa(sys, sys.kvm!.vms.get(1)!.memslots[0]);
  /** The memslots array before and after `op`, its return value, and whether the next KVM_RUN remaps memslots[0]. */
  function change(op: Op) {
    const sys = boot([...ONE_VCPU, run(0, 2, ['cpuid'])]);
    const before = memslots0(sys);
    const ret = step(sys, op).ret;
    const after = memslots0(sys);
    step(sys, run(0, 2, ['cpuid']));
    return { ret, sameArray: after === before, remapped: sys.ghost.visited.includes('vcpu_run@asi_remap(memslots[0])'), slots: sys.kvm!.vms.get(1)!.slots.map((s) => `${s.slot}@${s.gfn}+${s.pages}`) };
  }

  test('KVM_MR_CREATE installs a new array and frees the old one; the next entry remaps it', () => {
    expect(change(region(1, 1))).toEqual({ ret: 0, sameArray: false, remapped: true, slots: ['0@0+2', '1@4+1'] });
  });

  test('KVM_MR_DELETE and KVM_MR_MOVE install the KVM_MEMSLOT_INVALID copy, then reuse the old array: the pointer patch 26 compares is unchanged, nothing is remapped', () => {
    expect(change(region(0, 0))).toEqual({ ret: 0, sameArray: true, remapped: false, slots: [] });
    expect(change(region(0, 2, 8))).toEqual({ ret: 0, sameArray: true, remapped: false, slots: ['0@8+2'] });
  });

  test('a slot cannot be resized (-EINVAL), nor overlap another (-EEXIST); the same slot again changes nothing', () => {
    expect(change(region(0, 3))).toMatchObject({ ret: -22, sameArray: true, slots: ['0@0+2'] });
    expect(change(region(1, 2, 1))).toMatchObject({ ret: -17, sameArray: true, slots: ['0@0+2'] });
    expect(change(region(0, 2, 0))).toMatchObject({ ret: 0, sameArray: true, slots: ['0@0+2'] });
  });

  test('every VM-exit after a change finds the slots it reads mapped or faults into asi_fault: no invariant is violated (fixed)', () => {
    runHolds(kvmConfig(), [...ONE_VCPU, run(0, 2, ['ept-violation']), region(0, 2, 8), run(1, 2, ['ept-violation']), region(1, 1), region(0, 0), run(0, 2, ['ept-violation', 'cpuid'])]);
  });
});

describe('KVM findings reproduce with their option off and not on fixed', () => {
  type Options = Partial<Parameters<typeof kvmConfig>[0]>;
  const cases: [string, Options, () => Op[], string, (o?: Options) => Config][] = [
    ['F30 vmx_vcpu_run: NMI between the HOST_CR3 read and vmx_isolation_barrier_begin', { kvmBarrierBeforeHostCr3: false }, () => nmiBeforeBarrier(kvmConfig({ kvmBarrierBeforeHostCr3: false })), 'KVM-EXIT-CR3', kvmConfig],
    // kvmFreeResetsRemap also forgets the removed bus, so that the NULL bus compares equal: off too.
    ['F31 vcpu_isolation_enter: bus->dev_count of a NULL bus', { kvmRemapChecksNullBus: false, kvmFreeResetsRemap: false }, () => NULL_BUS, 'KVM-ENTRY', kvmConfig],
    ['F32 vmx_isolation_init: the ASI leaks on a mapping error', { kvmInitDestroysAsi: false }, () => failInInit(38), 'KVM-USER', kvmConfig],
    ['F35 vcpu_isolation_enter: a new memslots array at a freed one\'s address is taken for it', { kvmFreeResetsRemap: false }, () => REUSED_MEMSLOTS, 'KVM-ENTRY', kvmConfig],
    // mapRefusesSharedSlabPages would refuse these maps (KVM_CREATE_VCPU, KVM_RUN fail): off too.
    ["F33 vmx_isolation_map_kvm_vmx_data (slab): asi_map of the kvm_lapic maps its kmalloc-512 page, another VM's lapic on it", { kvmMapsOwnPages: false, mapRefusesSharedSlabPages: false }, () => TWO_LAPICS, 'KVM-SCOPE', slabConfig],
    ['F34 asi_enter (slab): asi_map(current) maps the pages the task_struct straddles, a neighbour task_struct on them', { taskStructOwnPages: false, mapRefusesSharedSlabPages: false }, () => CURRENT_TASK, 'ISOLATION', slabConfig],
    ['F36 asi_map (slab): a kmalloc-64 object mapped, the next kmalloc-64 object (a secret) lands on its page', { mapRefusesSharedSlabPages: false }, slabNeighbour, 'ISOLATION', slabConfig],
    ["F37 vmx_isolation_map_kvm_data: asi_map_percpu of kvm->srcu.sda maps its dynamic percpu page, and the next VM's srcu_data lands on it", { kvmSrcuOwnPage: false }, () => TWO_SRCU, 'KVM-SCOPE', kvmConfig],
  ];
  for (const [name, options, ops, invariant, config] of cases) {
    test(name, () => {
      runFails(config(options), ops(), invariant);
      runHolds(config(), ops());
    });
  }

  test('mapRefusesSharedSlabPages alone keeps F33 and F34 out by refusing the maps: KVM_CREATE_VCPU and KVM_RUN fail, nothing is exposed', () => {
    const guardOnly = slabConfig({ kvmMapsOwnPages: false, taskStructOwnPages: false });
    runHolds(guardOnly, TWO_LAPICS);
    const sys = createSystem(guardOnly);
    expect(TWO_LAPICS.map((op) => step(sys, op).ret)).toEqual([1, -22, 3, -22]);
  });

  test('without slab caches (KernelConfig.slab off), kmalloc gives whole pages: F33 and F34 cannot happen', () => {
    const slabOff = (options: Options): Config => ({ ...kvmConfig({ ...options, mapRefusesSharedSlabPages: false }), kernel: { slab: false } });
    runHolds(slabOff({ kvmMapsOwnPages: false, taskStructOwnPages: false }), TWO_LAPICS);
    runHolds(slabOff({ kvmMapsOwnPages: false, taskStructOwnPages: false }), CURRENT_TASK);
  });
});

describe('memory as 5.2 lays it out: one kmalloc cache for every caller, memcg copies for accounted allocations', () => {
  const lapicPage = (sys: System, vcpu: number) => sys.mem.allocs.get(sys.kernel.kmallocs.get(sys.kvm!.vcpus.get(vcpu)!.apic)!.alloc)!;
  const posted = kvmConfig({ kvmMapsOwnPages: false, mapRefusesSharedSlabPages: false });

  test("a host kmalloc of the lapic's size after KVM_CREATE_VCPU (GFP_KERNEL, the root cache) lands on the lapic's kmalloc-512 page, inside the vCPU's ASI", () => {
    const ops: Op[] = [{ op: 'kvm_create_vm' }, { op: 'kvm_create_vcpu', vm: 1 }, { op: 'kmalloc', size: 0x190, sensitive: true }];
    const r = runFails(posted, ops, 'ISOLATION');
    expect(r.failure!.step).toBe(2);
    const message = r.failure!.violations.find((v) => v.invariant === 'ISOLATION')!.message;
    expect(message).toMatch(/asi#1 exposes kmalloc-512 slab:kmalloc \(pfn \d+\)/);
    expect(message).toContain('a new object was allocated on it since');
    runHolds(kvmConfig(), ops);
  });

  test("each VMM in a memcg of its own: the first vCPU's lapic, allocated before the memcg's copy of kmalloc-512 exists, still lands in the root cache beside the other VM's", () => {
    const sys = boot([{ op: 'kvm_create_vm', memcg: 1 }, { op: 'kvm_create_vcpu', vm: 1 }, { op: 'kvm_create_vm', memcg: 2 }, { op: 'kvm_create_vcpu', vm: 3 }], posted);
    expect(lapicPage(sys, 2).slab!.cache).toBe('kmalloc-512');
    expect(lapicPage(sys, 4).id).toBe(lapicPage(sys, 2).id);
    expect([...sys.kernel.caches.keys()]).toEqual(expect.arrayContaining(['kmalloc-512(memcg 1)', 'kmalloc-512(memcg 2)']));
  });

  test("once the memcgs' copies exist, two VMMs in memcgs of their own share no kmalloc-512 page; two in one memcg do", () => {
    const ops = (a: number, b: number): Op[] => [
      { op: 'kvm_create_vm', memcg: a },
      { op: 'kvm_create_vcpu', vm: 1 },
      { op: 'kvm_create_vcpu', vm: 1 },
      { op: 'kvm_create_vm', memcg: b },
      { op: 'kvm_create_vcpu', vm: 4 },
      { op: 'kvm_create_vcpu', vm: 4 },
    ];
    const apart = boot(ops(1, 2), posted);
    expect([lapicPage(apart, 3).slab!.cache, lapicPage(apart, 6).slab!.cache]).toEqual(['kmalloc-512(memcg 1)', 'kmalloc-512(memcg 2)']);
    expect(lapicPage(apart, 6).id).not.toBe(lapicPage(apart, 3).id);
    const shared = boot(ops(1, 1), posted);
    expect(lapicPage(shared, 6).id).toBe(lapicPage(shared, 3).id);
    runFails(posted, ops(1, 1), 'KVM-SCOPE');
  });

  test('cgroup.memory=nokmem: every accounted allocation comes from the root caches', () => {
    const sys = boot([{ op: 'kvm_create_vm', memcg: 1 }, { op: 'kvm_create_vcpu', vm: 1 }, { op: 'kvm_create_vcpu', vm: 1 }], { ...posted, kernel: { kmemcg: false } });
    expect([...sys.kernel.caches.keys()].filter((k) => k.includes('memcg'))).toEqual([]);
  });
});
