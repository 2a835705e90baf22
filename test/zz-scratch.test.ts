import { test } from 'vitest';
import { createSystem, step } from '../src/model/step.ts';
import { busyRun, kvmConfig } from './kvm-scenarios.ts';
test('coverage', () => {
  const c = kvmConfig();
  const sys = createSystem(c);
  const landed = new Map<string, Set<string>>();
  const held = new Map<string, Set<string>>();
  const points = new Set<string>();
  for (const op of busyRun(c)) {
    step(sys, op);
    for (const v of sys.ghost.visited) if (v.startsWith('vcpu_run@')) points.add(v);
    for (const l of sys.ghost.landed) { const i = l.lastIndexOf(':'); const p = l.slice(0, i); if (!p.startsWith('vcpu_run@')) continue; if (!landed.has(p)) landed.set(p, new Set()); landed.get(p)!.add(l.slice(i + 1)); }
    for (const l of sys.ghost.heldOff) { const i = l.lastIndexOf(':'); const p = l.slice(0, i); if (!p.startsWith('vcpu_run@')) continue; if (!held.has(p)) held.set(p, new Set()); held.get(p)!.add(l.slice(i + 1)); }
  }
  for (const p of points) console.log(p.padEnd(60), 'landed:', [...(landed.get(p) ?? [])].join(','), ' held off:', [...(held.get(p) ?? [])].join(','));
});
