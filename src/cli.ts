// The asi-check command. This first slice lists the catalogue and replays a saved counterexample;
// fuzz, mutants and HTML reports come with issue 5.

import { Command } from 'commander';
import pc from 'picocolors';
import { INVARIANTS } from './invariants/index.ts';
import { MUTANT_INFO } from './model/mutants.ts';
import { PROFILES } from './model/options.ts';
import { OP_KINDS } from './model/ops.ts';
import { CounterexampleError, loadCounterexample } from './check/counterexample.ts';
import { runOps, traceLines } from './check/run.ts';

const program = new Command('asi-check').description('model-based invariant checker for Linux Kernel Address Space Isolation (RFC v2)').version('0.1.0');

program
  .command('list')
  .description('invariants, mutants, profiles and op kinds')
  .action(() => {
    console.log(pc.bold('Invariants'));
    for (const i of INVARIANTS) console.log(`  ${pc.cyan(i.id.padEnd(24))} ${i.statement}\n  ${' '.repeat(24)} ${pc.dim(i.source)}`);
    console.log(pc.bold('Mutants'));
    for (const [m, info] of Object.entries(MUTANT_INFO)) console.log(`  ${pc.cyan(m.padEnd(28))} ${info.where} ${pc.dim(`(${info.expect})`)}`);
    console.log(pc.bold('Profiles'));
    for (const [p, info] of Object.entries(PROFILES)) console.log(`  ${pc.cyan(p.padEnd(8))} ${info.description}`);
    console.log(pc.bold('Op kinds'));
    console.log(`  ${OP_KINDS.join(', ')}`);
  });

program
  .command('replay')
  .description('re-run a saved counterexample and print its numbered trace; exit 1 if it still reproduces')
  .argument('<file>', 'a counterexample JSON file')
  .action((file: string) => {
    let c;
    try {
      c = loadCounterexample(file);
    } catch (e) {
      if (e instanceof CounterexampleError) {
        console.error(`asi-check: ${file}: ${e.message}`);
        process.exit(2);
      }
      throw e;
    }
    console.log(pc.bold(c.title));
    console.log(pc.dim(`config: ${JSON.stringify(c.config)}`));
    for (const line of traceLines(c.config, c.ops)) console.log(line.startsWith('  VIOLATION') ? pc.red(line) : line);
    const failure = runOps(c.config, c.ops).failure;
    const reproduced = failure?.violations.some((v) => v.invariant === c.invariant) ?? false;
    console.log(reproduced ? pc.red(`reproduces ${c.invariant}`) : pc.green(`no longer reproduces ${c.invariant}`));
    process.exit(reproduced ? 1 : 0);
  });

program.exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2));
program.parse();
