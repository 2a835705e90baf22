// `asi-check explore`: every op sequence of a scope up to a depth, breadth first, each distinct
// state once. It ends in a shortest counterexample (saved, replayable) or in "no violation up to
// depth D (N states)"; a cap on states or memory, or Ctrl-C, ends it early with what was proved.

import { availableParallelism } from 'node:os';
import { type Command, InvalidArgumentError } from 'commander';
import pc from 'picocolors';
import { type ExploreProgress, type ExploreResult, type Shard, explore } from '../check/explore/search.ts';
import { type Merged, SHARD_FORMAT, SHARD_VERSION, type ShardSummary, ShardError, mergeShards, readShardSummaries, scopeDigest, writeShardSummary } from '../check/explore/shards.ts';
import { ASI_CHECK_VERSION } from '../check/version.ts';
import { basename, dirname, join } from 'node:path';
import { ScopeError, loadScope } from '../check/explore/scope-file.ts';
import type { Scope } from '../check/explore/scope.ts';
import { makeCounterexample, saveCounterexample } from '../check/counterexample.ts';
import { fsReason } from '../check/read-file.ts';
import { CLI, count, progressIntervalMs, shellWord, startProgress } from '../check/fuzz/progress.ts';
import { designOf, geometryOf } from '../model/system.ts';
import { formatOp } from '../model/ops.ts';
import { onInterrupt } from './interrupt.ts';
import { prepareOutDir } from './output.ts';
import { type ConfigFlags, EXIT_CLEAN, EXIT_USAGE, EXIT_VACUOUS, EXIT_VIOLATION, configFromFlags, describeConfig, intIn, printable, usageError, configOptions } from './usage.ts';

/** Where counterexamples go unless --out says otherwise. */
export const DEFAULT_EXPLORE_OUT = 'asi-check-out/explore';

interface ExploreFlags extends ConfigFlags {
  readonly depth?: number;
  readonly scope: string;
  readonly maxStates?: number;
  readonly maxMemory?: number;
  readonly seconds?: number;
  readonly workers: number;
  readonly preemptions?: number;
  readonly shard?: Shard;
  readonly splitDepth: number;
  readonly merge?: string[];
  readonly out?: string;
  readonly json?: boolean;
}

/** `--shard i/n`: part i (1-based) of n. */
function parseShard(value: string): Omit<Shard, 'splitDepth'> {
  const m = /^(\d+)\/(\d+)$/.exec(value);
  const [index, count] = m ? [Number(m[1]), Number(m[2])] : [0, 0];
  if (!m || count < 1 || count > 256 || index < 1 || index > count) throw new InvalidArgumentError('expected i/n with 1 <= i <= n <= 256, e.g. 2/4');
  return { index, count } as Shard;
}

const MiB = 2 ** 20;

function progressLine(p: ExploreProgress, seconds: number): string {
  return [
    `${seconds.toFixed(0)}s`,
    `proved to depth ${p.depthCompleted}`,
    `depth ${p.level + 1}: ${count(p.levelDone)}/${count(p.levelSize)} states expanded`,
    `${count(p.states)} states`,
    `${count(p.transitions)} transitions`,
    `${count(Math.round(p.states / Math.max(seconds, 1e-3)))} states/s`,
    `${Math.round(p.rssBytes / MiB)} MiB resident (heap ${Math.round(p.heapBytes / MiB)} MiB)`,
  ].join(pc.dim(' | '));
}

/** The figures of a finished search, as the summary and --json give them. */
export function exploreFigures(r: ExploreResult, seconds: number, heapBefore: number) {
  return {
    states: r.states,
    transitions: r.transitions,
    depthCompleted: r.depthCompleted,
    perLevel: r.perLevel,
    seconds: Number(seconds.toFixed(3)),
    statesPerSecond: Math.round(r.states / Math.max(seconds, 1e-3)),
    transitionsPerSecond: Math.round(r.transitions / Math.max(seconds, 1e-3)),
    heapBytes: r.heapBytes,
    rssBytes: r.rssBytes,
    bytesPerState: Math.max(0, Math.round((r.heapBytes - heapBefore) / r.states)),
  };
}

