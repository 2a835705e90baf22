import type { Command } from 'commander';
import pc from 'picocolors';
import { INVARIANTS } from '../invariants/index.ts';
import { MUTANT_INFO } from '../model/mutants.ts';
import { OPTION_NAMES, PROFILES, optionOfDesign } from '../model/options.ts';
import { OP_KINDS } from '../model/ops.ts';
import { optionValues } from './usage.ts';

export function registerList(program: Command): void {
  program
    .command('list')
    .description('invariants, mutants, profiles, design options (for --option name=value) and op kinds')
    .action(() => {
      console.log(pc.bold('Invariants'));
      console.log(pc.dim('  (each judges both designs unless it names one)'));
      for (const i of INVARIANTS) console.log(`  ${pc.cyan(i.id.padEnd(24))} ${i.design ? `${pc.yellow(`[${i.design}]`)} ` : ''}${i.statement}\n  ${' '.repeat(24)} ${pc.dim(i.source)}`);
      console.log(pc.bold('Mutants'));
      const mutantWidth = Math.max(...Object.keys(MUTANT_INFO).map((m) => m.length));
      for (const [m, info] of Object.entries(MUTANT_INFO)) console.log(`  ${pc.cyan(m.padEnd(mutantWidth))} ${info.where} ${pc.dim(`(${info.expect})`)}`);
      console.log(pc.bold('Profiles'));
      for (const [p, info] of Object.entries(PROFILES)) console.log(`  ${pc.cyan(p.padEnd(12))} ${pc.yellow(`[${info.design}]`)} ${info.description}`);
      console.log(pc.bold('Design options') + pc.dim(" (--option name=value; the value in each profile of the option's design)"));
      const accepts = (name: (typeof OPTION_NAMES)[number]) => optionValues(name).join('|');
      const width = Math.max(...OPTION_NAMES.map((n) => accepts(n).length));
      for (const name of OPTION_NAMES) {
        const values = Object.entries(PROFILES)
          .filter(([, info]) => optionOfDesign(name, info.design))
          .map(([p, info]) => `${p} ${String(info.options[name])}`)
          .join(', ');
        console.log(`  ${pc.cyan(name.padEnd(24))} ${accepts(name).padEnd(width)} ${pc.dim(values)}`);
      }
      console.log(pc.bold('Op kinds'));
      console.log(`  ${OP_KINDS.join(', ')}`);
    });
}
