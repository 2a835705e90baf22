// Saved counterexamples: format version 1. The op list is the source of truth for replay; the
// rest says what it reproduced, under which configuration, and how it was found.

import { existsSync, mkdirSync, readdirSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { type Op, formatOp, validateOp } from '../model/ops.ts';
import { type Config, type KernelConfig, API_CALLERS, geometryOf } from '../model/system.ts';
import { isProfileName, OPTION_NAMES, OVERLAP_POLICIES, PROFILES, RFC_V2_OPTIONS } from '../model/options.ts';
import { isMutantName, MUTANT_INFO } from '../model/mutants.ts';
import { invariantById } from '../invariants/index.ts';
import { GEOMETRIES } from '../model/mm/geometry.ts';
import { ReadError, readBounded } from './read-file.ts';

export const FORMAT = 'asi-check-counterexample';
export const FORMAT_VERSION = 1;

export interface Counterexample {
  readonly format: typeof FORMAT;
  readonly version: typeof FORMAT_VERSION;
  /** A short title: the invariant and what the ops do. */
  readonly title: string;
  readonly invariant: string;
  readonly message: string;
  readonly config: Config;
  readonly ops: readonly Op[];
  /** The ops as one readable line each (informative; `ops` is what replays). */
  readonly trace: readonly string[];
  readonly found?: { readonly by: string; readonly seed?: string | number; readonly path?: string; readonly runs?: number };
}

export class CounterexampleError extends Error {}

/** JSON that is not a counterexample at all (another tool's file, a fuzz summary), as against a damaged one. */
export class NotACounterexampleError extends CounterexampleError {}

export function makeCounterexample(config: Config, ops: readonly Op[], invariant: string, message: string, title: string, found?: Counterexample['found']): Counterexample {
  const g = geometryOf(config);
  return { format: FORMAT, version: FORMAT_VERSION, title, invariant, message, config, ops, trace: ops.map((op) => formatOp(g, op)), ...(found ? { found } : {}) };
}

/**
 * The configuration, the invariant and the shape of the ops (kinds, not arguments): two files with
 * one signature are one bug, as syzbot groups crashes by title.
 */
export function signature(c: Pick<Counterexample, 'invariant' | 'ops' | 'config'>): string {
  const shape = c.ops.map((o) => o.op).join(',');
  return createHash('sha256').update(`${JSON.stringify(c.config)}|${c.invariant}|${shape}`).digest('hex').slice(0, 12);
}

/** Longest list of option names a file name spells out; past it, the name gives their number. */
const MAX_OPTIONS_LABEL = 80;

/**
 * What a configuration reproduces on, as a file name says it: the profile (or mutant), the kernel
 * settings away from their defaults (`thp=off`, `kernel-thread`, `slab`), then each design option set away
 * from that profile's (or mutant's) own value: `rfc-v2+thp=off`, `rfc-v2+exactExtent+...`.
 */
/**
 * The kernel configurations other than the default, each as one word: what a file name says after
 * the profile, and what `--kernel` takes.
 */
export const KERNEL_ITEMS: Readonly<Record<string, KernelConfig>> = { 'thp=off': { thp: false }, 'kernel-thread': { apiCaller: 'kernel-thread' }, slab: { slab: true } };

/** The KERNEL_ITEMS words a kernel configuration is made of, in their order. */
export function kernelWords(kernel: KernelConfig | undefined): string[] {
  return Object.entries(KERNEL_ITEMS)
    .filter(([, item]) => Object.entries(item).every(([k, v]) => kernel?.[k as keyof KernelConfig] === v))
    .map(([word]) => word);
}

export function configLabel(config: Config): string {
  const base = { ...PROFILES[config.profile].options, ...(config.mutant ? MUTANT_INFO[config.mutant].options : {}) };
  const set = OPTION_NAMES.filter((k) => config.options?.[k] !== undefined && config.options[k] !== base[k]).map((k) =>
    typeof config.options![k] === 'boolean' ? (config.options![k] ? k : `no-${k}`) : `${k}=${String(config.options![k])}`,
  );
  const who = [config.mutant ? `mutant-${config.mutant}` : config.profile, ...kernelWords(config.kernel)].join('+');
  const label = set.join('+');
  return set.length === 0 ? who : label.length <= MAX_OPTIONS_LABEL ? `${who}+${label}` : `${who}+${set.length}-options`;
}

export function fileNameFor(c: Counterexample): string {
  return `${configLabel(c.config)}--${c.invariant.toLowerCase()}--${signature(c)}.json`;
}

export function saveCounterexample(dir: string, c: Counterexample): string {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, fileNameFor(c));
  writeFileAtomically(path, JSON.stringify(c, null, 2) + '\n');
  return path;
}

/** Temp files are `<target>.<pid>.asi-tmp`: a kill between write and rename leaves one behind. */
const TEMP = /\.(\d+)\.asi-tmp$/;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Removes the temp files in `dir` whose writer has died; those of a live run are its own business. */
export function removeStaleTemps(dir: string): void {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    const pid = TEMP.exec(name)?.[1];
    if (pid && !alive(Number(pid))) unlinkSync(join(dir, name));
  }
}

