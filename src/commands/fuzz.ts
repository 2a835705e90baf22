// `asi-check fuzz`: long seeded random walks on worker threads. Each violation is shrunk in its
// worker, deduplicated here by signature, and saved when new; Ctrl-C keeps everything found so far.

import { randomBytes } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { basename, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Command, InvalidArgumentError, Option } from 'commander';
import pc from 'picocolors';
import { DEFAULT_WALK_STEPS, walkSeed } from '../check/seeded.ts';
import { type Crash, type FuzzResult, type Shard, startFuzz } from '../check/fuzz/engine.ts';
import { CLI, coverageFigures, coverageTable, count, progressLine, rate, replayCommand, shellWord, startProgress, vacuousOps } from '../check/fuzz/progress.ts';
import { type Finding, loadKnown } from '../check/fuzz/store.ts';
import { MAX_SHRINKS_PER_KIND, missingObjects } from '../check/fuzz/walker.ts';
import { type Config, designOf } from '../model/system.ts';
import { onInterrupt } from './interrupt.ts';
import { DEFAULT_OUT_ROOT, defaultOutDir, prepareOutDir, statOf } from './output.ts';
import { type ConfigFlags, CHECK_FLAG_HELP, EXIT_CLEAN, EXIT_INTERNAL, EXIT_USAGE, EXIT_VACUOUS, EXIT_VIOLATION, configFromFlags, describeConfig, intIn, parseCheckMode, printable, usageError, configOptions } from './usage.ts';
import type { CheckMode } from '../invariants/index.ts';

/** The committed corpus: its bugs are known, so a run reports them as such, not as new. */
export const CORPUS_DIR = fileURLToPath(new URL('../../counterexamples', import.meta.url));

/** The time budget when neither --seconds nor --runs is given. */
export const DEFAULT_FUZZ_SECONDS = 60;
/** How often workers report their counts: often enough for a live line, rarely enough to cost nothing. */
const STATS_EVERY_MS = 200;

interface FuzzFlags extends ConfigFlags {
  readonly seconds?: number;
  readonly runs?: number;
  readonly steps: number;
  readonly seed?: string;
  readonly shard: Shard;
  readonly workers: number;
  readonly out?: string;
  readonly known: string[];
  readonly corpus: boolean;
  readonly json?: boolean;
  readonly keepGoing?: boolean;
  readonly check: CheckMode;
}

export function parseShard(value: string): Shard {
  const m = /^(\d+)\/(\d+)$/.exec(value);
  const [index, count] = m ? [Number(m[1]), Number(m[2])] : [0, 0];
  if (!m || count < 1 || index < 1 || index > count) throw new InvalidArgumentError(`expected i/n with 1 <= i <= n, got '${value}'`);
  return { index, count };
}

/** A random base seed when none is given; it is printed, so the run can be repeated. */
export function defaultSeed(): string {
  return randomBytes(4).toString('hex');
}

function shrinkNote(f: Finding): string {
  const v = f.first;
  return `${v.ops.length} ops (from ${v.rawLength}${v.argsSimplified ? `, ${v.argsSimplified} args simplified` : ''})`;
}

const newOrKnown = (f: Finding) => (f.isNew ? pc.red('NEW  ') : pc.yellow('known'));

const causeNote = (f: Finding) => f.rootCause ?? 'no known root cause';

/** The fixes --keep-going turned on before the finding: a seeded replay needs them, the saved file has them. */
function fixesNote(f: Finding): string {
  return f.first.fixes.length ? ` with ${f.first.fixes.join(', ')} on` : '';
}

/** A known root cause met by another invariant or in another function: the file that knew it. */
const shapeNote = (f: Finding) => (f.shapeOf ? `, a new shape of ${basename(f.shapeOf)}` : '');

/** The line printed as a finding is first seen. */
function findingLine(f: Finding): string {
  return `${newOrKnown(f)} ${pc.bold(f.invariant)} in ${f.first.fn} (${causeNote(f)}${shapeNote(f)}): ${shrinkNote(f)}, walk ${f.first.walkSeed}${fixesNote(f)} -> ${where(f)}`;
}

/** Each distinct root cause the run reached, in first-found order. */
function rootCauses(r: FuzzResult): string[] {
  return [...new Set(r.findings.flatMap((f) => (f.rootCause ? [f.rootCause] : [])))];
}

const where = (f: Finding) => f.file ?? pc.red(`NOT SAVED (${f.saveError}); the replay --seed line below re-creates it`);

function crashLine(c: Crash, steps: number, config: Config): string {
  const where = c.walkSeed ? `walk ${c.walkSeed} (${replayCommand(c.walkSeed, steps, config)})` : 'a worker';
  return pc.red(`CRASH in ${where}:\n${c.message}`);
}

