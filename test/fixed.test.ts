// The `fixed` profile violates no invariant over random operation sequences, and those sequences
// isolated something (a vacuity gate, as fuzz has); a failure is shrunk and saved to a temporary
// folder (printed), to be committed to counterexamples/ on purpose.

import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { choicesArb } from '../src/generators/arbitraries.ts';
import { type StepRecord, runChoices, traceLines } from '../src/check/run.ts';
import { countOutcome } from '../src/check/fuzz/walker.ts';
import { vacuousOps } from '../src/check/fuzz/progress.ts';
import type { Coverage } from '../src/check/fuzz/protocol.ts';
import { KVM_WEIGHTS, WALK_WEIGHTS, type Weights } from '../src/generators/choose.ts';
import { ddmin } from '../src/check/shrink.ts';
import { makeCounterexample, saveCounterexample } from '../src/check/counterexample.ts';
import { type Config, type System, designOf } from '../src/model/system.ts';
import { ISOLATED_ENTRY, exitOutcomes } from './kvm-scenarios.ts';


/**
 * fast-check runs of `config` violate no invariant; and the runs did what makes that mean something,
 * as `fuzz` exits 4 without it: asi_create, asi_map (2019 design) and asi_enter each succeeded, and with KVM's ops
 * in the mix a KVM_RUN entered its guest isolated.
 */
function propertyHolds(config: Config, numRuns: number, seed: number, maxLength: number, weights?: Weights): void {
  const coverage: Coverage = {};
  let isolatedEntries = 0;
  const onStep = (_: System, rec: StepRecord) => {
    countOutcome(coverage, rec);
    isolatedEntries += exitOutcomes(rec.outcome.log).filter((o) => ISOLATED_ENTRY.includes(o)).length;
  };
  const result = fc.check(fc.property(choicesArb(maxLength), (choices) => runChoices(config, choices, weights, { onStep }).failure === undefined), { numRuns, seed });
  if (result.failed) {
    const run = runChoices(config, result.counterexample![0], weights);
    const v = run.failure!.violations[0];
    const ops = ddmin(config, run.ops, v.invariant);
    const path = saveCounterexample(mkdtempSync(join(tmpdir(), 'asi-check-fixed-')), makeCounterexample(config, ops, v.invariant, v.message, `fixed profile: ${v.invariant}`, { by: 'npm test', seed, path: result.counterexamplePath ?? '' }));
    expect.fail(`${v.invariant}: ${v.message}\nsaved ${path}\n${traceLines(config, ops).join('\n')}`);
  }
  const design = designOf(config);
  // The 2025 design has no KVM ops yet (ASI25_OPS): the walks' KVM weight goes unused there.
  const vacuous = [...vacuousOps(coverage, design), ...(weights?.kvm_run && design === 'asi-2019' && isolatedEntries === 0 ? ['KVM_RUN entering its guest isolated'] : [])];
  expect(vacuous, 'never succeeded: a clean run that isolated nothing proves nothing').toEqual([]);
}

describe('the fixed profile', () => {
  test('violates no invariant (small geometry, 2 CPUs)', () => {
    propertyHolds({ geometry: 'small', cpus: 2, profile: 'fixed' }, 400, 1, 30);
  });
  test('violates no invariant (small geometry, 1 CPU, refuse overlaps)', () => {
    propertyHolds({ geometry: 'small', cpus: 1, profile: 'fixed', options: { overlapPolicy: 'refuse' } }, 150, 2, 30);
  });
  test('the v3 design with its two fixes violates no invariant (interrupts resume isolation)', () => {
    propertyHolds({ geometry: 'small', cpus: 2, profile: 'v3', options: { resumeFlushesGlobal: true, exitDeactivatesFirst: true } }, 200, 4, 30);
  });
  test('violates no invariant (small geometry, 3 CPUs)', () => {
    propertyHolds({ geometry: 'small', cpus: 3, profile: 'fixed' }, 100, 5, 30);
  });
  test('violates no invariant (small geometry, 4 CPUs)', () => {
    propertyHolds({ geometry: 'small', cpus: 4, profile: 'fixed' }, 100, 6, 30);
  });
  test("violates no invariant with KVM's ops: VMs, vCPUs, memslots, buses, KVM_RUN (small geometry, 2 CPUs)", () => {
    propertyHolds({ geometry: 'small', cpus: 2, profile: 'fixed' }, 150, 7, 30, KVM_WEIGHTS);
  });
  // The real geometry and the slab kernel cost more a step: their runs are short, so they resolve
  // their choices as fuzz walks do (WALK_WEIGHTS: an op on an object that does not exist makes one
  // first), or they would spend them on -EINVAL and never isolate anything.
  test('violates no invariant (real x86-64 geometry)', () => {
    propertyHolds({ geometry: 'real', cpus: 2, profile: 'fixed' }, 30, 3, 30, WALK_WEIGHTS);
  });
  test('violates no invariant with slab caches: objects share slab pages (small geometry)', () => {
    propertyHolds({ geometry: 'small', cpus: 2, profile: 'fixed', kernel: { slab: true } }, 150, 8, 30, WALK_WEIGHTS);
  });
  test('violates no invariant with slab caches: objects share slab pages (real x86-64 geometry)', () => {
    propertyHolds({ geometry: 'real', cpus: 2, profile: 'fixed', kernel: { slab: true } }, 30, 9, 30, WALK_WEIGHTS);
  });
});

describe('the asi25-fixed profile (the 2025 design with its fixes)', () => {
  test('violates no invariant (small geometry, 2 CPUs)', () => {
    propertyHolds({ geometry: 'small', cpus: 2, profile: 'asi25-fixed' }, 300, 11, 30, WALK_WEIGHTS);
  });
  test('violates no invariant (small geometry, 4 CPUs)', () => {
    propertyHolds({ geometry: 'small', cpus: 4, profile: 'asi25-fixed' }, 150, 12, 30, WALK_WEIGHTS);
  });
  test('violates no invariant (real x86-64 geometry)', () => {
    propertyHolds({ geometry: 'real', cpus: 2, profile: 'asi25-fixed' }, 30, 13, 30, WALK_WEIGHTS);
  });
  test('with the September direct map (asi25-dm-fixed), violates no invariant (small geometry, 2 CPUs)', () => {
    propertyHolds({ geometry: 'small', cpus: 2, profile: 'asi25-dm-fixed' }, 150, 14, 30, WALK_WEIGHTS);
  });
});
