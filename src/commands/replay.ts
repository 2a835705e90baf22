// `asi-check replay`: re-runs a saved counterexample or a seeded fuzz walk and prints the numbered
// trace with each step's state diff; `--html` also writes the report as one HTML page.

import type { Command } from 'commander';
import pc from 'picocolors';
import { CounterexampleError, loadCounterexample } from '../check/counterexample.ts';
import { ASI_CHECK_VERSION } from '../check/version.ts';
import { replayCommand, stepProgress } from '../check/fuzz/progress.ts';
import { type RunOptions, type RunResult, failurePlace, runOps } from '../check/run.ts';
import { DEFAULT_WALK_STEPS, runSeededWalk } from '../check/seeded.ts';
import type { Config } from '../model/system.ts';
import { REPORT_HEAD, type ReportHeader, renderHtml } from '../report/html.ts';
import { type Replay, recordReplay } from '../report/record.ts';
import { replayLines } from '../report/text.ts';
import type { CheckMode } from '../invariants/index.ts';
import { prepareOutFile } from './output.ts';
import { type ConfigFlags, CHECK_FLAG_HELP, EXIT_CLEAN, EXIT_VIOLATION, configFromFlags, intIn, parseCheckMode, printable, usageError, configOptions } from './usage.ts';

interface ReplayFlags extends ConfigFlags {
  readonly seed?: string;
  readonly steps: number;
  readonly html?: string;
  readonly check: CheckMode;
}

/** What is replayed: a run to record, and how to judge its outcome. */
interface Subject {
  readonly title: string;
  readonly source: string;
  readonly config: Config;
  /** Ops the run will take at most, for the progress line. */
  readonly length: number;
  readonly run: (opts: RunOptions) => RunResult;
  readonly recorded?: { readonly invariant: string; readonly message: string };
  /** A file's: the asi-check that saved it, and the format version it was saved in. */
  readonly saved?: { readonly by: string; readonly version: number };
}

/** asi-check 0.1 wrote format 1, which names no version. */
const FORMAT_1_WRITER = '0.1';

/** Flags that only shape a seeded walk; a file carries its own configuration. */
const WALK_FLAGS = ['steps', 'profile', 'mutant', 'geometry', 'cpus', 'option', 'kernel'] as const;

function fromFile(file: string): Subject {
  let c;
  try {
    c = loadCounterexample(file);
  } catch (e) {
    if (e instanceof CounterexampleError) usageError(`${file}: ${e.message}`);
    throw e;
  }
  const saved = { by: c.asiCheck ?? FORMAT_1_WRITER, version: c.version };
  return { title: c.title, source: file, config: c.config, length: c.ops.length, run: (opts) => runOps(c.config, c.ops, { ...opts, stopOn: c.invariant }), recorded: { invariant: c.invariant, message: c.message }, saved };
}

function fromSeed(seed: string, f: ReplayFlags): Subject {
  const config = configFromFlags(f);
  return { title: `seeded walk ${seed}`, source: replayCommand(seed, f.steps, config), config, length: f.steps, run: (opts) => runSeededWalk(config, seed, f.steps, undefined, opts) };
}

/** Whether the run reproduces, and one sentence saying so. */
function judge(s: Subject, r: Replay): { reproduced: boolean; verdict: string } {
  const found = r.failure?.violations.map((v) => v.invariant) ?? [];
  const where = r.failure ? ` ${failurePlace(r.failure)}` : '';
  if (!s.recorded) {
    return found.length
      ? { reproduced: true, verdict: `violates ${found.join(', ')}${where}` }
      : { reproduced: false, verdict: `no violation in ${r.steps.length} steps (profile ${s.config.profile})` };
  }
  if (found.includes(s.recorded.invariant)) return { reproduced: true, verdict: `reproduces ${s.recorded.invariant}${where}` };
  const instead = found.length ? `; the run violates ${found.join(', ')}${where} instead` : '';
  // An old file that no longer reproduces says where it came from: the model may have changed since.
  const older = s.saved && s.saved.by !== ASI_CHECK_VERSION ? `; the file was saved by asi-check ${s.saved.by}, this is ${ASI_CHECK_VERSION}` : '';
  return { reproduced: false, verdict: `the recorded ${s.recorded.invariant} no longer reproduces under profile ${s.config.profile}${instead}${older}` };
}

/** The run, telling stderr how far it is when it takes long (a 200,000-op file takes minutes). */
function withProgress(s: Subject, check: CheckMode): Subject['run'] {
  return (opts) => {
    let done = 0;
    const tick = stepProgress((seconds) => `replay: step ${done} of ${s.length}, ${seconds.toFixed(0)} s`);
    return s.run({
      ...opts,
      check,
      onStep: (sys, rec, i) => {
        opts.onStep?.(sys, rec, i);
        done = i + 1;
        tick();
      },
    });
  };
}

export function registerReplay(program: Command): void {
  const replay = program
    .command('replay')
    .description('re-run a saved counterexample or a seeded walk, print its numbered trace with state diffs; exit 1 if it reproduces')
    .argument('[file]', 'a counterexample JSON file')
    .option('--seed <seed>', 'instead of a file: the walk seed that `asi-check fuzz` printed')
    .option('--steps <n>', 'with --seed: ops in the walk', intIn(1, 100_000), DEFAULT_WALK_STEPS);
  configOptions(replay, 'with --seed: ')
    .option('--html <out.html>', 'also write a self-contained HTML report')
    .option('--check <mode>', CHECK_FLAG_HELP, parseCheckMode, 'incremental' as CheckMode)
    .action((file: string | undefined, flags: ReplayFlags, cmd: Command) => {
      if ((file === undefined) === (flags.seed === undefined)) usageError('replay takes a counterexample file or --seed, not both or neither');
      const stray = WALK_FLAGS.filter((f) => cmd.getOptionValueSource(f) === 'cli');
      if (file !== undefined && stray.length) usageError(`${file}: --${stray.join(', --')} only apply to --seed (a file carries its own configuration)`);
      // Refused before the run, so a bad path costs nothing and leaves nothing.
      const report = flags.html === undefined ? undefined : prepareOutFile(flags.html, '--html', REPORT_HEAD);
      const subject = file !== undefined ? fromFile(file) : fromSeed(flags.seed!, flags);
      const replay = recordReplay(subject.config, withProgress(subject, flags.check), subject.recorded ? [subject.recorded.message] : []);
      const { reproduced, verdict } = judge(subject, replay);
      console.log(pc.bold(printable(subject.title)));
      console.log(pc.dim(`source: ${printable(subject.source)}`));
      console.log(pc.dim(`config: ${JSON.stringify(subject.config)}`));
      if (subject.saved) console.log(pc.dim(`saved by asi-check ${printable(subject.saved.by)} (format ${subject.saved.version}${subject.saved.version === 1 ? ", replayed on 0.1's memory: kernel layout 1" : ''})`));
      for (const line of replayLines(replay)) console.log(line);
      console.log(reproduced ? pc.red(verdict) : pc.green(verdict));
      if (report) {
        const header: ReportHeader = { title: subject.title, verdict, reproduced, source: subject.source, ...(subject.recorded ? { recorded: subject.recorded } : {}) };
        report.write(renderHtml(header, replay));
        console.log(pc.dim(`report: ${report.path}`));
      }
      process.exitCode = reproduced ? EXIT_VIOLATION : EXIT_CLEAN;
    });
}
