// The `fixed` profile violates no invariant over random operation sequences; a failure is shrunk
// and saved to a temporary folder (printed), to be committed to counterexamples/ on purpose.

import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { choicesArb } from '../src/generators/arbitraries.ts';
import { runChoices, traceLines } from '../src/check/run.ts';
import { KVM_WEIGHTS, type Weights } from '../src/generators/choose.ts';
import { ddmin } from '../src/check/shrink.ts';
import { makeCounterexample, saveCounterexample } from '../src/check/counterexample.ts';
import type { Config } from '../src/model/system.ts';


function propertyHolds(config: Config, numRuns: number, seed: number, maxLength: number, weights?: Weights): void {
  const result = fc.check(fc.property(choicesArb(maxLength), (choices) => runChoices(config, choices, weights).failure === undefined), { numRuns, seed });
  if (!result.failed) return;
  const run = runChoices(config, result.counterexample![0], weights);
  const v = run.failure!.violations[0];
  const ops = ddmin(config, run.ops, v.invariant);
  const path = saveCounterexample(mkdtempSync(join(tmpdir(), 'asi-check-fixed-')), makeCounterexample(config, ops, v.invariant, v.message, `fixed profile: ${v.invariant}`, { by: 'npm test', seed, path: result.counterexamplePath ?? '' }));
  expect.fail(`${v.invariant}: ${v.message}\nsaved ${path}\n${traceLines(config, ops).join('\n')}`);
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
  test('violates no invariant (real x86-64 geometry)', () => {
    propertyHolds({ geometry: 'real', cpus: 2, profile: 'fixed' }, 12, 3, 20);
  });
});
