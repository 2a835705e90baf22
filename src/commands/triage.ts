// `asi-check triage FILE|DIR...`: the root cause of each saved counterexample, as the design options
// of `fixed` that make it pass (src/check/triage.ts), one line a file and a table by root cause.
// Exit 0 when every file is attributed, 1 when some file is explained by nothing in `fixed` (a new
// bug, or ops that no longer reproduce), 2 when a file cannot be read as a counterexample.

import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import pc from 'picocolors';
import { type Counterexample, CounterexampleError, loadCounterexample } from '../check/counterexample.ts';
import { type Triage, causeLabel, fixCandidates, triageOps } from '../check/triage.ts';
import { EXIT_CLEAN, EXIT_VIOLATION, usageError } from './usage.ts';

interface TriageFlags {
  readonly json?: boolean;
}

/** A directory stands for its .json files, in name order, so the output is the same on every machine. */
function expand(paths: readonly string[]): string[] {
  return paths.flatMap((p) => {
    const st = statSync(p, { throwIfNoEntry: false });
    if (!st) usageError(`${p}: no such file or directory`);
    return st.isDirectory() ? readdirSync(p).filter((f) => f.endsWith('.json')).sort().map((f) => join(p, f)) : [p];
  });
}

function load(file: string): Counterexample {
  try {
    return loadCounterexample(file);
  } catch (e) {
    if (e instanceof CounterexampleError) usageError(`${file}: ${e.message}`);
    throw e;
  }
}

/** "a or b": the causes are alternatives, each enough on its own. */
function verdict(t: Triage): string {
  if (!t.reproduces) return 'does not reproduce';
  return t.causes.length ? t.causes.map(causeLabel).join(' or ') : 'unexplained: no fix option of fixed makes it pass';
}

const attributed = (t: Triage) => t.reproduces && t.causes.length > 0;

export function registerTriage(program: Command): void {
  program
    .command('triage')
    .description('the root cause of each counterexample: the design options of `fixed` that make it pass; exit 1 if some file has none')
    .argument('<paths...>', 'counterexample files or directories of them')
    .option('--json', 'print the results as JSON')
    .action((paths: string[], flags: TriageFlags) => {
      // Every file is read before any is run: a corrupt corpus fails at once, with nothing half-printed.
      const files = expand(paths).map((file) => ({ file, c: load(file) }));
      const t0 = performance.now();
      const rows = files.map(({ file, c }) => ({ file, c, t: triageOps(c.config, c.ops, c.invariant) }));
      const seconds = (performance.now() - t0) / 1000;
      const byCause = new Map<string, { invariants: Set<string>; files: number }>();
      for (const { t } of rows) {
        const row = byCause.get(verdict(t)) ?? { invariants: new Set<string>(), files: 0 };
        row.invariants.add(t.invariant);
        row.files++;
        byCause.set(verdict(t), row);
      }
      const unattributed = rows.filter((r) => !attributed(r.t)).length;
      if (flags.json) {
        const results = rows.map(({ file, c, t }) => ({
          file,
          invariant: t.invariant,
          profile: c.config.profile,
          ...(c.config.mutant ? { mutant: c.config.mutant } : {}),
          // The options the file's own configuration still lacked: what triage tried.
          candidates: fixCandidates(c.config),
          reproduces: t.reproduces,
          causes: t.causes,
          rootCause: verdict(t),
        }));
        const summary = [...byCause].map(([rootCause, r]) => ({ rootCause, invariants: [...r.invariants].sort(), files: r.files }));
        console.log(JSON.stringify({ files: rows.length, unattributed, seconds: Number(seconds.toFixed(3)), results, summary }, null, 2));
      } else {
        const width = Math.max(...rows.map((r) => r.file.length));
        for (const { file, t } of rows) {
          const cause = attributed(t) ? pc.green(verdict(t)) : pc.red(verdict(t));
          console.log(`${file.padEnd(width)}  ${pc.bold(t.invariant.padEnd(24))} ${cause}`);
        }
        console.log(pc.bold(`\n${rows.length} files in ${seconds.toFixed(2)} s, ${rows.length - unattributed} attributed, ${unattributed} not:`));
        const causeWidth = Math.max(...[...byCause.keys()].map((k) => k.length));
        for (const [cause, r] of [...byCause].sort((a, b) => b[1].files - a[1].files || (a[0] < b[0] ? -1 : 1))) {
          console.log(`  ${cause.padEnd(causeWidth)}  ${String(r.files).padStart(3)}  ${[...r.invariants].sort().join(', ')}`);
        }
      }
      process.exitCode = unattributed ? EXIT_VIOLATION : EXIT_CLEAN;
    });
}
