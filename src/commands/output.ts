// Where a command writes: a folder of counterexamples (fuzz --out, explore --out, FUZZ_OUT) or one
// report (replay --html). Each is checked before the run, so a path that cannot take the output
// is refused before any work is spent on it, and nothing already there is replaced unless it is
// an earlier output of the same kind. Messages name the path as the user gave it: the flag or
// variable, or the default they did not choose.

import { type Stats, closeSync, lstatSync, mkdirSync, openSync, readSync, rmSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { createHash } from 'node:crypto';
import { removeStaleTemps, writeFileAtomically } from '../check/counterexample.ts';
import { fsReason, kindOf } from '../check/read-file.ts';
import { usageError } from './usage.ts';

/** Where `fuzz` saves without --out: a folder of the run's own, never the committed corpus. */
export const DEFAULT_OUT_ROOT = 'asi-check-out';

/** Longest seed kept as it is in the default folder's name; a longer one is cut and hashed. */
const MAX_SEED_NAME = 48;

/**
 * The folder `fuzz` saves in without --out: one path component under DEFAULT_OUT_ROOT whatever the
 * seed, never '.', '..' or hidden, and short enough for any file system. A seed that cannot be the
 * name as it is gets a hash of itself, so two such seeds still get two folders.
 */
export function defaultOutDir(seed: string): string {
  const word = seed.replace(/[^\w.-]/g, '_');
  if (/^\w/.test(word) && word.length <= MAX_SEED_NAME) return join(DEFAULT_OUT_ROOT, word);
  const hash = createHash('sha256').update(seed).digest('hex').slice(0, 12);
  return join(DEFAULT_OUT_ROOT, `${word.replace(/^[.-]+/, '').slice(0, MAX_SEED_NAME) || 'seed'}-${hash}`);
}

/** What is at `path`, or undefined when nothing usable is (missing, or a path through a file: ENOTDIR). */
export function statOf(path: string): Stats | undefined {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}

/** How the user named a path: with `flag` (a flag or an environment variable), or not at all (`given` false: the default). */
export interface PathSource {
  readonly flag: string;
  readonly given: boolean;
}

function named(path: string, s: PathSource): string {
  return s.given ? `${s.flag} ${path === '' ? "''" : path}` : `the default output folder ${path} (${s.flag} picks another)`;
}

export interface OutDir {
  readonly path: string;
  /** Removes the folders this run created, if nothing was saved in them. */
  release(): void;
}

/** About one saved counterexample: a full disk refuses it, an empty probe it might not. */
const PROBE_BYTES = 4096;

/**
 * `path` must be a writable folder or a new one in an existing folder; the default may be made
 * with its parents, which are asi-check's own.
 */
export function prepareOutDir(path: string, source: PathSource): OutDir {
  const name = named(path, source);
  if (path === '') usageError(`${name}: an empty path`);
  const st = statOf(path);
  if (st && !st.isDirectory()) usageError(`${name}: not a directory`);
  // The folders this run makes, deepest first: removed again if it leaves them empty.
  const created: string[] = [];
  const release = () => {
    for (const d of created) {
      try {
        rmdirSync(d);
      } catch {
        return; // not empty: the run saved something there
      }
    }
  };
  if (!st) {
    const full = resolve(path);
    const parent = dirname(full);
    const pst = statOf(parent);
    if (source.given && !pst?.isDirectory()) usageError(`${name}: ${pst ? 'its parent is not a directory' : 'no such parent directory'} (${parent})`);
    for (let d = full; !statOf(d) && d !== dirname(d); d = dirname(d)) created.push(d);
    try {
      // Not recursive when the parent exists: a recursive mkdir under /proc (ENOENT with the parent there) never returns.
      mkdirSync(full, { recursive: !source.given });
    } catch (e) {
      release();
      usageError(`${name}: cannot create (${fsReason(e)})`);
    }
  }
  const probe = join(path, `.asi-check-probe.${process.pid}.asi-tmp`);
  try {
    writeFileSync(probe, Buffer.alloc(PROBE_BYTES));
  } catch (e) {
    // A full disk fails the write after the file was made: it must go before its folder can.
    rmSync(probe, { force: true });
    release();
    usageError(`${name}: cannot write (${fsReason(e)})`);
  }
  rmSync(probe);
  removeStaleTemps(path);
  return { path, release };
}

export interface OutFile {
  readonly path: string;
  /** Writes the whole file at once (temp file + rename), so a reader never sees half of it. */
  write(text: string): void;
}

/** Whether the regular file at `path` begins with `head`; one that cannot be read does not. */
function beginsWith(path: string, head: string): boolean {
  const want = Buffer.from(head);
  const got = Buffer.alloc(want.length);
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return false;
  }
  try {
    return readSync(fd, got, 0, got.length, 0) === got.length && got.equals(want);
  } finally {
    closeSync(fd);
  }
}

/**
 * One report, given with `flag`: a new file in an existing folder, or an earlier report (a regular
 * file beginning with `head`), which is replaced. Anything else there (the input itself, another
 * file, a symbolic link, a FIFO, a device) is refused: the rename that writes the report would
 * replace it, not write into it.
 */
export function prepareOutFile(path: string, flag: string, head: string): OutFile {
  const name = named(path, { flag, given: true });
  if (path === '') usageError(`${name}: an empty path`);
  let st: Stats | undefined;
  try {
    st = lstatSync(path);
  } catch {
    st = undefined;
  }
  if (st?.isDirectory()) usageError(`${name}: is a directory`);
  if (st?.isSymbolicLink()) usageError(`${name}: a symbolic link; name the file itself`);
  if (st && !st.isFile()) usageError(`${name}: not a regular file (${kindOf(st)})`);
  if (st && !beginsWith(path, head)) usageError(`${name}: exists and is not an asi-check report; not replacing it`);
  const parent = statOf(dirname(path));
  if (!parent?.isDirectory()) usageError(`${name}: ${parent ? 'its parent is not a directory' : 'no such directory'} (${dirname(path)})`);
  return {
    path,
    write: (text) => {
      try {
        removeStaleTemps(dirname(path));
        writeFileAtomically(path, text);
      } catch (e) {
        usageError(`${name}: cannot write (${fsReason(e)})`);
      }
    },
  };
}
