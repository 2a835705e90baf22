// Saved counterexamples: format version 5 (versions 1 to 4 still read). The op list is the source of truth
// for replay; the rest says what it reproduced, under which configuration, which asi-check saved it,
// and how it was found.
//
// Version 1 (asi-check 0.1) has no asiCheck field, and its ops ran on the memory of 0.1: kmalloc on
// pages of its own unless `kernel.slab`, no memcg, no vmemmap, vfree flushing at once
// (KernelConfig.layout 1). The loader gives a version-1 file's configuration `layout: 1`, so that its
// ops replay on that memory; its file name says the configuration by 0.1's words
// (configLabel(config, 1)), where version 2 says `layout=1`. Version 3 adds one thing: an op may
// carry a `race` (another CPU's op run while it is in flight, Op.race); earlier versions have none.
// Version 4 adds `on` and `intr` to ASI API calls (the CPU whose code makes the call, and events at
// its points; `intr` needs `on`); earlier versions have neither, and an older asi-check, which would
// run such a call on no CPU, refuses the file. Version 5 adds `atomic` to kmalloc (GFP_ATOMIC, under
// a lock with IRQs off), which an older asi-check would replay as GFP_KERNEL.

import { existsSync, mkdirSync, readdirSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { type Op, formatOp, validateOp } from '../model/ops.ts';
import { type Config, type KernelConfig, API_CALLERS, geometryOf } from '../model/system.ts';
import { isProfileName, OPTION_NAMES, OVERLAP_POLICIES, PROFILES, RFC_V2_OPTIONS } from '../model/options.ts';
import { isMutantName, MUTANT_INFO } from '../model/mutants.ts';
import { invariantById } from '../invariants/index.ts';
import { GEOMETRIES } from '../model/mm/geometry.ts';
import { ASI_CHECK_VERSION } from './version.ts';
import { ReadError, readBounded } from './read-file.ts';

export const FORMAT = 'asi-check-counterexample';
export const FORMAT_VERSION = 5;
/** The format versions this asi-check reads. */
const READS = [1, 2, 3, 4, 5] as const;

export interface Counterexample {
  readonly format: typeof FORMAT;
  readonly version: (typeof READS)[number];
  /** The asi-check that saved it (absent in version 1: asi-check 0.1). */
  readonly asiCheck?: string;
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
  return { format: FORMAT, version: FORMAT_VERSION, asiCheck: ASI_CHECK_VERSION, title, invariant, message, config, ops, trace: ops.map((op) => formatOp(g, op)), ...(found ? { found } : {}) };
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
 * The kernel configurations, each as one word: what a file name says after the profile, and what
 * `--kernel` takes. `slab` and `layout=1` are for asi-check 0.1's memory, where slab caches were off
 * by default (KernelConfig.layout).
 */
export const KERNEL_ITEMS: Readonly<Record<string, KernelConfig>> = {
  'thp=off': { thp: false },
  'kernel-thread': { apiCaller: 'kernel-thread' },
  'slab=off': { slab: false },
  nokmem: { kmemcg: false },
  'pml=off': { pml: false },
  'layout=1': { layout: 1 },
  slab: { slab: true },
};

/** Each memory layout's kernel: a word is said only where a configuration differs from it. */
const KERNEL_DEFAULTS: Record<1 | 2, KernelConfig> = {
  1: { thp: true, apiCaller: 'user-task', slab: false },
  2: { thp: true, apiCaller: 'user-task', slab: true, kmemcg: true, pml: true },
};

/**
 * The words a kernel configuration is made of, in KERNEL_ITEMS order, as a file of format `version`
 * names it: version 1 named asi-check 0.1's layout by omission.
 */
export function kernelWords(kernel: KernelConfig | undefined, version: number = FORMAT_VERSION): string[] {
  const layout = kernel?.layout ?? 2;
  const defaults: KernelConfig = { ...KERNEL_DEFAULTS[layout], ...(version === 1 ? { layout: 1 } : {}) };
  return Object.entries(KERNEL_ITEMS)
    .filter(([, item]) => Object.entries(item).every(([k, v]) => kernel?.[k as keyof KernelConfig] === v && defaults[k as keyof KernelConfig] !== v))
    .map(([word]) => word);
}

export function configLabel(config: Config, version: number = FORMAT_VERSION): string {
  const base = { ...PROFILES[config.profile].options, ...(config.mutant ? MUTANT_INFO[config.mutant].options : {}) };
  const set = OPTION_NAMES.filter((k) => config.options?.[k] !== undefined && config.options[k] !== base[k]).map((k) =>
    typeof config.options![k] === 'boolean' ? (config.options![k] ? k : `no-${k}`) : `${k}=${String(config.options![k])}`,
  );
  const who = [config.mutant ? `mutant-${config.mutant}` : config.profile, ...kernelWords(config.kernel, version)].join('+');
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

function validateConfig(x: unknown, version: (typeof READS)[number]): Config {
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
  if (c.kernel !== undefined) validateKernelConfig(c.kernel, version);
  const config = c as unknown as Config;
  return version === 1 ? { ...config, kernel: { ...config.kernel, layout: 1 } } : config;
}

/**
 * The kernel settings each format version knows: version 1 had thp, apiCaller and slab, and the
 * layout the loader gives it (so that a loaded file, written back as it is, loads again).
 */
const KERNEL_SETTINGS_2 = ['thp', 'apiCaller', 'slab', 'kmemcg', 'pml', 'layout'];
const KERNEL_SETTINGS: Record<(typeof READS)[number], readonly string[]> = { 1: ['thp', 'apiCaller', 'slab', 'layout'], 2: KERNEL_SETTINGS_2, 3: KERNEL_SETTINGS_2, 4: KERNEL_SETTINGS_2, 5: KERNEL_SETTINGS_2 };

function validateKernelConfig(x: unknown, version: (typeof READS)[number]): void {
  if (typeof x !== 'object' || x === null) throw new CounterexampleError('kernel is not an object');
  for (const [k, v] of Object.entries(x)) {
    if (!KERNEL_SETTINGS[version].includes(k)) throw new CounterexampleError(`unknown kernel setting ${JSON.stringify(k)} (format version ${version})`);
    if (k === 'apiCaller') {
      if (!(API_CALLERS as readonly unknown[]).includes(v)) throw new CounterexampleError(`unknown kernel.apiCaller ${JSON.stringify(v)}`);
    } else if (k === 'layout') {
      if (v !== 1) throw new CounterexampleError(`kernel.layout must be 1 (asi-check 0.1's memory) or absent, got ${JSON.stringify(v)}`);
    } else if (typeof v !== 'boolean') throw new CounterexampleError(`kernel.${k} must be a boolean`);
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
  const version = READS.find((v) => v === o.version);
  if (version === undefined) throw new CounterexampleError(`format version ${JSON.stringify(o.version)} is not supported (this asi-check, ${ASI_CHECK_VERSION}, reads versions ${READS.join(', ')})`);
  if (version > 1 && typeof o.asiCheck !== 'string') throw new CounterexampleError(`asiCheck must be the version of the asi-check that saved the file, got ${o.asiCheck === undefined ? 'none' : JSON.stringify(o.asiCheck)}`);
  if (typeof o.invariant !== 'string' || !invariantById(o.invariant)) throw new CounterexampleError(`unknown invariant ${JSON.stringify(o.invariant)}`);
  for (const field of ['title', 'message'] as const) {
    if (typeof o[field] !== 'string') throw new CounterexampleError(`${field} must be a string, got ${o[field] === undefined ? 'none' : JSON.stringify(o[field])}`);
  }
  const config = validateConfig(o.config, version);
  if (!Array.isArray(o.ops) || o.ops.length === 0) throw new CounterexampleError('ops must be a non-empty array');
  o.ops.forEach((op, i) => {
    const racer = typeof op === 'object' && op !== null ? (op as { race?: { op?: unknown } }).race?.op : undefined;
    const err = validateOp(op) ?? newerField(op, 'race', 3, version) ?? newerField(op, 'on', 4, version) ?? newerField(op, 'atomic', 5, version) ?? newerField(racer, 'atomic', 5, version);
    if (err) throw new CounterexampleError(`op ${i + 1}: ${err}`);
  });
  return { ...(o as unknown as Counterexample), config };
}

/** An op field a format version before `since` did not have. */
function newerField(op: unknown, field: string, since: number, version: number): string | undefined {
  return version < since && typeof op === 'object' && op !== null && field in op ? `${field} needs format version ${since}, the file says ${version}` : undefined;
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
