// The nightly fuzz run: `asi-check fuzz --keep-going` over shards x profiles, one process per cell,
// all with one base seed so no two cells share a walk. Findings are grouped by (invariant, root
// cause) against the known counterexamples (passed as --known): the posted RFC code has known
// bugs, and keep-going walks past each one it meets to reach the deeper ones. A cell fails on a new
// violation that no design option of `fixed` explains (in a strict profile): a genuinely new bug;
// a known bug met in a new shape is reported. New files land in the plan's folder, with each
// cell's JSON summary, for the workflow to upload. The command line that makes a plan is
// src/commands/nightly.ts.

import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ProfileName } from '../../model/options.ts';
import type { Config, KernelConfig } from '../../model/system.ts';
import { kernelWords } from '../counterexample.ts';
import type { Shard } from './engine.ts';

const BIN = fileURLToPath(new URL('../../../bin/asi-check.js', import.meta.url));

export interface NightlyCell {
  readonly profile: ProfileName;
  readonly shard: Shard;
  readonly cpus: number;
}

/** A nightly run, every value already checked. */
export interface NightlyPlan {
  readonly cells: readonly NightlyCell[];
  /** What every cell runs on besides its profile, shard and CPUs, passed on to fuzz. */
  readonly kernel?: KernelConfig;
  readonly geometry?: Config['geometry'];
  /** Per cell. */
  readonly seconds: number;
  readonly seed: string;
  /** An existing folder, or a new one in an existing folder: new counterexamples, and summaries in summary/. */
  readonly out: string;
  /** The folder of known counterexamples. */
  readonly known: string;
  /** The profiles whose unexplained violations fail the run; the others only report them. */
  readonly strict: readonly ProfileName[];
}

/** The exit statuses of a nightly run. */
export const NIGHTLY_CLEAN = 0;
export const NIGHTLY_FAILED = 1;
export const NIGHTLY_BROKEN = 2;

const shardText = (s: Shard) => `${s.index}/${s.count}`;

/** A cell's name in its summary file and output: the profile, the kernel words as file names write them, and the geometry. */
function cellName(cell: NightlyCell, p: NightlyPlan): string {
  return [cell.profile, ...kernelWords(p.kernel), ...(p.geometry ? [p.geometry] : [])].join('+');
}

/** The part of `asi-check fuzz --json` this run reads. */
interface Summary {
  readonly walks: number;
  readonly stepsPerSecond: number;
  readonly violations: readonly { readonly invariant: string; readonly rootCause?: string; readonly file: string | null; readonly saveError?: string; readonly new: boolean; readonly replay: string }[];
  readonly crashes: readonly { readonly walkSeed?: string; readonly message: string }[];
  readonly vacuous: readonly string[];
}

interface CellResult {
  readonly cell: NightlyCell;
  readonly code: number | null;
  readonly summary?: Summary;
}

function runCell(cell: NightlyCell, p: NightlyPlan, args: readonly string[]): Promise<CellResult> {
  const tag = `[${cellName(cell, p)} ${shardText(cell.shard)} ${cell.cpus} CPUs]`;
  const child = spawn(process.execPath, [BIN, 'fuzz', '--json', '--keep-going', '--profile', cell.profile, '--shard', shardText(cell.shard), '--cpus', String(cell.cpus), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d));
  child.stderr.on('data', (d: Buffer) => process.stderr.write(d.toString().replace(/^(?=.)/gm, `${tag} `)));
  return new Promise((resolve) => {
    child.on('close', (code) => {
      let summary: Summary;
      try {
        summary = JSON.parse(stdout) as Summary;
      } catch {
        return resolve({ cell, code });
      }
      writeFileSync(join(p.out, 'summary', `${cellName(cell, p)}-shard-${cell.shard.index}of${cell.shard.count}.json`), stdout);
      resolve({ cell, code, summary });
    });
  });
}

/** Runs every cell of the plan and reports each; returns the exit status. */
export async function runNightly(p: NightlyPlan): Promise<number> {
  const { cells, seconds, seed, out, known, strict } = p;
  // Cells share the machine: as many at once as there are cores, each given its share of them.
  const parallel = Math.min(cells.length, availableParallelism());
  const workers = Math.max(1, Math.floor(availableParallelism() / parallel));
  // --no-corpus: the plan's known folder says what is known, whatever the checkout's corpus holds.
  const fuzzArgs = [
    ...['--seed', seed, '--seconds', String(seconds), '--workers', String(workers), '--out', out, '--no-corpus', '--known', known],
    ...kernelWords(p.kernel).flatMap((k) => ['--kernel', k]),
    ...(p.geometry ? ['--geometry', p.geometry] : []),
  ];
  console.log(`fuzz:nightly: ${cells.length} cells, ${parallel} at a time, ${seconds} s each, seed ${seed}, new files -> ${out}/, summaries -> ${out}/summary/`);
  mkdirSync(join(out, 'summary'), { recursive: true });

  const results: CellResult[] = [];
  const queue = [...cells];
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      for (let cell = queue.shift(); cell; cell = queue.shift()) results.push(await runCell(cell, p, fuzzArgs));
    }),
  );

  let status = NIGHTLY_CLEAN;
  for (const { cell, code, summary } of results) {
    const name = `${cellName(cell, p)} ${shardText(cell.shard)}`;
    if (!summary) {
      console.log(`${name}: asi-check fuzz failed (exit ${code})`);
      status = NIGHTLY_BROKEN;
      continue;
    }
    const fresh = summary.violations.filter((v) => v.new);
    const unexplained = fresh.filter((v) => v.rootCause === undefined);
    const failsOnNew = strict.includes(cell.profile);
    const vacuous = summary.violations.length ? [] : summary.vacuous;
    const reportOnly = unexplained.length && !failsOnNew ? ` (reported only: ${cell.profile} is not in FUZZ_STRICT)` : '';
    console.log(`${name} (${cell.cpus} CPUs): ${summary.walks} walks, ${summary.stepsPerSecond} steps/s, ${fresh.length} new (${unexplained.length} unexplained${reportOnly}), ${summary.violations.length - fresh.length} known, ${summary.crashes.length} crashes`);
    for (const v of fresh) console.log(`  NEW ${v.invariant} (${v.rootCause ?? 'no known root cause'}): ${v.file ?? `NOT SAVED (${v.saveError})`}\n      ${v.replay}`);
    for (const c of summary.crashes) console.log(`  CRASH ${c.walkSeed ?? ''}: ${c.message.split('\n')[0]}`);
    if (vacuous.length) console.log(`  VACUOUS: ${vacuous.join(', ')} never succeeded`);
    if (((failsOnNew && unexplained.length) || summary.crashes.length || vacuous.length) && status === NIGHTLY_CLEAN) status = NIGHTLY_FAILED;
    if (summary.violations.some((v) => v.saveError)) status = NIGHTLY_BROKEN;
  }
  return status;
}
