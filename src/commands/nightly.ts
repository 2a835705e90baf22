// `npm run fuzz:nightly`: the command line of the nightly fuzz run (src/check/fuzz/nightly.ts runs
// it). Flags and FUZZ_* variables are checked whole before anything runs or is written.
//
//   npm run fuzz:nightly                                 every cell, in parallel, a short budget
//   npm run fuzz:nightly -- --profile fixed --shard 2/4  one cell (a CI matrix job)
//   npm run fuzz:nightly -- --kernel nokmem --geometry real  every cell on another kernel and geometry
//
// Environment: FUZZ_SECONDS (per cell, default 10), FUZZ_SHARDS (4), FUZZ_PROFILES ("fixed,rfc-v2,asi25-fixed,asi25,asi25-dm-fixed,asi25-dm"),
// FUZZ_SEED (default random), FUZZ_OUT ("fuzz-out", whose parent must exist), FUZZ_KNOWN ("counterexamples"),
// FUZZ_STRICT (the same six): the profiles whose unexplained violations fail the run (others only
// report them), FUZZ_CPUS ("2,2,3,4"): the CPUs of shard i, cycling, so 3 and 4 CPUs run every night.
// Each cell's JSON summary goes to FUZZ_OUT/summary/, apart from the counterexamples.
// Exit status: 0 nothing unexplained in a strict profile, 1 an unexplained violation there, a crash or a vacuous cell, 2 bad usage or a cell
// that could not run. Bad usage is one line on stderr, before anything runs or is written.

import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { InvalidArgumentError } from 'commander';
import type { KernelConfig } from '../model/system.ts';
import { NIGHTLY_BROKEN, type NightlyCell, type NightlyPlan, runNightly } from '../check/fuzz/nightly.ts';
import { defaultSeed, parseShard } from './fuzz.ts';
import { prepareOutDir, statOf } from './output.ts';
import { EXIT_INTERNAL, UsageError, intIn, parseGeometry, parseKernel, parseProfile, usageError } from './usage.ts';

/** Both design families (the 2025 one with each of its direct maps), each fixed profile and the posted code. */
const NIGHTLY_PROFILES = 'fixed,rfc-v2,asi25-fixed,asi25,asi25-dm-fixed,asi25-dm';

/** A whole number from the environment, or its default. */
function envInt(env: NodeJS.ProcessEnv, name: string, fallback: number, max: number): number {
  const text = env[name] ?? String(fallback);
  if (!/^\d+$/.test(text) || Number(text) < 1 || Number(text) > max) usageError(`${name} must be a whole number from 1 to ${max}, got '${text}'`);
  return Number(text);
}

/** Commander's parsers throw InvalidArgumentError; here that is a usage error naming the flag or variable. */
function checked<T>(what: string, parse: (v: string) => T, value: string): T {
  try {
    return parse(value);
  } catch (e) {
    if (e instanceof InvalidArgumentError) usageError(`${what}: ${e.message}`);
    throw e;
  }
}

/** Everything checked before anything runs or is written. */
function plan(args: readonly string[], env: NodeJS.ProcessEnv): NightlyPlan {
  let values;
  try {
    ({ values } = parseArgs({ args: [...args], options: { profile: { type: 'string' }, shard: { type: 'string' }, kernel: { type: 'string', multiple: true }, geometry: { type: 'string' } } }));
  } catch (e) {
    usageError((e as Error).message.split('\n')[0]);
  }
  const shards = envInt(env, 'FUZZ_SHARDS', 4, 64);
  const seconds = envInt(env, 'FUZZ_SECONDS', 10, 7 * 24 * 3600);
  const seed = env.FUZZ_SEED ?? defaultSeed();
  if (seed === '') usageError('FUZZ_SEED is empty');
  const known = env.FUZZ_KNOWN ?? 'counterexamples';
  if (!statOf(known)?.isDirectory()) usageError(`FUZZ_KNOWN ${known}: not a directory`);
  const profileFlag = values.profile !== undefined;
  const profiles = (profileFlag ? [values.profile!] : (env.FUZZ_PROFILES ?? NIGHTLY_PROFILES).split(',')).map((p) => checked(profileFlag ? '--profile' : 'FUZZ_PROFILES', parseProfile, p));
  const strict = (env.FUZZ_STRICT ?? NIGHTLY_PROFILES).split(',').filter(Boolean).map((p) => checked('FUZZ_STRICT', parseProfile, p));
  const shard = values.shard === undefined ? undefined : checked('--shard', parseShard, values.shard);
  const kernel = (values.kernel ?? []).reduce<KernelConfig | undefined>((k, word) => checked('--kernel', (w) => parseKernel(w, k), word), undefined);
  const geometry = values.geometry === undefined ? undefined : checked('--geometry', parseGeometry, values.geometry);
  const cpuList = (env.FUZZ_CPUS ?? '2,2,3,4').split(',').map((c) => checked('FUZZ_CPUS', intIn(1, 4), c));
  const cell = (profile: NightlyCell['profile'], index: number, count: number): NightlyCell => ({ profile, shard: { index, count }, cpus: cpuList[(index - 1) % cpuList.length] });
  const cells = shard ? profiles.map((p) => cell(p, shard.index, shard.count)) : profiles.flatMap((p) => Array.from({ length: shards }, (_, i) => cell(p, i + 1, shards)));
  const out = env.FUZZ_OUT ?? 'fuzz-out';
  prepareOutDir(out, { flag: 'FUZZ_OUT', given: env.FUZZ_OUT !== undefined });
  return { cells, ...(kernel ? { kernel } : {}), ...(geometry ? { geometry } : {}), seconds, seed, out, known, strict };
}

/** `npm run fuzz:nightly -- <args>` with environment `env`; returns the exit status. */
export async function nightly(args: readonly string[], env: NodeJS.ProcessEnv): Promise<number> {
  let p: NightlyPlan;
  try {
    p = plan(args, env);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    console.error(`fuzz:nightly: ${e.message}`);
    return NIGHTLY_BROKEN;
  }
  return runNightly(p);
}

// Run as a script (npm run fuzz:nightly), not when a test imports it.
if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  try {
    process.exitCode = await nightly(process.argv.slice(2), process.env);
  } catch (e) {
    console.error(`fuzz:nightly: internal error: ${(e as Error).stack ?? String(e)}`);
    process.exitCode = EXIT_INTERNAL;
  }
}
