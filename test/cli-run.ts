// Running the real `asi-check` in a child process, as a user would: shared by the CLI tests. NO_COLOR keeps output plain; a fast progress interval makes the non-terminal progress
// line appear within a short test.

import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { afterAll } from 'vitest';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

export const root = join(import.meta.dirname, '..');
const bin = join(root, 'bin', 'asi-check.js');
/** `node --import tsx` resolves tsx from the working directory; a test may run elsewhere. */
export const TSX = ['--import', pathToFileURL(join(root, 'node_modules', 'tsx', 'dist', 'loader.mjs')).href];

export interface SpawnOptions {
  readonly cwd?: string;
  readonly env?: Readonly<Record<string, string>>;
  /** A script to run with tsx instead of bin/asi-check.js. */
  readonly script?: string;
}

export interface Run {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

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
  const child = spawn(process.execPath, [...entry, ...args], { cwd: o.cwd ?? root, env: { ...process.env, NO_COLOR: '1', ASI_CHECK_PROGRESS_MS: '100', ...o.env } });
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

export function runCli(...args: string[]): Promise<Run> {
  return startCli(args).done;
}

export function freshDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `asi-${prefix}-`));
}

const temps: string[] = [];
// Registered while the importing test file is collected: its directories go when its tests are done.
afterAll(() => temps.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

/** A fresh directory under the OS temp dir, removed after the test file's tests. */
export function tempDir(prefix: string): string {
  const d = freshDir(prefix);
  temps.push(d);
  return d;
}
