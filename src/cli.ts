// The asi-check command: one module per subcommand under src/commands/. main() returns the exit
// status instead of exiting, so whatever is still queued on stdout (a long trace into a pipe)
// reaches the reader before the process ends.

import { Command, CommanderError } from 'commander';
import { registerExplore } from './commands/explore.ts';
import { registerFuzz } from './commands/fuzz.ts';
import { registerList } from './commands/list.ts';
import { registerMutants } from './commands/mutants.ts';
import { registerReplay } from './commands/replay.ts';
import { registerTriage } from './commands/triage.ts';
import { EXIT_CLEAN, EXIT_INTERNAL, EXIT_USAGE, UsageError, printable, throwOnCommanderError } from './commands/usage.ts';

function program(): Command {
  const p = throwOnCommanderError(
    new Command('asi-check').description('model-based invariant checker for Linux Kernel Address Space Isolation (RFC v2)').version('0.1.0'),
  );
  registerList(p);
  registerReplay(p);
  registerFuzz(p);
  registerMutants(p);
  registerTriage(p);
  registerExplore(p);
  return p;
}

/** Runs one command line (without `node asi-check`) and returns its exit status. */
export async function main(argv: readonly string[]): Promise<number> {
  process.exitCode = undefined;
  try {
    // Commander would print the whole help on stderr: one line says what is missing.
    if (argv.length === 0) throw new UsageError('a command is needed: list, replay, fuzz, mutants, triage or explore (asi-check --help)');
    await program().parseAsync(argv, { from: 'user' });
    return Number(process.exitCode ?? EXIT_CLEAN);
  } catch (e) {
    // Commander has already printed its one line (help and --version end here too, with 0).
    if (e instanceof CommanderError) return e.exitCode === 0 ? EXIT_CLEAN : EXIT_USAGE;
    if (e instanceof UsageError) {
      console.error(`asi-check: ${printable(e.message)}`);
      return EXIT_USAGE;
    }
    const err = e instanceof Error ? e : new Error(String(e));
    console.error(`asi-check: internal error (a bug in asi-check, please report it): ${err.message.split('\n')[0]}`);
    console.error(`reproduce with: npx asi-check ${argv.join(' ')}`);
    console.error(err.stack ?? '');
    return EXIT_INTERNAL;
  }
}
