// Running a command's entry function (asi-check's main(), or nightly()) in this process with its
// exit status, stdout and stderr captured, as a child process would give them: shared by the CLI
// tests (test/cli-run.ts) and test/cli-batch.ts. Free of vitest, so a plain node process can load it.

import { format } from 'node:util';

export interface Run {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface InProcessOptions {
  /** Added to process.env for the run. */
  readonly env?: Readonly<Record<string, string>>;
  /** The working directory for the run (process.chdir: a worker thread cannot). */
  readonly cwd?: string;
}

let queue: Promise<unknown> = Promise.resolve();

/**
 * Runs `entry` and returns its exit status and what it wrote to stdout and stderr, through the
 * streams or the console. One run at a time: the streams, the environment, the working directory
 * and process.exitCode are the process's own, and each is put back afterwards.
 */
export function inProcess(entry: () => Promise<number>, o: InProcessOptions = {}): Promise<Run> {
  const run = async (): Promise<Run> => {
    const out = { stdout: '', stderr: '' };
    const saved = { stdout: process.stdout.write, stderr: process.stderr.write, log: console.log, info: console.info, warn: console.warn, error: console.error };
    const savedEnv = Object.fromEntries(Object.keys(o.env ?? {}).map((k) => [k, process.env[k]]));
    const savedCwd = process.cwd();
    Object.assign(process.env, o.env);
    for (const name of ['stdout', 'stderr'] as const) {
      process[name].write = ((chunk: string | Uint8Array) => {
        out[name] += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString();
        return true;
      }) as typeof process.stdout.write;
    }
    console.log = console.info = (...a: unknown[]) => void (out.stdout += `${format(...a)}\n`);
    console.warn = console.error = (...a: unknown[]) => void (out.stderr += `${format(...a)}\n`);
    try {
      if (o.cwd) process.chdir(o.cwd);
      return { status: await entry(), ...out };
    } finally {
      if (o.cwd) process.chdir(savedCwd);
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