/** Writes next to the target and renames, so a reader never sees a partial file; no temp file survives a failure. */
export function writeFileAtomically(path: string, text: string): void {
  const tmp = `${path}.${process.pid}.asi-tmp`;
  try {
    writeFileSync(tmp, text);
    renameSync(tmp, path);
  } finally {
    if (existsSync(tmp)) unlinkSync(tmp);
  }
}

function validateConfig(x: unknown): Config {
  if (typeof x !== 'object' || x === null) throw new CounterexampleError('config is not an object');
  const c = x as Record<string, unknown>;
  if (typeof c.geometry !== 'string' || !Object.hasOwn(GEOMETRIES, c.geometry)) throw new CounterexampleError(`unknown geometry ${JSON.stringify(c.geometry)}`);
  if (!Number.isInteger(c.cpus) || (c.cpus as number) < 1 || (c.cpus as number) > 4) throw new CounterexampleError(`cpus must be 1-4, got ${JSON.stringify(c.cpus)}`);
  if (!isProfileName(c.profile)) throw new CounterexampleError(`unknown profile ${JSON.stringify(c.profile)}`);
  if (c.mutant !== undefined && !isMutantName(c.mutant)) throw new CounterexampleError(`unknown mutant ${JSON.stringify(c.mutant)}`);
  if (c.options !== undefined) {
    if (typeof c.options !== 'object' || c.options === null) throw new CounterexampleError('options is not an object');
    for (const [k, v] of Object.entries(c.options)) {
      if (!(OPTION_NAMES as readonly string[]).includes(k)) throw new CounterexampleError(`unknown design option ${JSON.stringify(k)}`);
      if (typeof v !== typeof RFC_V2_OPTIONS[k as keyof typeof RFC_V2_OPTIONS]) throw new CounterexampleError(`design option ${k} has the wrong type`);
      if (k === 'overlapPolicy' && !(OVERLAP_POLICIES as readonly unknown[]).includes(v)) throw new CounterexampleError(`unknown overlapPolicy ${JSON.stringify(v)}`);
    }
  }
  if (c.kernel !== undefined) validateKernelConfig(c.kernel);
  return c as unknown as Config;
}

function validateKernelConfig(x: unknown): void {
  if (typeof x !== 'object' || x === null) throw new CounterexampleError('kernel is not an object');
  for (const [k, v] of Object.entries(x)) {
    if (k === 'thp' || k === 'slab') {
      if (typeof v !== 'boolean') throw new CounterexampleError(`kernel.${k} must be a boolean`);
    } else if (k === 'apiCaller') {
      if (!(API_CALLERS as readonly unknown[]).includes(v)) throw new CounterexampleError(`unknown kernel.apiCaller ${JSON.stringify(v)}`);
    } else throw new CounterexampleError(`unknown kernel setting ${JSON.stringify(k)}`);
  }
}

/** Parses and validates a file's text; every defect is a CounterexampleError naming it. */
export function parseCounterexample(text: string): Counterexample {
  let x: unknown;
  try {
    x = JSON.parse(text);
  } catch (e) {
    throw new CounterexampleError(`not valid JSON (${(e as Error).message})`);
  }
  if (typeof x !== 'object' || x === null) throw new NotACounterexampleError('not a JSON object');
  const o = x as Record<string, unknown>;
  if (o.format !== FORMAT) throw new NotACounterexampleError(`not an asi-check counterexample (format ${JSON.stringify(o.format)})`);
  if (o.version !== FORMAT_VERSION) throw new CounterexampleError(`format version ${JSON.stringify(o.version)} is not supported (this asi-check reads version ${FORMAT_VERSION})`);
  if (typeof o.invariant !== 'string' || !invariantById(o.invariant)) throw new CounterexampleError(`unknown invariant ${JSON.stringify(o.invariant)}`);
  for (const field of ['title', 'message'] as const) {
    if (typeof o[field] !== 'string') throw new CounterexampleError(`${field} must be a string, got ${o[field] === undefined ? 'none' : JSON.stringify(o[field])}`);
  }
  const config = validateConfig(o.config);
  if (!Array.isArray(o.ops) || o.ops.length === 0) throw new CounterexampleError('ops must be a non-empty array');
  o.ops.forEach((op, i) => {
    const err = validateOp(op);
    if (err) throw new CounterexampleError(`op ${i + 1}: ${err}`);
  });
  return { ...(o as unknown as Counterexample), config };
}

/** Far above any shrunk file (a few KB) or a long walk; reading stops there. */
export const MAX_FILE_BYTES = 64 * 2 ** 20;

export function loadCounterexample(path: string): Counterexample {
  let text: string;
  try {
    text = readBounded(path, MAX_FILE_BYTES, 'a counterexample file');
  } catch (e) {
    if (e instanceof ReadError) throw new CounterexampleError(e.message);
    throw e;
  }
  return parseCounterexample(text);
}
