// `asi-check triage FILE|DIR...`: the root cause of each saved counterexample, as the design options
// of `fixed` that make it pass (src/check/triage.ts), one line a file and a table by root cause.
// Exit 0 when every file is attributed, 1 when some file is explained by nothing in `fixed` (a new
// bug, or ops that no longer reproduce), 2 when a file cannot be read as a counterexample or a
// folder holds none.

import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import pc from 'picocolors';
import { type Counterexample, CounterexampleError, NotACounterexampleError, loadCounterexample } from '../check/counterexample.ts';
import { type Triage, causeLabel, fixCandidates, triageOps } from '../check/triage.ts';
import { stepProgress } from '../check/fuzz/progress.ts';
import { fsReason } from '../check/read-file.ts';
import { EXIT_CLEAN, EXIT_VIOLATION, printable, usageError } from './usage.ts';

interface TriageFlags {
  readonly json?: boolean;
}

interface Loaded {
  readonly files: readonly { readonly file: string; readonly c: Counterexample }[];
  /** JSON files found in folders that are not counterexamples (fuzz summaries), left out. */
  readonly passedOver: readonly string[];
}

function plural(n: number, one: string, many: string): string {
  return `${n} ${n === 1 ? one : many}`;
}

const passedOverNote = (n: number) => `${plural(n, 'JSON file that is not a counterexample', 'JSON files that are not counterexamples')} passed over`;

function load(file: string): Counterexample {
  try {
    return loadCounterexample(file);
  } catch (e) {
    if (e instanceof CounterexampleError) usageError(`${file}: ${e.message}`);
    throw e;
  }
}

/** The .json files in a folder and its subfolders, in path order, so the output is the same on every machine. */
function jsonFilesUnder(dir: string): string[] {
  try {
    return readdirSync(dir, { recursive: true, withFileTypes: true })
      .filter((d) => !d.isDirectory() && d.name.endsWith('.json'))
      .map((d) => join(d.parentPath, d.name))
      .sort();
  } catch (e) {
    usageError(`${dir}: cannot read (${fsReason(e)})`);
  }
}

/**
 * A file named is judged whatever it holds. A folder stands for the counterexamples in it and its
 * subfolders: downloaded nightly artifacts are a folder per shard, with the shard's JSON summary in
 * summary/, which is passed over; a damaged counterexample is not. A folder with nothing to judge is
 * bad input, not a clean result.
 */
function loadAll(paths: readonly string[]): Loaded {
  const files: { file: string; c: Counterexample }[] = [];
  const passedOver: string[] = [];
  for (const p of paths) {
    let st;
    try {
      st = statSync(p);
    } catch (e) {
      usageError(`${p}: cannot read (${fsReason(e)})`);
    }
    if (!st.isDirectory()) {
      files.push({ file: p, c: load(p) });
      continue;
    }
    const before = files.length;
    const skipped: string[] = [];
    for (const file of jsonFilesUnder(p)) {
      try {
        files.push({ file, c: loadCounterexample(file) });
      } catch (e) {
        if (e instanceof NotACounterexampleError) skipped.push(file);
        else if (e instanceof CounterexampleError) usageError(`${file}: ${e.message}`);
        else throw e;
      }
    }
    if (files.length === before) usageError(`${p}: no counterexample files in it or its subfolders${skipped.length ? ` (${passedOverNote(skipped.length)})` : ''}`);
    passedOver.push(...skipped);
  }
  return { files, passedOver };
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
    .argument('<paths...>', 'counterexample files, or folders of them (subfolders included; other JSON there is passed over)')
    .option('--json', 'print the results as JSON')
    .action((paths: string[], flags: TriageFlags) => {
      // Every file is read before any is run: a corrupt corpus fails at once, with nothing half-printed.
      const { files, passedOver } = loadAll(paths);
      const t0 = performance.now();
      // Each file is replayed once, then once or more per fix option: a large one takes minutes.
      const at = { file: '', index: 0, replays: 0, step: 0, steps: 0 };
      const tick = stepProgress((s) => `triage: file ${at.index} of ${files.length} (${printable(at.file)}), replay ${at.replays}, step ${at.step} of ${at.steps}, ${s.toFixed(0)} s`);
      const onStep = (_sys: unknown, _rec: unknown, i: number) => {
        if (i === 0) at.replays++;
        at.step = i + 1;
        tick();
      };
      const rows = files.map(({ file, c }, k) => {
        Object.assign(at, { file, index: k + 1, replays: 0, steps: c.ops.length });
        return { file, c, t: triageOps(c.config, c.ops, c.invariant, { onStep }) };
      });
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
        console.log(JSON.stringify({ files: rows.length, unattributed, passedOver, seconds: Number(seconds.toFixed(3)), results, summary }, null, 2));
      } else {
        const names = rows.map((r) => printable(r.file));
        const width = Math.max(...names.map((n) => n.length));
        rows.forEach(({ t }, i) => {
          const cause = attributed(t) ? pc.green(verdict(t)) : pc.red(verdict(t));
          console.log(`${names[i].padEnd(width)}  ${pc.bold(t.invariant.padEnd(24))} ${cause}`);
        });
        const skipped = passedOver.length ? ` (${passedOverNote(passedOver.length)})` : '';
        console.log(pc.bold(`\n${plural(rows.length, 'file', 'files')} in ${seconds.toFixed(2)} s, ${rows.length - unattributed} attributed, ${unattributed} not${skipped}:`));
        const causeWidth = Math.max(...[...byCause.keys()].map((k) => k.length));
        for (const [cause, r] of [...byCause].sort((a, b) => b[1].files - a[1].files || (a[0] < b[0] ? -1 : 1))) {
          console.log(`  ${cause.padEnd(causeWidth)}  ${String(r.files).padStart(3)}  ${[...r.invariants].sort().join(', ')}`);
        }
      }
      process.exitCode = unattributed ? EXIT_VIOLATION : EXIT_CLEAN;
    });
}