function stopNote(r: ExploreResult, flags: ExploreFlags, timedOut: boolean): string {
  const why =
    r.stopped === 'max-states'
      ? `--max-states ${flags.maxStates} reached`
      : r.stopped === 'max-memory'
        ? `--max-memory ${flags.maxMemory} MiB reached (${Math.round(r.rssBytes / MiB)} MiB resident)`
        : timedOut
          ? `--seconds ${flags.seconds} ran out`
          : 'interrupted';
  return `${why} while expanding depth ${r.level + 1} (${count(r.levelDone)} of ${count(r.levelSize)} states of depth ${r.level} expanded)`;
}

async function run(flags: ExploreFlags): Promise<void> {
  if (flags.merge) return merge(flags);
  if (flags.depth === undefined) usageError('--depth is needed (or --merge DIR... to take shards together)');
  const depth = flags.depth;
  const shard: Shard | undefined = flags.shard && { ...flags.shard, splitDepth: flags.splitDepth };
  if (shard && shard.splitDepth >= depth) usageError(`--split-depth ${shard.splitDepth} must be below --depth ${depth}: the shards would each search everything`);
  const config = configFromFlags(flags);
  let scope: Scope;
  try {
    scope = loadScope(flags.scope ?? (designOf(config) === 'asi-2025' ? 'asi25' : 'small'));
  } catch (e) {
    if (e instanceof ScopeError) usageError(e.message);
    throw e;
  }
  if (flags.preemptions !== undefined) {
    if (flags.preemptions > 0 && !scope.races) usageError(`--preemptions: scope ${scope.name} offers no races (the kvm scope does, or a scope file's "races")`);
    if (flags.preemptions > 0 && config.cpus < 2) usageError('--preemptions: a race needs two CPUs (--cpus 2 or more)');
    scope = { ...scope, preemptions: flags.preemptions };
  }
  const out = prepareOutDir(flags.out ?? DEFAULT_EXPLORE_OUT, { flag: '--out', given: flags.out !== undefined });
  const human = flags.json ? process.stderr : process.stdout;
  human.write(
    `${pc.bold('asi-check explore')}: ${describeConfig(config)}, scope ${printable(scope.name)} (${printable(scope.about)}), depth ${depth}${scope.preemptions ? `, at most ${scope.preemptions} preemptions a path` : ''}${shard ? `, shard ${shard.index} of ${shard.count} (split at depth ${shard.splitDepth})` : ''}, ${flags.workers} workers\n`,
  );
  let interrupted = false;
  const stopInterrupts = onInterrupt(() => (interrupted = true));
  const heapBefore = process.memoryUsage().heapUsed;
  const started = performance.now();
  // --seconds ends the search as Ctrl-C does, keeping the depth proved so far. A deadline read
  // between batches, not a timer: setTimeout holds at most 2^31-1 ms and fires at once past that.
  const deadline = flags.seconds === undefined ? Infinity : started + flags.seconds * 1000;
  const elapsed = () => (performance.now() - started) / 1000;
  let latest: ExploreProgress | undefined;
  const progress = startProgress(human, () => (latest ? progressLine(latest, elapsed()) : `${elapsed().toFixed(0)}s starting`));
  const r = await explore(
    config,
    scope,
    { depth, workers: flags.workers, ...(shard ? { shard } : {}), ...(flags.maxStates ? { maxStates: flags.maxStates } : {}), ...(flags.maxMemory ? { maxBytes: flags.maxMemory * MiB } : {}) },
    { shouldStop: () => interrupted || performance.now() >= deadline, onProgress: (p) => (latest = p), everyMs: Math.min(250, progressIntervalMs()) },
  );
  const seconds = elapsed();
  progress.stop();
  stopInterrupts();
  const timedOut = r.stopped === 'interrupted' && !interrupted;
  const figures = exploreFigures(r, seconds, heapBefore);
  // Nothing was judged: a clean result would claim what no transition showed.
  const vacuous = !r.violation && r.transitions === 0;

  let file: string | undefined;
  if (r.violation) {
    const v = r.violation.failure.violations[0];
    const cx = makeCounterexample(config, r.violation.ops, v.invariant, v.message, `${v.invariant} after ${r.violation.ops.map((o) => o.op).join(', ')} (shortest in scope ${scope.name})`, { by: 'explore' });
    try {
      file = saveCounterexample(out.path, cx);
    } catch (e) {
      out.release();
      usageError(`cannot save the counterexample in ${out.path} (${fsReason(e)})`);
    }
  }
  let summaryFile: string | undefined;
  if (shard) {
    const v = r.violation?.failure.violations[0];
    const summary: ShardSummary = {
      format: SHARD_FORMAT,
      version: SHARD_VERSION,
      asiCheck: ASI_CHECK_VERSION,
      config,
      scope: scope.name,
      scopeDigest: scopeDigest(scope),
      depth,
      shard,
      depthCompleted: r.depthCompleted,
      states: r.states,
      transitions: r.transitions,
      stopped: timedOut ? 'time' : (r.stopped ?? null),
      violation: v ? { invariant: v.invariant, message: v.message, ops: r.violation!.ops, file: basename(file!) } : null,
    };
    try {
      summaryFile = writeShardSummary(out.path, summary);
    } catch (e) {
      out.release();
      usageError(`cannot save the shard summary in ${out.path} (${fsReason(e)})`);
    }
  }
  out.release();

  if (flags.json) {
    const violation = r.violation && { invariant: r.violation.failure.violations[0].invariant, message: r.violation.failure.violations[0].message, length: r.violation.ops.length, file, ops: r.violation.ops };
    console.log(JSON.stringify({ config, scope: scope.name, depth, preemptions: scope.preemptions, shard: shard ?? null, ...figures, stopped: timedOut ? 'time' : (r.stopped ?? null), vacuous, violation: violation ?? null }, null, 2));
  } else {
    console.log(
      `${count(r.states)} distinct states, ${count(r.transitions)} transitions in ${seconds.toFixed(1)} s (${count(figures.statesPerSecond)} states/s, ${count(figures.transitionsPerSecond)} transitions/s), ` +
        `${Math.round(r.rssBytes / MiB)} MiB resident, heap ${Math.round(r.heapBytes / MiB)} MiB (~${count(figures.bytesPerState)} bytes/state); states per depth: ${r.perLevel.join(', ')}`,
    );
    if (r.violation) {
      const v = r.violation.failure.violations[0];
      console.log(pc.red(`VIOLATION ${pc.bold(v.invariant)} after ${r.violation.ops.length} ops, a shortest sequence in this scope (none of ${r.depthCompleted} ops or fewer violates):`));
      r.violation.ops.forEach((op, i) => console.log(`  ${i + 1}. ${formatOp(geometryOf(config), op)}`));
      console.log(`  ${v.message}`);
      console.log(`  ${CLI} replay ${shellWord(file!)}`);
    } else if (vacuous) {
      console.log(pc.red(`vacuous search: the scope offers no op, so no transition was judged and no violation proves nothing (exit ${EXIT_VACUOUS})`));
    } else if (r.stopped) {
      console.log(pc.yellow(`no violation up to depth ${r.depthCompleted} (${count(r.states)} states); ${stopNote(r, flags, timedOut)}`));
    } else console.log(pc.green(`no violation up to depth ${r.depthCompleted} (${count(r.states)} states)`));
    if (summaryFile) console.log(`shard ${shard!.index} of ${shard!.count}: its part only; take the shards together with ${CLI} explore --merge DIR... (summary: ${shellWord(summaryFile)})`);
  }
  process.exitCode = r.violation ? EXIT_VIOLATION : vacuous ? EXIT_VACUOUS : EXIT_CLEAN;
}

