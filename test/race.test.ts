// Two CPUs in kernel code at once (issue 20): a racing op runs at a point of another CPU's op in
// flight, waits where the kernel would make it wait, replays exactly, and shrinks to fewer switches.

import { describe, expect, test } from 'vitest';
import { runOps, traceLines } from '../src/check/run.ts';
import { runSeededWalk } from '../src/check/seeded.ts';
import { shrinkOps, unrace } from '../src/check/minimize.ts';
import type { Op } from '../src/model/ops.ts';
import { createSystem, step } from '../src/model/step.ts';
import type { Config } from '../src/model/system.ts';
import { EBUSY } from '../src/model/mm/kernel.ts';
import { ASI_SESSION_STATE_ACTIVE, ASI_SESSION_STATE_INACTIVE } from '../src/model/x86/cpu.ts';
import { ONE_VCPU, kvmConfig, racedBus, run } from './kvm-scenarios.ts';

const POSTED: Config = { geometry: 'small', cpus: 2, profile: 'rfc-v2' };

function lastLog(config: Config, ops: readonly Op[]): string[] {
  const sys = createSystem(config);
  for (const op of ops.slice(0, -1)) step(sys, op);
  return step(sys, ops[ops.length - 1]).log.map((e) => e.text);
}

describe('a racing op', () => {
  // rfc-v2 follows patch 25 in 5.2's vcpu_enter_guest, where the read section ends first:
  //     srcu_read_unlock(&vcpu->kvm->srcu, vcpu->srcu_idx);  ...  vcpu_isolation_enter(vcpu);
  // and patch 26's vcpu_isolation_enter then reads the bus and its dev_count:
  //     bus = kvm->buses[i]; ... asi_remap(vcpu->asi, &vcpu->asi_buses[i], bus, sizeof(*bus) + bus->dev_count * sizeof(struct kvm_io_range));
  test('runs at the point its race names, and the same ops give the same trace every time', () => {
    const ops = racedBus(POSTED);
    const log = lastLog(POSTED, ops);
    expect(log.some((l) => l.endsWith('runs at vcpu_run@vcpu_isolation_enter reads kvm->buses[1]'))).toBe(true);
    expect(traceLines(POSTED, ops)).toEqual(traceLines(POSTED, ops));
    expect(runOps(POSTED, ops, { stopOn: 'NO-UAF' }).failure?.violations.find((v) => v.invariant === 'NO-UAF')?.message).toContain('freed on cpu1');
  });

  test('that would free what a vCPU reads inside its SRCU read section waits for the section to end (kvmIsolationEnterInSrcu)', () => {
    const fixed = kvmConfig();
    const ops = racedBus(POSTED);
    const log = lastLog(fixed, ops);
    expect(log.some((l) => l.includes("waits at vcpu_run@vcpu_isolation_enter reads kvm->buses[1]: synchronize_srcu_expedited(&kvm->srcu) in kvm_io_bus_unregister_dev waits for vCPU 2's read section on cpu0"))).toBe(true);
    expect(log.some((l) => /runs at vcpu_run@(?!vcpu_isolation_enter)/.test(l))).toBe(true);
    expect(runOps(fixed, ops).failure).toBeUndefined();
  });

  test('on the CPU of the op in flight, or of a vCPU in KVM_RUN there, runs after that op returns', () => {
    const fixed = kvmConfig();
    const ops: Op[] = [...ONE_VCPU, { ...run(0, 2, ['cpuid']), race: { at: 2, op: run(1, 2, ['cpuid']) } }];
    const log = lastLog(fixed, ops);
    expect(log.some((l) => l.includes('vcpu->mutex: vCPU 2 is in KVM_RUN on cpu0'))).toBe(true);
    expect(log.some((l) => l.endsWith('runs after the op in flight returned'))).toBe(true);
  });
});

