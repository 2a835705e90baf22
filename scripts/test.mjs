#!/usr/bin/env node
// `npm test`: the typecheck (tsc --noEmit) and vitest side by side, not one after the other: tsc's
// few seconds of CPU fit in what vitest leaves idle while it starts, and npm test ends sooner. The
// arguments go to vitest; tsc's output is printed when both are done. Exit status: tsc's failure
// first, then vitest's.
import { spawn } from 'node:child_process';

const run = (cmd, args, stdio) =>
  new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio });
    let out = '';
    child.stdout?.on('data', (d) => (out += d));
    child.stderr?.on('data', (d) => (out += d));
    child.on('error', (e) => resolve({ status: 1, out: `${cmd}: ${e.message}\n` }));
    child.on('close', (status, signal) => resolve({ status: status ?? (signal ? 1 : 0), out }));
  });

const [tsc, vitest] = await Promise.all([
  run(process.execPath, ['node_modules/typescript/bin/tsc', '--noEmit'], ['ignore', 'pipe', 'pipe']),
  run(process.execPath, ['node_modules/vitest/vitest.mjs', 'run', ...process.argv.slice(2)], 'inherit'),
]);
process.stdout.write(tsc.status === 0 ? 'typecheck (tsc --noEmit): no errors\n' : `typecheck (tsc --noEmit) failed:\n${tsc.out}`);
process.exitCode = tsc.status || vitest.status;