function jsonSummary(seed: string, flags: FuzzFlags, config: Config, r: FuzzResult) {
  return {
    seed,
    config,
    shard: flags.shard,
    workers: flags.workers,
    walkSteps: flags.steps,
    budget: { seconds: flags.seconds, runs: flags.runs },
    walks: r.walks,
    steps: r.steps,
    seconds: Number(r.seconds.toFixed(3)),
    stepsPerSecond: rate(r.steps, r.seconds),
    interrupted: r.interrupted,
    coverage: { ...coverageFigures(r.coverage, designOf(config)), missingObjects: missingObjects(r.coverage), byKind: r.coverage },
    vacuous: vacuousOps(r.coverage, designOf(config)),
    walksCutShort: r.cutShort,
    repeats: r.repeats,
    rootCauses: rootCauses(r),
    violations: r.findings.map((f) => ({
      invariant: f.invariant,
      function: f.first.fn,
      rootCause: f.rootCause ?? null,
      shapeOf: f.shapeOf ?? null,
      options: f.config.options ?? {},
      signature: f.signature,
      file: f.file ?? null,
      ...(f.saveError ? { saveError: f.saveError } : {}),
      new: f.isNew,
      walkSeed: f.first.walkSeed,
      walks: f.walks,
      rawLength: f.first.rawLength,
      argsSimplified: f.first.argsSimplified,
      replay: replayCommand(f.first.walkSeed, flags.steps, f.config),
      ops: f.first.ops,
    })),
    crashes: r.crashes,
    perWorker: r.perWorker,
  };
}

function printSummary(seed: string, flags: FuzzFlags, config: Config, r: FuzzResult): void {
  const c = coverageFigures(r.coverage, designOf(config));
  console.log(
    pc.bold(`fuzz: ${count(r.walks)} walks, ${count(r.steps)} ops in ${r.seconds.toFixed(1)} s (${count(rate(r.steps, r.seconds))} steps/s)`) +
      `, ${flags.workers} workers, shard ${flags.shard.index}/${flags.shard.count}, seed ${seed}${r.interrupted ? pc.yellow(', interrupted') : ''}`,
  );
  console.log(`op kinds that succeeded ${c.kindsOk}/${c.kindsTotal}${c.neverSucceeded.length ? ` (never: ${c.neverSucceeded.join(', ')})` : ''}, outcomes ${c.outcomes}:`);
  for (const line of coverageTable(r.coverage, designOf(config))) console.log(line);
  const missing = missingObjects(r.coverage);
  console.log(`ops rejected for a missing object: ${count(missing.ops)} (${(100 * missing.share).toFixed(1)}%)`);
  if (r.cutShort) console.log(pc.dim(`the time budget ended ${r.cutShort} walk${r.cutShort === 1 ? '' : 's'} early, between two steps`));
  const fresh = r.findings.filter((f) => f.isNew).length;
  const hits = r.findings.reduce((n, f) => n + f.walks, 0);
  if (r.findings.length === 0) console.log(pc.green('violations: none'));
  else console.log(pc.red(`violations: ${r.findings.length} signature${r.findings.length === 1 ? '' : 's'} (${fresh} new, ${r.findings.length - fresh} known) in ${count(hits)} walks:`));
  for (const f of r.findings) {
    console.log(`  ${newOrKnown(f)} ${pc.bold(f.invariant)} in ${f.first.fn} (${causeNote(f)}${shapeNote(f)}): ${shrinkNote(f)}, ${count(f.walks)} walks`);
    if (f.file) console.log(`        ${CLI} replay ${shellWord(f.file)}`);
    else console.log(pc.red(`        NOT SAVED (${f.saveError})`));
    console.log(pc.dim(`        ${replayCommand(f.first.walkSeed, flags.steps, f.config)}`));
  }
  if (r.repeats) console.log(pc.dim(`  and ${count(r.repeats)} more violations not shrunk: their invariant, root cause and function had been shrunk ${MAX_SHRINKS_PER_KIND} times in that worker`));
  const causes = rootCauses(r);
  if (causes.length) console.log(`root causes reached (${causes.length}): ${causes.join(', ')}`);
  for (const crash of r.crashes) console.log(crashLine(crash, flags.steps, config));
  const note = vacuityNote(r, config);
  if (note) console.log(note);
}

/** Said whether or not the summary is JSON: a clean run that tested nothing must not pass for clean. */
function vacuityNote(r: FuzzResult, config: Config): string | undefined {
  const vacuous = vacuousOps(r.coverage, designOf(config));
  if (!vacuous.length || r.findings.length) return undefined;
  return pc.red(`vacuous run: ${vacuous.join(', ')} never succeeded, so no walk isolated anything and finding nothing proves nothing (exit ${EXIT_VACUOUS}); try longer walks (--steps)`);
}

/** Worst first: a crash, a finding that could not be saved, a violation, a run that tested nothing. */
function exitStatus(r: FuzzResult, config: Config): number {
  if (r.crashes.length) return EXIT_INTERNAL;
  if (r.findings.some((f) => f.saveError)) return EXIT_USAGE;
  if (r.findings.length) return EXIT_VIOLATION;
  return vacuousOps(r.coverage, designOf(config)).length ? EXIT_VACUOUS : EXIT_CLEAN;
}