describe('asi_destroy racing a CPU in asi_enter or asi_exit (F41)', () => {
  const NO_REFCOUNT: Config = { geometry: 'small', cpus: 2, profile: 'fixed', options: { asiUsersRefcount: false } };
  const FIXED: Config = { geometry: 'small', cpus: 2, profile: 'fixed' };
  const setup: Op[] = [{ op: 'asi_create', flags: 0 }, { op: 'asi_enter', cpu: 1, asi: 1, intr: [] }];
  /** cpu1's asi_exit, with cpu0's asi_destroy at the first point after asi_session->asi = NULL. */
  const exitRaced = (): Op => {
    for (let at = 0; at < 16; at++) {
      const op: Op = { op: 'asi_exit', cpu: 1, asi: 1, intr: [], race: { at, op: { op: 'asi_destroy', asi: 1 }, on: 0 } };
      if (lastLog(NO_REFCOUNT, [...setup, op]).some((l) => l.endsWith('runs at asi_exit@asi_session->asi = NULL'))) return op;
    }
    throw new Error('no point after asi_session->asi = NULL');
  };

  test("without a reference count, the destroy finds no session and frees the ASI asi_exit still unmaps from (destroyChecksSessions' check races)", () => {
    const ops = [...setup, exitRaced()];
    expect(runOps(NO_REFCOUNT, ops, { stopOn: 'SESSION' }).failure?.violations.find((v) => v.invariant === 'SESSION')?.message).toContain('which no longer exists');
  });

  test('with asiUsersRefcount, asi_destroy is refused (-EBUSY) at every point of asi_enter and asi_exit, and nothing is violated', () => {
    for (const host of ['asi_enter', 'asi_exit'] as const) {
      const base = host === 'asi_enter' ? setup.slice(0, 1) : setup;
      for (let at = 0; at < 16; at++) {
        const ops: Op[] = [...base, { op: host, cpu: 1, asi: 1, intr: [], race: { at, op: { op: 'asi_destroy', asi: 1 }, on: 0 } }];
        const log = lastLog(FIXED, ops);
        const ran = log.find((l) => l.startsWith('cpu0: asi_destroy asi#1 = '))!;
        // Before asi_enter's first statement the destroy wins and asi_enter finds no ASI (-EINVAL);
        // once asi_exit has returned, nothing uses it. In between, and after asi_enter, the ASI is in use.
        const returned = log.some((l) => l.endsWith('runs at asi_exit@return') || l.endsWith('runs after the op in flight returned'));
        const free = host === 'asi_enter' ? at === 0 : returned;
        expect(ran.endsWith(free ? '= 0' : '-EBUSY'), `${host} at ${at}: ${ran}`).toBe(true);
        expect(runOps(FIXED, ops).failure, `${host} at ${at}`).toBeUndefined();
      }
    }
  });
});

describe('asi_enter racing asi_enter or asi_exit on another CPU (asiEnterExclusive)', () => {
  const FIXED: Config = { geometry: 'small', cpus: 2, profile: 'fixed' };
  const inAsi = (sys: ReturnType<typeof createSystem>) => sys.cpus.filter((c) => c.session.asi === 1).map((c) => c.id);

  test("at every point of one CPU's asi_enter or asi_exit, the other's asi_enter either claims the ASI first or is refused (-EBUSY) until the first has left: never two CPUs in the ASI", () => {
    for (const host of ['asi_enter', 'asi_exit'] as const) {
      const base: Op[] = host === 'asi_enter' ? [{ op: 'asi_create', flags: 0 }] : [{ op: 'asi_create', flags: 0 }, { op: 'asi_enter', cpu: 1, asi: 1, intr: [] }];
      for (let at = 0; at < 16; at++) {
        const ops: Op[] = [...base, { op: host, cpu: 1, asi: 1, intr: [], race: { at, op: { op: 'asi_enter', cpu: 0, asi: 1, intr: [] } } }];
        const sys = createSystem(FIXED);
        for (const op of ops.slice(0, -1)) step(sys, op);
        const outcome = step(sys, ops[ops.length - 1]);
        const log = outcome.log.map((e) => e.text);
        const ret = log.find((l) => l.startsWith('cpu0: asi_enter asi#1 = '))!;
        if (host === 'asi_enter') {
          // Whichever claims asi#1 first enters; the other is refused.
          expect([outcome.ret, ret.endsWith('= 0') ? 0 : EBUSY].sort(), `${host} at ${at}: ${ret}`).toEqual([EBUSY, 0].sort());
        } else {
          // Until cpu1's asi_exit has unmapped its stack, asi#1 is cpu1's: a flush there needs no IPI.
          const left = log.some((l) => l.endsWith('runs at asi_exit@return') || l.endsWith('runs after the op in flight returned'));
          expect(ret.endsWith(left ? '= 0' : '-EBUSY'), `${host} at ${at}: ${ret}`).toBe(true);
        }
        expect(inAsi(sys).length, `${host} at ${at}`).toBeLessThanOrEqual(1);
        expect(runOps(FIXED, ops).failure, `${host} at ${at}`).toBeUndefined();
      }
    }
  });
});

