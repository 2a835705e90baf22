// The folder a fuzz run saves into, checked before the first walk: a path that cannot take a file
// (a file, a read-only or full file system, a missing parent, '') is refused up front, so no
// finding is shrunk only to be lost. A folder the run creates and leaves empty is removed again.

import { type Stats, mkdirSync, rmdirSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { removeStaleTemps } from '../counterexample.ts';

/** Where `fuzz` saves without --out: a folder of the run's own, never the committed corpus. */
export const DEFAULT_OUT_ROOT = 'asi-check-out';

export function defaultOutDir(seed: string): string {
  return join(DEFAULT_OUT_ROOT, seed.replace(/[^\w.-]/g, '_'));
}

export class OutDirError extends Error {}

/** What is at `path`, or undefined when nothing usable is (missing, or a path through a file: ENOTDIR). */
export function statOf(path: string): Stats | undefined {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}

export interface OutDir {
  readonly path: string;
  /** Removes the folders this run created, if nothing was saved in them. */
  release(): void;
}

/** About one saved counterexample: a full disk refuses it, an empty probe it might not. */
const PROBE_BYTES = 4096;

const reason = (e: unknown) => (e as Error).message.split(',')[0];

/**
 * `path` must be a writable folder or a new one in an existing folder; `createParents` is for the
 * default path, whose parent is asi-check's own.
 */
export function prepareOutDir(path: string, createParents: boolean): OutDir {
  if (path === '') throw new OutDirError("--out '': an empty path");
  const st = statOf(path);
  if (st && !st.isDirectory()) throw new OutDirError(`--out ${path}: not a directory`);
  const created: string[] = [];
  if (!st) {
    const parent = dirname(resolve(path));
    const pst = statOf(parent);
    if (!createParents && !pst?.isDirectory()) throw new OutDirError(`--out ${path}: ${pst ? 'its parent is not a directory' : 'no such parent directory'} (${parent})`);
    try {
      // mkdirSync returns the first folder it created: the one to remove if the run leaves it empty.
      const full = resolve(path);
      // Not recursive when the parent exists: a recursive mkdir under /proc (ENOENT with the parent there) never returns.
      const first = createParents ? mkdirSync(full, { recursive: true }) : (mkdirSync(full), full);
      for (let d = full; first && d.startsWith(first); d = dirname(d)) created.push(d);
    } catch (e) {
      throw new OutDirError(`--out ${path}: cannot create (${reason(e)})`);
    }
  }
  const release = () => {
    for (const d of created) {
      try {
        rmdirSync(d);
      } catch {
        return; // not empty: the run saved something there
      }
    }
  };
  const probe = join(path, `.asi-check-probe.${process.pid}.asi-tmp`);
  try {
    writeFileSync(probe, Buffer.alloc(PROBE_BYTES));
  } catch (e) {
    release();
    throw new OutDirError(`--out ${path}: cannot write (${reason(e)})`);
  } finally {
    try {
      unlinkSync(probe);
    } catch {
      // never written
    }
  }
  removeStaleTemps(path);
  return { path, release };
}
