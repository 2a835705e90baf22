// Runs many command lines in one process, through the entry points bin/asi-check.js and
// `npm run fuzz:nightly` call (main() and nightly()), each in its own working directory with
// stdout and stderr captured: a process start costs about a second on this machine, a case here a
// few milliseconds. Usage: node --import tsx test/cli-batch.ts CASES.json RESULTS.json

import { readFileSync, writeFileSync } from 'node:fs';
import { main } from '../src/cli.ts';
import { nightly } from '../src/check/fuzz/nightly.ts';

export interface BatchCase {
  readonly tool: 'asi-check' | 'nightly';
  readonly args: readonly string[];
  readonly cwd: string;
  readonly env?: Readonly<Record<string, string>>;
}

export interface BatchResult {
  readonly status: number;
  readonly stdout: string;
  readonly stderr: string;
}

const [casesFile, resultsFile] = process.argv.slice(2);
const cases = JSON.parse(readFileSync(casesFile, 'utf8')) as BatchCase[];
const results: BatchResult[] = [];
const streams = { stdout: process.stdout, stderr: process.stderr } as const;
for (const c of cases) {
  const out = { stdout: '', stderr: '' };
  const writes = { stdout: streams.stdout.write, stderr: streams.stderr.write };
  for (const name of ['stdout', 'stderr'] as const) {
    streams[name].write = ((chunk: string | Uint8Array) => {
      out[name] += String(chunk);
      return true;
    }) as typeof process.stdout.write;
  }
  process.chdir(c.cwd);
  let status: number;
  try {
    status = c.tool === 'nightly' ? await nightly(c.args, { ...process.env, ...c.env }) : await main(c.args);
  } finally {
    streams.stdout.write = writes.stdout;
    streams.stderr.write = writes.stderr;
  }
  results.push({ status, ...out });
}
process.exitCode = 0;
writeFileSync(resultsFile, JSON.stringify(results));
