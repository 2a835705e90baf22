#!/usr/bin/env node
// Runs the TypeScript CLI through tsx, so that `npx asi-check` works from a clone without a build.
import { register } from 'tsx/esm/api';

register();
// A reader that stops early (`| head -1`) closes the pipe. That is no error: what is left to print
// is dropped, and the run goes on to its verdict, whose exit status a script with pipefail reads.
for (const stream of [process.stdout, process.stderr]) stream.on('error', (e) => e.code === 'EPIPE' || process.exit(2));
const { main } = await import('../src/cli.ts');
// An exit code, not process.exit(): stdout still drains into a pipe after main() returns.
process.exitCode = await main(process.argv.slice(2));
