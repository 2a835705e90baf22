// `asi-check mutants`: the kill matrix. Each mutant gets seeded walks (the same walk seeds as
// `asi-check fuzz --mutant M --seed S --workers 1`) until its first violation or its time budget;
// mutants run in parallel on the fuzz worker pool. Exit 1 if any mutant survives, 3 if one crashed.

import { type Command, Option } from 'commander';
import { availableParallelism } from 'node:os';
import pc from 'picocolors';
import { DEFAULT_WALK_STEPS } from '../check/seeded.ts';
import { startPool } from '../check/fuzz/pool.ts';
import type { FoundViolation, WalkTask } from '../check/fuzz/protocol.ts';
import { replayCommand } from '../check/fuzz/progress.ts';
import { MUTANT_INFO, type MutantName } from '../model/mutants.ts';
import { defaultSeed } from './fuzz.ts';
import { type Minimal, bfsMinimal, minimalCell, shrinkRatio } from '../check/explore/shrink-quality.ts';
import { EXIT_CLEAN, EXIT_INTERNAL, EXIT_VIOLATION, configFromFlags, intIn, parseMutant } from './usage.ts';

const DEFAULT_SECONDS_PER_MUTANT = 10;

interface MutantsFlags {
  readonly secondsPerMutant: number;
  readonly seed?: string;
  readonly workers: number;
  readonly json?: boolean;
  readonly shrinkQuality?: boolean;
  /** --only, repeatable: the mutants to run, in catalogue order (default: all). */
  readonly only: readonly MutantName[];
}

interface Row {
  readonly mutant: MutantName;
  readonly expect: string;
  kill?: FoundViolation;
  /** Walks run when the budget ran out without a kill. */
  walks?: number;
  crash?: string;
  /** --shrink-quality: the shortest counterexample breadth-first search finds for the same invariant. */
  minimal?: Minimal;
}

async function killMatrix(flags: MutantsFlags): Promise<void> {
  const seed = flags.seed ?? defaultSeed();
  const names = (Object.keys(MUTANT_INFO) as MutantName[]).filter((m) => flags.only.length === 0 || flags.only.includes(m));
  const configs = names.map((mutant) => configFromFlags({ profile: 'fixed', mutant, geometry: 'small', cpus: 2 }));
  const tasks: WalkTask[] = configs.map((config) => ({
    config,
    base: seed,
    shard: 1,
    worker: 0,
    steps: DEFAULT_WALK_STEPS,
    seconds: flags.secondsPerMutant,
    firstViolationOnly: true,
    // Only the final count matters here.
    statsEveryMs: Number.MAX_SAFE_INTEGER,
  }));
  const rows: Row[] = names.map((mutant) => ({ mutant, expect: MUTANT_INFO[mutant].expect }));
  const human = flags.json ? process.stderr : process.stdout;
  human.write(`${pc.bold('asi-check mutants')}: ${names.length} mutants, up to ${flags.secondsPerMutant} s each, ${flags.workers} workers, seed ${pc.bold(seed)}\n`);

  const pool = startPool(tasks, flags.workers, (i, e) => {
    const row = rows[i];
    if (e.type === 'violation') row.kill = e.violation;
    else if (e.type === 'crash') row.crash = e.message;
    else if (e.type === 'done' && !row.kill) row.walks = e.stats.walks;
    if (e.type === 'done' || e.type === 'crash') human.write(`  ${row.mutant}: ${row.kill ? `killed by ${row.kill.invariant}` : row.crash ? pc.red('crashed') : pc.red('survived')}\n`);
  });
  await pool.done;

  if (flags.shrinkQuality) {
    human.write('shrink quality: breadth-first search for a shortest counterexample of each kill\n');
    for (const [i, r] of rows.entries()) if (r.kill) r.minimal = await bfsMinimal(configs[i], r.kill.invariant, r.kill.ops.length);
  }
  const survivors = rows.filter((r) => !r.kill);
  if (flags.json) {
    const mutants = rows.map((r, i) => ({
      mutant: r.mutant,
      expect: r.expect,
      killedBy: r.kill?.invariant ?? null,
      walks: r.kill?.walks ?? r.walks ?? 0,
      seconds: r.kill ? Number(r.kill.seconds.toFixed(3)) : null,
      shrunkLength: r.kill?.ops.length ?? null,
      ...(r.kill ? { walkSeed: r.kill.walkSeed, replay: replayCommand(r.kill.walkSeed, DEFAULT_WALK_STEPS, configs[i]), ops: r.kill.ops } : {}),
      ...(r.crash ? { crash: r.crash } : {}),
      ...(r.minimal ? { bfsMinimalLength: r.minimal.found?.length ?? null, bfsScope: r.minimal.found?.scope ?? null, shrinkRatio: shrinkRatio(r.minimal) ?? null } : {}),
    }));
    console.log(JSON.stringify({ seed, secondsPerMutant: flags.secondsPerMutant, workers: flags.workers, mutants, survivors: survivors.map((r) => r.mutant) }, null, 2));
  } else printTable(rows);
  // A crash is a bug in the model or the checker, not a surviving mutant.
  process.exitCode = rows.some((r) => r.crash) ? EXIT_INTERNAL : survivors.length ? EXIT_VIOLATION : EXIT_CLEAN;
}

