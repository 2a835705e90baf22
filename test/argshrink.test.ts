// Shrinking beyond ddmin. Argument shrinking: simpler values are strictly simpler (so it ends), a
// shrunk list still violates the same invariant, and fuzz findings do get simpler arguments. And
// memory exhaustion replaced by fault injection: a violation that needs one allocation to fail
// shrinks to a fail_alloc and the op it fails, not to the dozen allocations that used memory up.

import { describe, expect } from 'vitest';
import { fc, test } from '@fast-check/vitest';
import { shrinkArgs, simplerValues } from '../src/check/argshrink.ts';
import { type RunResult, runOps } from '../src/check/run.ts';
import { createSystem, step } from '../src/model/step.ts';
import { ENOMEM } from '../src/model/mm/kernel.ts';
import { runSeededWalk, walkSeed } from '../src/check/seeded.ts';
import { ddmin, violates } from '../src/check/shrink.ts';
import { MUTANT_INFO, type MutantName } from '../src/model/mutants.ts';
import { PAGE_SIZE } from '../src/model/mm/geometry.ts';
import type { Op } from '../src/model/ops.ts';
import type { Config } from '../src/model/system.ts';
import { configFromFlags } from '../src/commands/usage.ts';
import { rungConfig } from '../src/check/findings.ts';
import { shrinkOps } from '../src/check/minimize.ts';
import { WALK_WEIGHTS } from '../src/generators/choose.ts';

const bits = (v: number) => v.toString(2).replaceAll('0', '').length;

/** Violating walks of a config, ddmin-shrunk: the input arg shrinking gets in a fuzz worker. */
function failures(config: Config, count: number): { ops: Op[]; invariant: string }[] {
  const out: { ops: Op[]; invariant: string }[] = [];
  for (let i = 0; out.length < count && i < 200; i++) {
    const res = runSeededWalk(config, walkSeed('argshrink', 1, 0, i), 20);
    if (!res.failure) continue;
    const invariant = res.failure.violations[0].invariant;
    out.push({ ops: ddmin(config, res.ops, invariant), invariant });
  }
  return out;
}

// The posted code and a few mutants: violations of several invariants, cheap to find.
const configs = [
  configFromFlags({ profile: 'rfc-v2', geometry: 'small', cpus: 2 }),
  ...(Object.keys(MUTANT_INFO) as MutantName[]).slice(0, 4).map((mutant) => configFromFlags({ profile: 'fixed', mutant, geometry: 'small', cpus: 2 })),
];

describe('simplerValues', () => {
  test.prop([fc.maxSafeNat()])('every candidate is below the value, no less aligned, with no more set bits', (v) => {
    for (const c of simplerValues(v)) {
      expect(c).toBeLessThan(v);
      if (v % PAGE_SIZE === 0) expect(c % PAGE_SIZE).toBe(0);
      if (v % PAGE_SIZE === 0 || c % PAGE_SIZE !== 0) expect(bits(c)).toBeLessThanOrEqual(bits(v));
    }
  });

  test('tries 0, single flag bits and page alignment', () => {
    expect(simplerValues(0)).toEqual([]);
    expect(simplerValues(0b10110)).toEqual(expect.arrayContaining([0, 0b10, 0b100, 0b10000, 0b10100, 0b110]));
    expect(simplerValues(PAGE_SIZE * 5 + 7)).toContain(PAGE_SIZE * 5);
    expect(simplerValues(2 * PAGE_SIZE)).not.toContain(PAGE_SIZE + 1);
  });
});