/** `--merge DIR...`: the shards' summaries taken together. */
function merge(flags: ExploreFlags): void {
  let m: Merged;
  try {
    m = mergeShards(readShardSummaries(flags.merge!));
  } catch (e) {
    if (e instanceof ShardError) usageError(e.message);
    throw e;
  }
  const v = m.violation;
  if (flags.json) {
    console.log(JSON.stringify({ shards: m.count, splitDepth: m.splitDepth, missing: m.missing, depthProved: m.depthProved, states: m.states, transitions: m.transitions, violation: v ? { shard: v.shard, shortest: v.shortest, ...v.summary.violation, summary: v.path } : null }, null, 2));
  } else {
    const missing = m.missing.length ? `shard${m.missing.length > 1 ? 's' : ''} ${m.missing.join(', ')} missing` : '';
    console.log(`${m.count} shards (split at depth ${m.splitDepth})${missing ? `, ${pc.yellow(missing)}` : ''}: ${count(m.states)} states (a state two shards reached counts twice), ${count(m.transitions)} transitions`);
    if (v) {
      const cx = v.summary.violation!;
      console.log(pc.red(`VIOLATION ${pc.bold(cx.invariant)} after ${cx.ops.length} ops, found by shard ${v.shard}${v.shortest ? ', a shortest sequence in this scope' : ` (a shorter one may exist: not every shard judged every sequence of ${cx.ops.length - 1} ops)`}:`));
      cx.ops.forEach((op, i) => console.log(`  ${i + 1}. ${formatOp(geometryOf(v.summary.config), op)}`));
      console.log(`  ${cx.message}`);
      console.log(`  ${CLI} replay ${shellWord(join(dirname(v.path), cx.file))}`);
    } else console.log(missing ? pc.yellow(`no violation up to depth ${m.depthProved}, the split level (${missing})`) : pc.green(`no violation up to depth ${m.depthProved}, all shards together`));
  }
  process.exitCode = v ? EXIT_VIOLATION : EXIT_CLEAN;
}

