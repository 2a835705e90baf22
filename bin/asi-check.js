#!/usr/bin/env node
// Runs the TypeScript CLI through tsx, so that `npx asi-check` works from a clone without a build.
import { register } from 'tsx/esm/api';

register();
// `asi-check list | head` closes the pipe early; that is not an error, and nothing is left to say.
process.stdout.on('error', (e) => process.exit(e.code === 'EPIPE' ? 0 : 2));
const { main } = await import('../src/cli.ts');
// An exit code, not process.exit(): stdout still drains into a pipe after main() returns.
process.exitCode = await main(process.argv.slice(2));
