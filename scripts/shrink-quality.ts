// Shrink quality of the committed corpus: for each mutant's saved counterexample (shrunk by fuzz or
// fast-check), its length against the shortest breadth-first search finds for the same invariant.
// Usage: npx tsx scripts/shrink-quality.ts [--json]

import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { loadCounterexample } from '../src/check/counterexample.ts';
import { bfsMinimal, minimalCell, shrinkRatio } from '../src/check/explore/shrink-quality.ts';
import { CORPUS_DIR } from '../src/commands/fuzz.ts';

const rows = [];
for (const name of readdirSync(CORPUS_DIR).filter((n) => n.startsWith('mutant-')).sort()) {
  const c = loadCounterexample(join(CORPUS_DIR, name));
  const started = performance.now();
  const m = await bfsMinimal(c.config, c.invariant, c.ops.length);
  const row = { mutant: c.config.mutant, invariant: c.invariant, shrunk: c.ops.length, minimal: m.found?.length ?? null, scope: m.found?.scope ?? null, ratio: shrinkRatio(m) ?? null, seconds: Number(((performance.now() - started) / 1000).toFixed(1)) };
  rows.push(row);
  if (!process.argv.includes('--json')) console.log(`${String(row.mutant).padEnd(34)} ${row.invariant.padEnd(24)} shrunk ${row.shrunk}  BFS-minimal ${minimalCell(m).padEnd(12)} ratio ${row.ratio ?? '-'}  (${row.seconds} s)`);
}
if (process.argv.includes('--json')) console.log(JSON.stringify(rows, null, 2));
