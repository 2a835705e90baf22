// Each way the checker could once be fooled (issue 9), as a specification: the blind spot is now
// seen on a real model state, and the design option that closes it makes the same ops pass.

import { describe, expect, test } from 'vitest';
import { runOps } from '../src/check/run.ts';
import { violates } from '../src/check/shrink.ts';
import { DIRECTED, directedConfig, scenarioOps } from '../src/check/findings.ts';
import { withFixes } from '../src/check/triage.ts';
import type { Op } from '../src/model/ops.ts';
import type { Config } from '../src/model/system.ts';

describe('directed findings: each is caught where it is made, and its own fix makes the same ops pass', () => {
  for (const d of DIRECTED) {
    test(`${d.expect} catches: ${d.title} (fixed by ${d.fix})`, () => {
      const open = directedConfig(d);
      const ops = scenarioOps(open, d.scenario);
      expect(violates(open, ops, d.expect), `${d.expect} fires`).toBe(true);
      expect(violates(withFixes(open, [d.fix]), ops, d.expect), `${d.fix} alone stops it`).toBe(false);
    });
  }
  test('ISOLATION says the exposed object is one no range reached when it was mapped (ghost state, not the state now)', () => {
    const d = DIRECTED.find((x) => x.fix === 'mapRequiresLiveMemory')!;
    const open = directedConfig(d);
    expect(runOps(open, scenarioOps(open, d.scenario)).failure!.violations[0].message).toContain('no range of it reached when it was mapped');
  });
});

describe('invariants that hold inside an op are judged at every micro-step', () => {
  // The late asi_map runs on the ASI page table (apiLeavesIsolation would end the session first and
  // leave the stack mapped for all to see). The IRQ at asi_enter's start leaves a Global TLB entry
  // for the stack: the asi_map's fault on struct asi can then be taken, and its abort ends the
  // session, so nothing shows between ops (without the IRQ, the fault's entry cannot reach the
  // stack and the CPU double faults).
  const config: Config = { geometry: 'small', cpus: 2, profile: 'fixed', options: { apiLeavesIsolation: false }, mutant: 'stack-mapped-after-cr3' };
  const ops: Op[] = [
    { op: 'asi_create', flags: 0 },
    { op: 'asi_enter', cpu: 0, asi: 1, intr: [{ at: 0, kind: 'irq' }] },
  ];
  test('a stack mapped only after load_cr3 is caught at the micro-step where the CPU is isolated without it', () => {
    const r = runOps(config, ops);
    expect(r.failure?.violations.map((v) => v.invariant)).toContain('STACK');
    expect(r.failure!.where).toBe('asi_enter@load_cr3(asi->pgd)');
  });
  test('the same ops look correct when only the state between ops is judged', () => {
    expect(runOps(config, ops, { microSteps: false }).failure).toBeUndefined();
  });
});
