// `asi-check mutants` as a user runs it (through main(), in this process: test/cli-run.ts): each
// mutant asked for is killed with a shrunk counterexample that reproduces, and exit status 0 when
// none survives (bad usage is in cli-bad-inputs.test.ts). A sample here, one mutant of each layer
// (page tables, CPU, KVM): fast-check's kill matrix (test/mutant-kill.ts) kills every other mutant
// in `npm test` and the 2019 KVM ones in `npm run test:nightly`, and the nightly's `mutants` job
// runs every mutant through this command.

import { describe, expect, test } from 'vitest';
import { runOps } from '../src/check/run.ts';
import { MUTANT_INFO } from '../src/model/mutants.ts';
import type { Op } from '../src/model/ops.ts';
import { configFromFlags } from '../src/commands/usage.ts';
import { runMain } from './cli-run.ts';

interface Row {
  mutant: keyof typeof MUTANT_INFO;
  killedBy: string | null;
  walks: number;
  seconds: number | null;
  shrunkLength: number | null;
  ops?: Op[];
}

describe.concurrent('asi-check mutants', () => {
  test('each mutant asked for (--only, in catalogue order) is killed, with a shrunk op list that reproduces its killing invariant', async () => {
    // Base seed m2 kills every mutant within 40 walks; these three in about 2 s of CPU.
    const sample: (keyof typeof MUTANT_INFO)[] = ['kvm-maps-first-vm', 'copy-drops-nx', 'nmi-skips-abort'];
    const r = await runMain('mutants', '--seconds-per-mutant', '10', '--seed', 'm2', '--json', ...sample.flatMap((m) => ['--only', m]));
    const summary = JSON.parse(r.stdout) as { mutants: Row[]; survivors: string[] };
    expect(summary.mutants.map((m) => m.mutant)).toEqual(Object.keys(MUTANT_INFO).filter((m) => sample.includes(m as keyof typeof MUTANT_INFO)));
    expect(summary.survivors).toEqual([]);
    expect(r.status).toBe(0);
    for (const m of summary.mutants) {
      expect(m.walks).toBeGreaterThan(0);
      expect(m.shrunkLength).toBe(m.ops!.length);
      const config = configFromFlags({ profile: 'fixed', mutant: m.mutant, geometry: 'small', cpus: 2 });
      expect(runOps(config, m.ops!, { stopOn: m.killedBy! }).failure?.violations.map((v) => v.invariant)).toContain(m.killedBy);
    }
  });
});
