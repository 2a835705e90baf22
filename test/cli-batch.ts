// Runs many command lines in one process, through the entry points bin/asi-check.js and
// `npm run fuzz:nightly` call (main() and nightly()), each in its own working directory with
// stdout and stderr captured: a process start costs about a second on this machine, a case here a
// few milliseconds. Usage: node --import tsx test/cli-batch.ts CASES.json RESULTS.json

import { readFileSync, writeFileSync } from 'node:fs';
import { main } from '../src/cli.ts';
import { nightly } from '../src/commands/nightly.ts';
import { inProcess } from './in-process.ts';

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
for (const c of cases) {
  const r = await inProcess(() => (c.tool === 'nightly' ? nightly(c.args, { ...process.env, ...c.env }) : main(c.args)), { cwd: c.cwd });
  results.push({ status: r.status!, stdout: r.stdout, stderr: r.stderr });
}
process.exitCode = 0;
writeFileSync(resultsFile, JSON.stringify(results));
