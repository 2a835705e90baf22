// `npm run coverage`: which (path, micro-step, event kind) triples the generators reach, for the
// runs `npm test` makes (fast-check, seed 1, 400 sequences of up to 30 ops, as test/fixed.test.ts)
// and for a longer seeded walk. Prints one table per profile.

import fc from 'fast-check';
import { choicesArb } from '../src/generators/arbitraries.ts';
import { INTR_KINDS } from '../src/model/x86/entry.ts';
import { runChoices } from '../src/check/run.ts';
import { runSeededWalk } from '../src/check/seeded.ts';
import { type InterruptCoverage, coverageRows, measure } from '../src/check/coverage.ts';
import type { Config } from '../src/model/system.ts';
import type { ProfileName } from '../src/model/options.ts';
import { kvmCoverage } from './kvm.ts';

const WALKS = Number(process.env.COVERAGE_WALKS ?? 3000);

function report(title: string, c: InterruptCoverage): void {
  const rows = coverageRows(c);
  let delivered = 0;
  let total = 0;
  console.log(`\n${title}`);
  console.log(`  ${'path'.padEnd(12)} ${'points'.padStart(6)}  ${INTR_KINDS.map((k) => `${k} (ran/held/never)`.padEnd(24)).join('')}`);
  for (const r of rows) {
    const cells = INTR_KINDS.map((k) => `${r.kinds[k].delivered}/${r.kinds[k].heldOffOnly}/${r.kinds[k].never.length}`.padEnd(24));
    console.log(`  ${r.path.padEnd(12)} ${String(r.points).padStart(6)}  ${cells.join('')}`);
    for (const k of INTR_KINDS) {
      delivered += r.kinds[k].delivered;
      total += r.points;
    }
  }
  const never = rows.flatMap((r) => INTR_KINDS.flatMap((k) => r.kinds[k].never.map((p) => `${p}:${k}`)));
  console.log(`  delivered ${delivered} of ${total} (point, kind) pairs; ${never.length} never tried${never.length ? ':' : ''}`);
  for (const n of never.slice(0, 40)) console.log(`    ${n}`);
  if (never.length > 40) console.log(`    ... ${never.length - 40} more`);
}

for (const profile of (process.env.COVERAGE_PROFILES ?? 'fixed,rfc-v2,v3').split(',') as ProfileName[]) {
  const config: Config = { geometry: 'small', cpus: 2, profile };
  const samples = fc.sample(choicesArb(30), { seed: 1, numRuns: 400 });
  report(`${profile}: npm test's fast-check runs (seed 1, 400 x <=30 ops)`, measure(config, samples, (cfg, ch, opts) => runChoices(cfg, ch, undefined, opts)));
  const seeds = Array.from({ length: WALKS }, (_, i) => `coverage/${i}`);
  report(`${profile}: ${WALKS} seeded walks of 60 ops`, measure(config, seeds, (cfg, seed, opts) => runSeededWalk(cfg, seed, 60, undefined, opts)));
}
kvmCoverage(WALKS);
