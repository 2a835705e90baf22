// The nightly fuzz run: `asi-check fuzz` over shards x profiles, one process per cell, all with one
// base seed so no two cells share a walk. "New" means a signature that is not in the committed
// counterexamples/ (passed as --known): the posted RFC code has known bugs, and fuzzing rfc-v2 finds
// them every night; only something not yet committed fails the run. New files land in FUZZ_OUT,
// with each cell's JSON summary, for the workflow to upload.
//
//   npm run fuzz:nightly                                 every cell, in parallel, a short budget
//   npm run fuzz:nightly -- --profile fixed --shard 2/4  one cell (a CI matrix job)
//
// Environment: FUZZ_SECONDS (per cell, default 10), FUZZ_SHARDS (4), FUZZ_PROFILES ("fixed,rfc-v2"),
// FUZZ_SEED (default random), FUZZ_OUT ("fuzz-out"), FUZZ_KNOWN ("counterexamples").
// Exit status: 0 nothing new, 1 a new signature or a crash, 2 a cell could not run.

import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { randomBytes } from 'node:crypto';

const BIN = fileURLToPath(new URL('../../../bin/asi-check.js', import.meta.url));

interface Cell {
  readonly profile: string;
  readonly shard: string;
}

/** The part of `asi-check fuzz --json` this script reads. */
interface Summary {
  readonly walks: number;
  readonly stepsPerSecond: number;
  readonly violations: readonly { readonly invariant: string; readonly file: string; readonly new: boolean; readonly replay: string }[];
  readonly crashes: readonly { readonly walkSeed?: string; readonly message: string }[];
}

interface CellResult {
  readonly cell: Cell;
  readonly code: number | null;
  readonly summary?: Summary;
}

function runCell(cell: Cell, args: readonly string[], out: string): Promise<CellResult> {
  const tag = `[${cell.profile} ${cell.shard}]`;
  const child = spawn(process.execPath, [BIN, 'fuzz', '--json', '--profile', cell.profile, '--shard', cell.shard, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d));
  child.stderr.on('data', (d: Buffer) => process.stderr.write(d.toString().replace(/^(?=.)/gm, `${tag} `)));
  return new Promise((resolve) => {
    child.on('close', (code) => {
      if (code !== 0 && code !== 1) return resolve({ cell, code });
      writeFileSync(join(out, `summary-${cell.profile}-shard-${cell.shard.replace('/', 'of')}.json`), stdout);
      resolve({ cell, code, summary: JSON.parse(stdout) as Summary });
    });
  });
}

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { profile: { type: 'string' }, shard: { type: 'string' } } });
  const env = process.env;
  const shards = Number(env.FUZZ_SHARDS ?? 4);
  const seconds = env.FUZZ_SECONDS ?? '10';
  const seed = env.FUZZ_SEED ?? randomBytes(4).toString('hex');
  const out = env.FUZZ_OUT ?? 'fuzz-out';
  const known = env.FUZZ_KNOWN ?? 'counterexamples';
  const profiles = values.profile ? [values.profile] : (env.FUZZ_PROFILES ?? 'fixed,rfc-v2').split(',');
  const cells: Cell[] = values.shard
    ? profiles.map((profile) => ({ profile, shard: values.shard! }))
    : profiles.flatMap((profile) => Array.from({ length: shards }, (_, i) => ({ profile, shard: `${i + 1}/${shards}` })));

  // Cells share the machine: as many at once as there are cores, each given its share of them.
  const parallel = Math.min(cells.length, availableParallelism());
  const workers = Math.max(1, Math.floor(availableParallelism() / parallel));
  const args = ['--seed', seed, '--seconds', seconds, '--workers', String(workers), '--out', out, '--known', known];
  console.log(`fuzz:nightly: ${cells.length} cells, ${parallel} at a time, ${seconds} s each, seed ${seed}, new files -> ${out}/`);
  mkdirSync(out, { recursive: true });

  const results: CellResult[] = [];
  const queue = [...cells];
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      for (let cell = queue.shift(); cell; cell = queue.shift()) results.push(await runCell(cell, args, out));
    }),
  );

  let status = 0;
  for (const { cell, code, summary } of results) {
    if (!summary) {
      console.log(`${cell.profile} ${cell.shard}: asi-check fuzz failed (exit ${code})`);
      status = 2;
      continue;
    }
    const fresh = summary.violations.filter((v) => v.new);
    console.log(`${cell.profile} ${cell.shard}: ${summary.walks} walks, ${summary.stepsPerSecond} steps/s, ${fresh.length} new, ${summary.violations.length - fresh.length} known, ${summary.crashes.length} crashes`);
    for (const v of fresh) console.log(`  NEW ${v.invariant}: ${v.file}\n      ${v.replay}`);
    for (const c of summary.crashes) console.log(`  CRASH ${c.walkSeed ?? ''}: ${c.message.split('\n')[0]}`);
    if ((fresh.length || summary.crashes.length) && status === 0) status = 1;
  }
  return status;
}

process.exitCode = await main();