export function registerExplore(program: Command): void {
  const explore = program
    .command('explore')
    .description(`every op sequence of a scope up to --depth, breadth first, each distinct state once: a shortest counterexample (saved) or a proof to that depth; exit ${EXIT_VIOLATION} violation, ${EXIT_USAGE} bad usage, ${EXIT_VACUOUS} vacuous (the scope offers no op)`)
    .option('--depth <n>', 'ops per sequence (needed unless --merge)', intIn(1, 64));
  configOptions(explore)
    .option('--scope <name|file>', 'the op alphabet: small (the default for the 2019 profiles), wide, kvm, asi25 (the default for asi25 and asi25-fixed), or a JSON file (README, "Exhaustive search")')
    .option('--max-states <n>', 'stop after this many distinct states, saying how deep the proof reached', intIn(1))
    .option('--max-memory <MiB>', 'stop once the whole process is this much resident (RSS: main thread, worker threads and their heaps), saying how deep the proof reached', intIn(16))
    .option('--workers <k>', 'worker threads expanding states (0: the main thread only)', intIn(0, 64), Math.min(2, availableParallelism()))
    .option('--seconds <n>', 'stop after this long, saying how deep the proof reached (the nightly run)', intIn(1))
    .option('--shard <i/n>', 'search part i of n (one machine each): the levels to --split-depth whole, then only the nodes there whose key falls to part i; writes a shard summary in --out', parseShard)
    .option('--split-depth <s>', 'with --shard: the level whose nodes the shards divide', intIn(1, 63), 3)
    .option('--merge <dir...>', 'take the shard summaries in these directories together: the depth all proved, or the shortest counterexample any found')
    .option('--preemptions <k>', "switches between CPUs inside ops a path may take: each of the scope's races is one (CHESS's preemption bound; default: the scope's, 0 for the named ones)", intIn(0, 8))
    .option('--out <dir>', `where a counterexample is saved (default: ./${DEFAULT_EXPLORE_OUT})`)
    .option('--json', 'print a JSON summary on stdout (progress goes to stderr)')
    .action((flags: ExploreFlags) => run(flags));
}