async function fuzz(flags: FuzzFlags): Promise<void> {
  for (const dir of flags.known) if (!statOf(dir)?.isDirectory()) usageError(`--known ${dir}: not a directory`);
  const config = configFromFlags(flags);
  const seed = flags.seed ?? defaultSeed();
  const seconds = flags.seconds ?? (flags.runs === undefined ? DEFAULT_FUZZ_SECONDS : undefined);
  const out = prepareOutDir(flags.out ?? defaultOutDir(seed), { flag: '--out', given: flags.out !== undefined });
  const knownDirs = [...new Set([out.path, ...(flags.corpus ? [CORPUS_DIR] : []), ...flags.known].map((d) => resolve(d)))];
  const known = loadKnown(knownDirs);
  for (const line of known.unreadable) console.error(`asi-check: not counted as known: ${printable(line)}`);

  // Before the header: once a user sees the run start, Ctrl-C is asi-check's (the handler runs only
  // after this function reaches its await, when `progress` and `run` exist).
  let signals = 0;
  const stopInterrupts = onInterrupt((name) => {
    if (++signals === 1) {
      progress.note(pc.yellow(`${name}: finishing the walks in progress (and their shrinking); again to stop at once`));
      run.stop();
    } else void run.kill();
  });

  // With --json, stdout carries only the summary; what a person watches goes to stderr.
  const human = flags.json ? process.stderr : process.stdout;
  const budget = [seconds !== undefined ? `${seconds} s` : '', flags.runs !== undefined ? `${flags.runs} walks` : ''].filter(Boolean).join(' or ');
  human.write(
    `${pc.bold('asi-check fuzz')}: ${describeConfig(config)}, ` +
      `${flags.steps}-op walks, ${flags.workers} workers, shard ${flags.shard.index}/${flags.shard.count}, ${budget}, ${known.files.size} known root causes, new ones saved in ${out.path}/\n` +
      `seed ${pc.bold(seed)}: walk i of worker w is ${seed}/s${flags.shard.index}/w<w>/<i>, e.g. ${replayCommand(walkSeed(seed, flags.shard.index, 0, 0), flags.steps, config)}\n`,
  );

  // The line is first drawn on a timer, after `run` below exists.
  const progress = startProgress(human, () => {
    const findings = run.store.list();
    const fresh = findings.filter((f) => f.isNew).length;
    return progressLine({ seconds: run.elapsed(), walks: run.tally.walks, steps: run.tally.steps, newFindings: fresh, knownFindings: findings.length - fresh, coverage: run.tally.coverage(), design: designOf(config) });
  });

  const run = startFuzz(
    { config, base: seed, shard: flags.shard, workers: flags.workers, steps: flags.steps, seconds, runs: flags.runs, outDir: out.path, known, statsEveryMs: STATS_EVERY_MS, keepGoing: flags.keepGoing, check: flags.check },
    {
      onFinding: (f, firstThisRun) => firstThisRun && progress.note(findingLine(f)),
      onCrash: (c) => progress.note(crashLine(c, flags.steps, config)),
    },
  );
  const result = await run.result;
  stopInterrupts();
  progress.stop();
  out.release();

  if (flags.json) {
    console.log(JSON.stringify(jsonSummary(seed, flags, config, result), null, 2));
    const note = vacuityNote(result, config);
    if (note) console.error(note);
  } else printSummary(seed, flags, config, result);
  process.exitCode = exitStatus(result, config);
}

export function registerFuzz(program: Command): void {
  const cmd = program
    .command('fuzz')
    .description(`long seeded random walks on worker threads; each new violation is shrunk and saved; exit ${EXIT_VIOLATION} violation, ${EXIT_USAGE} bad usage or unwritable --out, ${EXIT_INTERNAL} the model crashed, ${EXIT_VACUOUS} vacuous (a core op never succeeded)`)
    .option('--seconds <n>', `time budget (default ${DEFAULT_FUZZ_SECONDS} when --runs is not given)`, intIn(1))
    .option('--runs <n>', 'walks to run in all (split across workers)', intIn(1))
    .option('--steps <n>', 'ops per walk', intIn(1, 100_000), DEFAULT_WALK_STEPS)
    .option('--seed <seed>', 'base seed of the run (default: random, printed)')
    .addOption(new Option('--shard <i/n>', 'run shard i of n: shards never share a walk').argParser(parseShard).default({ index: 1, count: 1 }, '1/1'))
    .option('--workers <k>', 'worker threads', intIn(1, 64), Math.min(2, availableParallelism()));
  configOptions(cmd)
    .option('--out <dir>', `where new counterexamples are saved (default: ./${DEFAULT_OUT_ROOT}/<seed>, removed if nothing is saved; \`--out counterexamples\` adds to the committed corpus)`)
    .addOption(new Option('--known <dir>', 'counterexamples here count as known too (repeatable)').argParser((dir: string, dirs: string[]) => [...dirs, dir]).default([], 'none'))
    .option('--no-corpus', 'do not count the committed counterexamples/ as known')
    .option('--keep-going', 'walk on past a violation whose root cause triage finds: turn its fix on and re-run the walk from its seed')
    .option('--json', 'print a JSON summary on stdout (progress goes to stderr)')
    .option('--check <mode>', CHECK_FLAG_HELP, parseCheckMode, 'incremental' as CheckMode)
    .action((flags: FuzzFlags) => fuzz(flags));
}