describe('shrinkArgs', () => {
  const found = configs.flatMap((config) => failures(config, 1).map((f) => ({ config, ...f })));

  test('the corpus of violations to shrink is not empty', () => {
    expect(found.length).toBe(configs.length);
  });

  test('never changes the invariant: the shrunk list still violates the same one', () => {
    for (const { config, ops, invariant } of found) {
      const r = shrinkArgs(config, ops, invariant);
      expect(r.ops).toHaveLength(ops.length);
      expect(runOps(config, r.ops, { stopOn: invariant }).failure?.violations.map((v) => v.invariant)).toContain(invariant);
      expect(r.ops.map((o) => o.op)).toEqual(ops.map((o) => o.op));
    }
  });

  test('simplifies arguments and counts them', () => {
    const results = found.map(({ config, ops, invariant }) => ({ ops, r: shrinkArgs(config, ops, invariant) }));
    expect(results.some(({ r }) => r.simplified > 0)).toBe(true);
    for (const { ops, r } of results) {
      const changed = r.ops.flatMap((op, i) => Object.entries(op).filter(([k, v]) => v !== (ops[i] as Record<string, unknown>)[k]));
      expect(changed).toHaveLength(r.simplified);
    }
  });

  test('stops within its budget', () => {
    const { config, ops, invariant } = found[0];
    expect(shrinkArgs(config, ops, invariant, 3).tries).toBeLessThanOrEqual(3);
    expect(violates(config, shrinkArgs(config, ops, invariant, 3).ops, invariant)).toBe(true);
  });
});

describe('event shrinking', () => {
  test('an event the violation does not need is dropped, and a touched address too (F17: an NMI inside asi_start_abort)', () => {
    const config = rungConfig(16);
    const extra: Op[] = [
      { op: 'asi_create', flags: 0 },
      { op: 'asi_enter', cpu: 1, asi: 1, intr: [] },
      { op: 'asi_enter', cpu: 1, asi: 1, intr: [{ at: 4, kind: 'irq', va: 0x228000, nested: [{ at: 4, kind: 'nmi' }] }, { at: 5, kind: 'switch' }] },
    ];
    expect(violates(config, extra, 'SESSION')).toBe(true);
    const { ops } = shrinkArgs(config, extra, 'SESSION');
    expect(ops[2]).toEqual({ op: 'asi_enter', cpu: 1, asi: 1, intr: [{ at: 4, kind: 'irq', nested: [{ at: 4, kind: 'nmi' }] }] });
    expect(violates(config, ops, 'SESSION')).toBe(true);
  });
});

/** What op `index` of `ops` returns, run from boot. */
function retOf(config: Config, ops: readonly Op[], index: number): number {
  const sys = createSystem(config);
  for (const op of ops.slice(0, index)) step(sys, op);
  return step(sys, ops[index]).ret;
}

describe('memory exhaustion', () => {
  test('a violation that needs one allocation to fail, found by exhausting memory, shrinks to a fail_alloc and a few ops (rollback-forgets-tables)', () => {
    // The error path of asi_map_range is the mutant's: only a failed map shows it. Without
    // fail_alloc in the op mix, a walk fails an allocation by running memory out.
    const config = configFromFlags({ profile: 'fixed', mutant: 'rollback-forgets-tables', geometry: 'small', cpus: 2 });
    const weights = { ...WALK_WEIGHTS, fail_alloc: 0 };
    // The first walk whose violating op is a map that memory ran out under (other error paths of
    // asi_map_range, an -EBUSY overwrite, show the mutant too, with no allocation to fail).
    const ranOut = (w: RunResult) => w.failure !== undefined && retOf(config, w.ops, w.failure.step) === ENOMEM;
    // 120-op walks: the small geometry's 512 frames outlast most 60-op ones (and every one of the
    // first 100 100-op walks); a longer walk costs more to shrink.
    let walk = runSeededWalk(config, walkSeed('exhaust', 1, 0, 0), 120, weights);
    for (let i = 1; !ranOut(walk) && i < 100; i++) walk = runSeededWalk(config, walkSeed('exhaust', 1, 0, i), 120, weights);
    expect(ranOut(walk), 'a walk that ran memory out').toBe(true);
    expect(walk.ops.some((op) => op.op === 'fail_alloc')).toBe(false);
    const invariant = walk.failure!.violations[0].invariant;
    const { ops } = shrinkOps(config, walk.ops, invariant);
    expect(ops.length, ops.map((op) => op.op).join(', ')).toBeLessThanOrEqual(6);
    expect(ops.filter((op) => op.op === 'fail_alloc')).toHaveLength(1);
    expect(violates(config, ops, invariant)).toBe(true);
  });
});
