// Running `asi-check` for the CLI tests: in a child process, as a user would, where the test is
// about the process (signals, pipes, the bin script); otherwise in this process through main(),
// the function bin/asi-check.js calls, with stdout and stderr captured (a process start costs a
// second of CPU, mostly loading the model). NO_COLOR keeps output plain (vitest.config.ts sets it
// here too); a fast progress interval makes the non-terminal progress line appear within a short test.

import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { afterAll } from 'vitest';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { format } from 'node:util';
import { main } from '../src/cli.ts';

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

/** The environment startCli gives a child, less what vitest.config.ts already sets. */
const CHILD_ENV = { ASI_CHECK_PROGRESS_MS: '100' } as const;
let queue: Promise<unknown> = Promise.resolve();

/**
 * Runs `entry` (main() of asi-check, or nightly()) here, with `env` added to process.env, and
 * returns its exit status and what it wrote to stdout and stderr, through the streams or the
 * console. One run at a time: the streams and process.exitCode are the process's own.
 */
export function inProcess(entry: () => Promise<number>, env: Readonly<Record<string, string>> = {}): Promise<Run> {
  const run = async (): Promise<Run> => {
    const out = { stdout: '', stderr: '' };
    const saved = { stdout: process.stdout.write, stderr: process.stderr.write, log: console.log, info: console.info, warn: console.warn, error: console.error };
    const savedEnv = Object.fromEntries(Object.keys({ ...CHILD_ENV, ...env }).map((k) => [k, process.env[k]]));
    Object.assign(process.env, CHILD_ENV, env);
    for (const name of ['stdout', 'stderr'] as const) {
      process[name].write = ((chunk: string | Uint8Array) => {
        out[name] += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString();
        return true;
      }) as typeof process.stdout.write;
    }
    console.log = console.info = (...a: unknown[]) => void (out.stdout += `${format(...a)}\n`);
    console.warn = console.error = (...a: unknown[]) => void (out.stderr += `${format(...a)}\n`);
    try {
      return { status: await entry(), ...out };
    } finally {
      Object.assign(console, { log: saved.log, info: saved.info, warn: saved.warn, error: saved.error });
      process.stdout.write = saved.stdout;
      process.stderr.write = saved.stderr;
      for (const [k, v] of Object.entries(savedEnv)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
      process.exitCode = undefined;
    }
  };
  const result = queue.then(run, run);
  queue = result.catch(() => undefined);
  return result;
}

/** `asi-check ARGS` through main(), in this process (see inProcess). */
export function runMain(...args: string[]): Promise<Run> {
  return inProcess(() => main(args));
}

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
