// The nightly fuzz run: `asi-check fuzz --keep-going` over shards x profiles, one process per cell,
// all with one base seed so no two cells share a walk. Findings are grouped by (invariant, root
// cause) against the committed counterexamples/ (passed as --known): the posted RFC code has known
// bugs, and keep-going walks past each one it meets to reach the deeper ones. A cell fails on a new
// violation that no design option of `fixed` explains (in `fixed`, any violation): a genuinely new
// bug; a known bug met in a new shape is reported. New files land in FUZZ_OUT, with each cell's JSON
// summary, for the workflow to upload.
//
//   npm run fuzz:nightly                                 every cell, in parallel, a short budget
//   npm run fuzz:nightly -- --profile fixed --shard 2/4  one cell (a CI matrix job)
//   npm run fuzz:nightly -- --kernel nokmem --geometry real  every cell on another kernel and geometry
//
// Environment: FUZZ_SECONDS (per cell, default 10), FUZZ_SHARDS (4), FUZZ_PROFILES ("fixed,rfc-v2"),
// FUZZ_SEED (default random), FUZZ_OUT ("fuzz-out", whose parent must exist), FUZZ_KNOWN ("counterexamples"),
// FUZZ_STRICT ("fixed,rfc-v2"): the profiles whose unexplained violations fail the run (others only
// report them), FUZZ_CPUS ("2,2,3,4"): the CPUs of shard i, cycling, so 3 and 4 CPUs run every night.
// Each cell's JSON summary goes to FUZZ_OUT/summary/, apart from the counterexamples.
// Exit status: 0 nothing unexplained in a strict profile, 1 an unexplained violation there, a crash or a vacuous cell, 2 bad usage or a cell
// that could not run. Bad usage is one line on stderr, before anything runs or is written.

import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { randomBytes } from 'node:crypto';
import { InvalidArgumentError } from 'commander';
import { parseShard } from '../../commands/fuzz.ts';
import { intIn, parseGeometry, parseKernel, parseProfile } from '../../commands/usage.ts';
import { OutDirError, prepareOutDir, statOf } from './outdir.ts';

const BIN = fileURLToPath(new URL('../../../bin/asi-check.js', import.meta.url));

interface Cell {
  readonly profile: string;
  readonly shard: string;
  readonly cpus: number;
}

/** What every cell runs on besides its profile, shard and CPUs: `--kernel` words and `--geometry`, passed on to fuzz. */
interface Machine {
  readonly kernel: readonly string[];
  readonly geometry?: string;
}

/** A cell's name in its summary file and output: the profile, the kernel words as file names write them, and the geometry. */
function cellName(cell: Cell, m: Machine): string {
  return [cell.profile, ...m.kernel, ...(m.geometry ? [m.geometry] : [])].join('+');
}

/** The part of `asi-check fuzz --json` this script reads. */
interface Summary {
  readonly walks: number;
  readonly stepsPerSecond: number;
  readonly violations: readonly { readonly invariant: string; readonly rootCause?: string; readonly file: string | null; readonly saveError?: string; readonly new: boolean; readonly replay: string }[];
  readonly crashes: readonly { readonly walkSeed?: string; readonly message: string }[];
  readonly vacuous: readonly string[];
}

class Usage extends Error {}

/** A whole number from the environment, or its default. */
function envInt(env: NodeJS.ProcessEnv, name: string, fallback: number, max: number): number {
  const text = env[name] ?? String(fallback);
  if (!/^\d+$/.test(text) || Number(text) < 1 || Number(text) > max) throw new Usage(`${name} must be a whole number from 1 to ${max}, got '${text}'`);
  return Number(text);
}

/** Commander's parsers throw InvalidArgumentError; here that is a usage error too. */
function checked<T>(what: string, parse: (v: string) => T, value: string): T {
  try {
    return parse(value);
  } catch (e) {
    if (e instanceof InvalidArgumentError) throw new Usage(`${what}: ${e.message}`);
    throw e;
  }
}

interface CellResult {
  readonly cell: Cell;
  readonly code: number | null;
  readonly summary?: Summary;
}

function runCell(cell: Cell, m: Machine, args: readonly string[], out: string): Promise<CellResult> {
  const tag = `[${cellName(cell, m)} ${cell.shard} ${cell.cpus} CPUs]`;
  const child = spawn(process.execPath, [BIN, 'fuzz', '--json', '--keep-going', '--profile', cell.profile, '--shard', cell.shard, '--cpus', String(cell.cpus), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
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
      writeFileSync(join(out, 'summary', `${cellName(cell, m)}-shard-${cell.shard.replace('/', 'of')}.json`), stdout);
      resolve({ cell, code, summary });
    });
  });
}

interface Plan {
  readonly cells: readonly Cell[];
  readonly machine: Machine;
  readonly seconds: number;
  readonly seed: string;
  readonly out: string;
  readonly known: string;
  readonly strict: readonly string[];
}