describe('an ASI API call made on a CPU runs through that CPU\'s CR3', () => {
  const enter: Op[] = [
    { op: 'asi_create', flags: 0 },
    { op: 'asi_enter', cpu: 0, asi: 1, intr: [] },
  ];
  const mapOnCpu0: Op = { op: 'asi_map_percpu', asi: 1, var: 'cpu_hw_events', on: 0, caller: 1 };
  const withOptions = (options: Config['options']): Config => ({ geometry: 'small', cpus: 2, profile: 'fixed', ...(options ? { options } : {}) });

  test('on an isolated CPU, as posted: its first read of struct asi faults, asi_fault has it retried without isolation, and the call goes on', () => {
    const config = withOptions({ apiLeavesIsolation: false });
    const sys = createSystem(config);
    for (const op of enter) step(sys, op);
    const { ret, log } = step(sys, mapOnCpu0);
    expect(ret).toBe(0);
    expect(log.map((e) => e.text)).toContain('ASI 1: PF on cpu0 (retried without isolation)');
    expect(sys.cpus[0].session.state).toBe(ASI_SESSION_STATE_INACTIVE);
    expect(runOps(config, [...enter, mapOnCpu0]).failure).toBeUndefined();
  });

  test('fixed (apiLeavesIsolation): the call ends the session first and takes no fault', () => {
    const sys = createSystem(withOptions(undefined));
    for (const op of enter) step(sys, op);
    const { ret, log } = step(sys, mapOnCpu0);
    expect(ret).toBe(0);
    expect(log.some((e) => e.text.includes('PF on'))).toBe(false);
    expect(sys.cpus[0].session.state).toBe(ASI_SESSION_STATE_INACTIVE);
  });

  test("its events land at its own points: an IRQ is held off while asi->lock is held, an NMI is not; a handler's ASI code is no point of the call", () => {
    const sys = createSystem(withOptions(undefined));
    step(sys, enter[0]);
    const intr = [1, 2].flatMap((at) => [{ at, kind: 'irq' as const }, { at, kind: 'nmi' as const }]);
    const log = step(sys, { ...mapOnCpu0, intr }).log.map((e) => e.text);
    expect(log).toContain('cpu0: irq at asi_map_percpu@spin_lock_irqsave(&asi->lock) held off: IRQs are off');
    expect(log.filter((l) => /^cpu0: (irq|nmi) at asi_map_percpu@/.test(l))).toEqual([
      'cpu0: irq at asi_map_percpu@spin_lock_irqsave(&asi->lock) held off: IRQs are off',
      'cpu0: nmi at asi_map_percpu@spin_lock_irqsave(&asi->lock) (cr3 kernel/pcid1)',
      'cpu0: irq at asi_map_percpu@spin_unlock_irqrestore(&asi->lock) (cr3 kernel/pcid1)',
      'cpu0: nmi at asi_map_percpu@spin_unlock_irqrestore(&asi->lock) (cr3 kernel/pcid1)',
    ]);
  });

  test('in process context, or on a CPU that is not isolated, nothing faults and no session changes', () => {
    for (const call of [{ ...mapOnCpu0, on: 1 }, { op: 'asi_map_percpu', asi: 1, var: 'cpu_hw_events', caller: 1 } as Op]) {
      const sys = createSystem(withOptions({ apiLeavesIsolation: false }));
      for (const op of enter) step(sys, op);
      expect(step(sys, call).log.some((e) => e.text.includes('PF on'))).toBe(false);
      expect(sys.cpus[0].session.state).toBe(ASI_SESSION_STATE_ACTIVE);
    }
  });
});

describe('shrinking races', () => {
  test('a race the violation does not need becomes its two ops one after the other', () => {
    const raced: Op = { ...run(0, 2, ['cpuid']), race: { at: 1, on: 1, op: { op: 'kmalloc', size: 8, sensitive: false } } };
    expect(unrace([raced], (c) => c.length > 0)).toEqual([run(0, 2, ['cpuid']), { op: 'kmalloc', size: 8, sensitive: false }]);
  });

  test('the NO-UAF race keeps its race and loses every op it does not need', () => {
    const ops = racedBus(POSTED);
    const shrunk = shrinkOps(POSTED, ops, 'NO-UAF').ops;
    expect(shrunk.length).toBeLessThanOrEqual(ops.length);
    expect(shrunk.some((op) => 'race' in op && op.race !== undefined)).toBe(true);
    expect(runOps(POSTED, shrunk, { stopOn: 'NO-UAF' }).failure).toBeDefined();
  });
});

test('seeded walks with two CPUs carry races and replay the same ops from their seed', () => {
  const config: Config = { geometry: 'small', cpus: 2, profile: 'fixed' };
  const seeds = Array.from({ length: 6 }, (_, i) => `race/${i}`);
  const walks = seeds.map((s) => runSeededWalk(config, s).ops);
  expect(walks.flat().some((op) => 'race' in op && op.race !== undefined)).toBe(true);
  expect(seeds.map((s) => runSeededWalk(config, s).ops)).toEqual(walks);
});
