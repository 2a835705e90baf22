// Running `asi-check` for the CLI tests: in a child process, as a user would, where the test is
// about the process (signals, pipes, the bin script); otherwise in this process through main(),
// the function bin/asi-check.js calls, with stdout and stderr captured (a process start costs a
// second of CPU, mostly loading the model). NO_COLOR keeps output plain (vitest.config.ts sets it
// here too); a fast progress interval makes the non-terminal progress line appear within a short test.

import { type ChildProcess, execFile, spawn } from 'node:child_process';
import type { Run } from './in-process.ts';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { afterAll } from 'vitest';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { main } from '../src/cli.ts';
import { inProcess } from './in-process.ts';
import type { BatchCase, BatchResult } from './cli-batch.ts';

export const root = join(import.meta.dirname, '..');
const bin = join(root, 'bin', 'asi-check.js');
/** `node --import tsx` resolves tsx from the working directory; a test may run elsewhere. */
export const TSX = ['--import', pathToFileURL(join(root, 'node_modules', 'tsx', 'dist', 'loader.mjs')).href];

/** NO_COLOR: plain output (vitest.config.ts sets it for in-process runs); a progress line within a short test. */
const CHILD_ENV = { NO_COLOR: '1', ASI_CHECK_PROGRESS_MS: '100' } as const;

export interface SpawnOptions {
  readonly cwd?: string;
  readonly env?: Readonly<Record<string, string>>;
  /** A script to run with tsx instead of bin/asi-check.js. */
  readonly script?: string;
}

export type { Run } from './in-process.ts';

export interface Running {
  readonly child: ChildProcess;
  /** Everything written to stdout so far. */
  stdout(): string;
  /** Resolves once stdout contains `text`; rejects if the process ends first. */
  waitFor(text: string): Promise<void>;
  readonly done: Promise<Run>;
}

export function startCli(args: readonly string[], o: SpawnOptions = {}): Running {
  const entry = o.script ? [...TSX, o.script] : [bin];
  const child = spawn(process.execPath, [...entry, ...args], { cwd: o.cwd ?? root, env: { ...process.env, ...CHILD_ENV, ...o.env } });
  let stdout = '';
  let stderr = '';
  const waiters: { text: string; resolve: () => void }[] = [];
  child.stdout!.on('data', (d: Buffer) => {
    stdout += d;
    for (const w of waiters.filter((w) => stdout.includes(w.text))) w.resolve();
  });
  child.stderr!.on('data', (d: Buffer) => (stderr += d));
  const done = new Promise<Run>((resolve) => child.on('close', (status) => resolve({ status, stdout, stderr })));
  return {
    child,
    stdout: () => stdout,
    waitFor: (text) =>
      stdout.includes(text)
        ? Promise.resolve()
        : new Promise((resolve, reject) => {
            waiters.push({ text, resolve });
            void done.then((r) => reject(new Error(`exited ${r.status} before printing '${text}':\n${r.stdout}\n${r.stderr}`)));
          }),
    done,
  };
}

/**
 * Command lines through main() or nightly(), all in one child process (test/cli-batch.ts), each in
 * its own working directory: for cases about the working directory, which a vitest worker thread
 * cannot change, at the cost of one process start for the lot.
 */
export async function runBatch(cases: readonly BatchCase[]): Promise<BatchResult[]> {
  const io = freshDir('batch');
  try {
    writeFileSync(join(io, 'cases.json'), JSON.stringify(cases));
    await promisify(execFile)(process.execPath, [...TSX, join(root, 'test', 'cli-batch.ts'), join(io, 'cases.json'), join(io, 'results.json')], { cwd: root, env: { ...process.env, ...CHILD_ENV } });
    return JSON.parse(readFileSync(join(io, 'results.json'), 'utf8')) as BatchResult[];
  } finally {
    rmSync(io, { recursive: true, force: true });
  }
}

export function runCli(...args: string[]): Promise<Run> {
  return startCli(args).done;
}

/** `asi-check ARGS` through main(), in this process (see inProcess). */
export function runMain(...args: string[]): Promise<Run> {
  return inProcess(() => main(args), { env: CHILD_ENV });
}

export { inProcess };

export function freshDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `asi-${prefix}-`));
}

/**
 * A maker of fresh directories under the OS temp dir, removed after the calling test file's tests.
 * Call it while the file is collected: that is when its afterAll can be registered (this module is
 * loaded once for all the files of a worker when vitest does not isolate them).
 */
export function tempDirs(prefix: string): () => string {
  const made: string[] = [];
  afterAll(() => made.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));
  return () => {
    const d = freshDir(prefix);
    made.push(d);
    return d;
  };
}
