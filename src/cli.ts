// The asi-check command: one module per subcommand under src/commands/.

import { Command } from 'commander';
import { registerFuzz } from './commands/fuzz.ts';
import { registerList } from './commands/list.ts';
import { registerMutants } from './commands/mutants.ts';
import { registerReplay } from './commands/replay.ts';
import { registerTriage } from './commands/triage.ts';
import { EXIT_USAGE, exitUsageOnCommanderError } from './commands/usage.ts';

// Subcommands inherit the exit override when they are created, so it is set first: bad usage of
// any command exits 2 with commander's one-line message.
const program = exitUsageOnCommanderError(
  new Command('asi-check').description('model-based invariant checker for Linux Kernel Address Space Isolation (RFC v2)').version('0.1.0'),
);

registerList(program);
registerReplay(program);
registerFuzz(program);
registerMutants(program);
registerTriage(program);

// `asi-check list | head` closes the pipe early; that is not an error.
process.stdout.on('error', (e: NodeJS.ErrnoException) => process.exit(e.code === 'EPIPE' ? 0 : EXIT_USAGE));

program.parse();