function printTable(rows: readonly Row[]): void {
  const quality = rows.some((r) => r.minimal);
  const header = ['mutant', 'killed by', 'walks', 'seconds', 'shrunk ops', ...(quality ? ['BFS-minimal', 'ratio'] : [])];
  const cells = rows.map((r) => {
    const by = r.kill ? (r.kill.invariant === r.expect ? r.kill.invariant : `${r.kill.invariant} (expected ${r.expect})`) : r.crash ? 'CRASHED' : 'SURVIVED';
    const q = quality ? [r.minimal ? minimalCell(r.minimal) : '-', r.minimal ? String(shrinkRatio(r.minimal) ?? '-') : '-'] : [];
    return [r.mutant, by, String(r.kill?.walks ?? r.walks ?? 0), r.kill ? r.kill.seconds.toFixed(2) : '-', r.kill ? String(r.kill.ops.length) : '-', ...q];
  });
  const widths = header.map((h, c) => Math.max(h.length, ...cells.map((row) => row[c].length)));
  const line = (row: readonly string[]) => row.map((x, c) => (c >= 2 ? x.padStart(widths[c]) : x.padEnd(widths[c]))).join('  ');
  console.log(pc.bold(line(header)));
  cells.forEach((row, i) => console.log(rows[i].kill ? line(row) : pc.red(line(row))));
  const killed = rows.filter((r) => r.kill).length;
  console.log(killed === rows.length ? pc.green(`all ${rows.length} mutants killed`) : pc.red(`${rows.length - killed} of ${rows.length} mutants survived`));
  for (const r of rows) if (r.crash) console.log(pc.red(`${r.mutant} crashed the model:\n${r.crash}`));
}

export function registerMutants(program: Command): void {
  program
    .command('mutants')
    .description('the kill matrix: seeded walks against each mutant until its first violation; exit 1 if any mutant survives, 3 if one crashed the model')
    .option('--seconds-per-mutant <n>', 'time budget of each mutant', intIn(1), DEFAULT_SECONDS_PER_MUTANT)
    .option('--seed <seed>', 'base seed (default: random, printed)')
    .option('--workers <k>', 'mutants run at once', intIn(1, 64), Math.min(2, availableParallelism()))
    .addOption(new Option('--only <mutant>', 'run only this mutant (repeatable)').argParser((m: string, prev: MutantName[]) => [...prev, parseMutant(m)]).default([], 'every mutant'))
    .option('--json', 'print a JSON summary on stdout (progress goes to stderr)')
    .option('--shrink-quality', 'also find each kill\'s shortest counterexample by breadth-first search (asi-check explore) and report shrunk / shortest')
    .action((flags: MutantsFlags) => killMatrix(flags));
}
