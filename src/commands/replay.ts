import type { Command } from 'commander';
import pc from 'picocolors';
import { CounterexampleError, loadCounterexample } from '../check/counterexample.ts';
import { runOps, traceLines } from '../check/run.ts';
import { EXIT_CLEAN, EXIT_VIOLATION, usageError } from './usage.ts';

export function registerReplay(program: Command): void {
  program
    .command('replay')
    .description('re-run a saved counterexample and print its numbered trace; exit 1 if it still reproduces')
    .argument('<file>', 'a counterexample JSON file')
    .action((file: string) => {
      let c;
      try {
        c = loadCounterexample(file);
      } catch (e) {
        if (e instanceof CounterexampleError) usageError(`${file}: ${e.message}`);
        throw e;
      }
      console.log(pc.bold(c.title));
      console.log(pc.dim(`config: ${JSON.stringify(c.config)}`));
      for (const line of traceLines(c.config, c.ops)) console.log(line.startsWith('  VIOLATION') ? pc.red(line) : line);
      const failure = runOps(c.config, c.ops).failure;
      const reproduced = failure?.violations.some((v) => v.invariant === c.invariant) ?? false;
      console.log(reproduced ? pc.red(`reproduces ${c.invariant}`) : pc.green(`no longer reproduces ${c.invariant}`));
      process.exit(reproduced ? EXIT_VIOLATION : EXIT_CLEAN);
    });
}