/** Everything checked before anything runs or is written. */
function plan(args: readonly string[], env: NodeJS.ProcessEnv): Plan {
  let values;
  try {
    ({ values } = parseArgs({ args: [...args], options: { profile: { type: 'string' }, shard: { type: 'string' }, kernel: { type: 'string', multiple: true }, geometry: { type: 'string' } } }));
  } catch (e) {
    throw new Usage((e as Error).message.split('\n')[0]);
  }
  const shards = envInt(env, 'FUZZ_SHARDS', 4, 64);
  const seconds = envInt(env, 'FUZZ_SECONDS', 10, 7 * 24 * 3600);
  const seed = env.FUZZ_SEED ?? randomBytes(4).toString('hex');
  if (seed === '') throw new Usage('FUZZ_SEED is empty');
  const known = env.FUZZ_KNOWN ?? 'counterexamples';
  if (!statOf(known)?.isDirectory()) throw new Usage(`FUZZ_KNOWN ${known}: not a directory`);
  const profiles = values.profile !== undefined ? [values.profile] : (env.FUZZ_PROFILES ?? 'fixed,rfc-v2').split(',');
  for (const p of profiles) checked(values.profile !== undefined ? '--profile' : 'FUZZ_PROFILES', parseProfile, p);
  const strict = (env.FUZZ_STRICT ?? 'fixed,rfc-v2').split(',').filter(Boolean);
  for (const p of strict) checked('FUZZ_STRICT', parseProfile, p);
  const shard = values.shard;
  if (shard !== undefined) checked('--shard', parseShard, shard);
  const kernel = values.kernel ?? [];
  for (const k of kernel) checked('--kernel', parseKernel, k);
  if (values.geometry !== undefined) checked('--geometry', parseGeometry, values.geometry);
  const machine: Machine = { kernel, ...(values.geometry !== undefined ? { geometry: values.geometry } : {}) };
  const cpuList = (env.FUZZ_CPUS ?? '2,2,3,4').split(',').map((c) => checked('FUZZ_CPUS', intIn(1, 4), c));
  const cpusOf = (s: string) => cpuList[(parseShard(s).index - 1) % cpuList.length];
  const cells: Cell[] = shard !== undefined
    ? profiles.map((profile) => ({ profile, shard, cpus: cpusOf(shard) }))
    : profiles.flatMap((profile) => Array.from({ length: shards }, (_, i) => ({ profile, shard: `${i + 1}/${shards}`, cpus: cpusOf(`${i + 1}/${shards}`) })));
  const out = env.FUZZ_OUT ?? 'fuzz-out';
  try {
    prepareOutDir(out, false);
  } catch (e) {
    if (e instanceof OutDirError) throw new Usage(e.message.replace('--out', 'FUZZ_OUT'));
    throw e;
  }
  return { cells, machine, seconds, seed, out, known, strict };
}

/** `npm run fuzz:nightly -- <args>` with environment `env`; returns the exit status. */
export async function nightly(args: readonly string[], env: NodeJS.ProcessEnv): Promise<number> {
  let p: Plan;
  try {
    p = plan(args, env);
  } catch (e) {
    if (!(e instanceof Usage)) throw e;
    console.error(`fuzz:nightly: ${e.message}`);
    return 2;
  }
  const { cells, machine, seconds, seed, out, known, strict } = p;
  // Cells share the machine: as many at once as there are cores, each given its share of them.
  const parallel = Math.min(cells.length, availableParallelism());
  const workers = Math.max(1, Math.floor(availableParallelism() / parallel));
  // --no-corpus: FUZZ_KNOWN says what is known, whatever the checkout's corpus holds.
  const fuzzArgs = [
    ...['--seed', seed, '--seconds', String(seconds), '--workers', String(workers), '--out', out, '--no-corpus', '--known', known],
    ...machine.kernel.flatMap((k) => ['--kernel', k]),
    ...(machine.geometry ? ['--geometry', machine.geometry] : []),
  ];
  console.log(`fuzz:nightly: ${cells.length} cells, ${parallel} at a time, ${seconds} s each, seed ${seed}, new files -> ${out}/, summaries -> ${out}/summary/`);
  mkdirSync(join(out, 'summary'), { recursive: true });

  const results: CellResult[] = [];
  const queue = [...cells];
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      for (let cell = queue.shift(); cell; cell = queue.shift()) results.push(await runCell(cell, machine, fuzzArgs, out));
    }),
  );

  let status = 0;
  for (const { cell, code, summary } of results) {
    if (!summary) {
      console.log(`${cellName(cell, machine)} ${cell.shard}: asi-check fuzz failed (exit ${code})`);
      status = 2;
      continue;
    }
    const fresh = summary.violations.filter((v) => v.new);
    const unexplained = fresh.filter((v) => v.rootCause === undefined);
    const failsOnNew = strict.includes(cell.profile);
    const vacuous = summary.violations.length ? [] : summary.vacuous;
    const reportOnly = unexplained.length && !failsOnNew ? ` (reported only: ${cell.profile} is not in FUZZ_STRICT)` : '';
    console.log(`${cellName(cell, machine)} ${cell.shard} (${cell.cpus} CPUs): ${summary.walks} walks, ${summary.stepsPerSecond} steps/s, ${fresh.length} new (${unexplained.length} unexplained${reportOnly}), ${summary.violations.length - fresh.length} known, ${summary.crashes.length} crashes`);
    for (const v of fresh) console.log(`  NEW ${v.invariant} (${v.rootCause ?? 'no known root cause'}): ${v.file ?? `NOT SAVED (${v.saveError})`}\n      ${v.replay}`);
    for (const c of summary.crashes) console.log(`  CRASH ${c.walkSeed ?? ''}: ${c.message.split('\n')[0]}`);
    if (vacuous.length) console.log(`  VACUOUS: ${vacuous.join(', ')} never succeeded`);
    if (((failsOnNew && unexplained.length) || summary.crashes.length || vacuous.length) && status === 0) status = 1;
    if (summary.violations.some((v) => v.saveError)) status = 2;
  }
  return status;
}

// Run as a script (npm run fuzz:nightly), not when a test imports it.
if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  try {
    process.exitCode = await nightly(process.argv.slice(2), process.env);
  } catch (e) {
    console.error(`fuzz:nightly: internal error: ${(e as Error).stack ?? String(e)}`);
    process.exitCode = 3;
  }
}
