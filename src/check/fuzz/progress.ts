// Counting what the workers report, and showing it: one live line on a terminal (log-update), a
// plain line every few seconds otherwise (CI logs), and the tables of the final summary.

import { createLogUpdate } from 'log-update';
import pc from 'picocolors';
import { MUTANT_INFO } from '../../model/mutants.ts';
import { ASI25_ONLY_OPS, OP_KINDS, type OpKind } from '../../model/ops.ts';
import type { Design } from '../../model/options.ts';
import { ASI25_OPS } from '../../model/asi25/ops.ts';
import { type Config, DEFAULT_CONFIG } from '../../model/system.ts';
import type { Coverage, WalkStats } from './protocol.ts';
import { kernelWords } from '../counterexample.ts';

/**
 * How often a non-terminal gets a fuzz progress line, and a long replay one on stderr; tests
 * shorten them with ASI_CHECK_PROGRESS_MS and ASI_CHECK_REPLAY_PROGRESS_MS.
 */
export const PLAIN_PROGRESS_MS = 5000;
const LIVE_PROGRESS_MS = 250;

export function progressIntervalMs(variable: 'ASI_CHECK_PROGRESS_MS' | 'ASI_CHECK_REPLAY_PROGRESS_MS' = 'ASI_CHECK_PROGRESS_MS'): number {
  const env = Number(process.env[variable]);
  return Number.isInteger(env) && env > 0 ? env : PLAIN_PROGRESS_MS;
}

/** The sum of every worker's latest counts. */
export class Tally {
  private readonly latest = new Map<number, WalkStats>();

  update(worker: number, s: WalkStats): void {
    this.latest.set(worker, s);
  }

  get walks(): number {
    return this.sum((s) => s.walks);
  }

  get steps(): number {
    return this.sum((s) => s.steps);
  }

  get repeats(): number {
    return this.sum((s) => s.repeats);
  }

  get cutShort(): number {
    return this.sum((s) => s.cutShort);
  }

  walksOf(worker: number): number {
    return this.latest.get(worker)?.walks ?? 0;
  }

  coverage(): Coverage {
    const out: Coverage = {};
    for (const s of this.latest.values()) {
      for (const [kind, outcomes] of Object.entries(s.coverage)) {
        const into = (out[kind] ??= {});
        for (const [o, n] of Object.entries(outcomes)) into[o] = (into[o] ?? 0) + n;
      }
    }
    return out;
  }

  private sum(f: (s: WalkStats) => number): number {
    let n = 0;
    for (const s of this.latest.values()) n += f(s);
    return n;
  }
}

/**
 * The op kinds of a design, and its core: without a successful create, map and enter (2019; the
 * 2025 design maps by allocation, which every walk does), no walk isolated anything and "clean"
 * means nothing.
 */
const DESIGN_OPS: Record<Design, { readonly kinds: readonly OpKind[]; readonly core: readonly OpKind[] }> = {
  'asi-2019': { kinds: OP_KINDS.filter((k) => !ASI25_ONLY_OPS.has(k)), core: ['asi_create', 'asi_map', 'asi_enter'] },
  'asi-2025': { kinds: OP_KINDS.filter((k) => ASI25_OPS.has(k)), core: ['asi_create', 'asi_enter'] },
};

/** An op kind counts as covered once it succeeded: a kind that only ever failed tested its error path. */
const succeeded = (c: Coverage, kind: string): boolean => (c[kind]?.ok ?? 0) > 0;

export interface CoverageFigures {
  /** Op kinds that succeeded at least once. */
  readonly kindsOk: number;
  readonly kindsTotal: number;
  /** Distinct (op kind, outcome) pairs seen. */
  readonly outcomes: number;
  readonly neverSucceeded: readonly OpKind[];
}

export function coverageFigures(c: Coverage, design: Design = 'asi-2019'): CoverageFigures {
  const { kinds } = DESIGN_OPS[design];
  const neverSucceeded = kinds.filter((k) => !succeeded(c, k));
  return {
    kindsOk: kinds.length - neverSucceeded.length,
    kindsTotal: kinds.length,
    outcomes: Object.values(c).reduce((n, o) => n + Object.keys(o).length, 0),
    neverSucceeded,
  };
}

/** The core ops that never succeeded: a run without a violation proves nothing if there are any. */
export function vacuousOps(c: Coverage, design: Design = 'asi-2019'): OpKind[] {
  return DESIGN_OPS[design].core.filter((k) => !succeeded(c, k));
}

export const count = (n: number): string => n.toLocaleString('en-US');

export function rate(steps: number, seconds: number): number {
  return seconds > 0 ? Math.round(steps / seconds) : 0;
}

export interface LineFigures {
  readonly seconds: number;
  readonly walks: number;
  readonly steps: number;
  readonly newFindings: number;
  readonly knownFindings: number;
  readonly coverage: Coverage;
  readonly design: Design;
}

export function progressLine(f: LineFigures): string {
  const c = coverageFigures(f.coverage, f.design);
  const found = `violations ${f.newFindings ? pc.red(`${f.newFindings} new`) : '0 new'}, ${f.knownFindings} known`;
  return [
    `${f.seconds.toFixed(0)}s`,
    `${count(rate(f.steps, f.seconds))} steps/s`,
    `walks ${count(f.walks)}`,
    `ops ${count(f.steps)}`,
    found,
    `op kinds ok ${c.kindsOk}/${c.kindsTotal}, outcomes ${c.outcomes}`,
  ].join(pc.dim(' | '));
}

export interface Progress {
  /** A line that stays, printed above the live line. */
  note(text: string): void;
  /** Clears the live line; nothing more is drawn. */
  stop(): void;
}

export function startProgress(stream: NodeJS.WriteStream, line: () => string): Progress {
  // A terminal that reports no width (`script` without a size) would get a live line cut to nothing.
  if (stream.isTTY && stream.columns > 0) {
    const live = createLogUpdate(stream);
    const timer = setInterval(() => live(line()), LIVE_PROGRESS_MS);
    return {
      note: (text) => {
        live.clear();
        stream.write(text + '\n');
        live(line());
      },
      stop: () => {
        clearInterval(timer);
        live.clear();
        live.done();
      },
    };
  }
  const timer = setInterval(() => stream.write(line() + '\n'), progressIntervalMs());
  return {
    note: (text) => stream.write(text + '\n'),
    stop: () => clearInterval(timer),
  };
}

/**
 * Progress of a run that blocks the event loop for minutes (replay or triage of a large file), so no
 * timer can draw a line: `tick` is called at every step and writes `line(seconds)` to stderr once one
 * is due, every ASI_CHECK_REPLAY_PROGRESS_MS (5 s).
 */
export function stepProgress(line: (seconds: number) => string): () => void {
  const t0 = performance.now();
  const every = progressIntervalMs('ASI_CHECK_REPLAY_PROGRESS_MS');
  let next = t0 + every;
  return () => {
    const now = performance.now();
    if (now < next) return;
    next = now + every;
    process.stderr.write(`${line((now - t0) / 1000)}\n`);
  };
}

/** One row per op kind of the design, in OP_KINDS order: count, then outcomes by frequency. */
export function coverageTable(c: Coverage, design: Design): string[] {
  const { kinds } = DESIGN_OPS[design];
  const width = Math.max(...kinds.map((k) => k.length));
  return kinds.map((kind) => {
    const outcomes = Object.entries(c[kind] ?? {}).sort((a, b) => b[1] - a[1]);
    const total = outcomes.reduce((n, [, k]) => n + k, 0);
    const detail = outcomes.map(([o, n]) => `${o === 'ok' ? pc.green(o) : pc.yellow(o)} ${count(n)}`).join(', ');
    const never = total ? (succeeded(c, kind) ? '' : pc.red('  (never succeeded)')) : pc.red('never run');
    return `  ${kind.padEnd(width)} ${count(total).padStart(10)}  ${detail}${never}`;
  });
}

/** Quoted for a POSIX shell only when it has to be: seeds are usually plain. */
export function shellWord(s: string): string {
  return /^[\w./:@%+=,-]+$/.test(s) ? s : `'${s.replaceAll("'", `'\\''`)}'`;
}

/** How a command is typed after `npm install`, where `asi-check` itself is not on PATH. */
export const CLI = 'npx asi-check';

/** The `--option` flags that give `config` its options: those a mutant brings are implied by `--mutant`. */
export function optionFlags(config: Config): string[] {
  const implied: Partial<Record<string, unknown>> = (config.mutant && MUTANT_INFO[config.mutant].options) || {};
  return Object.entries(config.options ?? {})
    .filter(([k, v]) => implied[k] !== v)
    .map(([k, v]) => `--option ${k}=${String(v)}`);
}

/** The `replay --seed` line that re-runs one walk; geometry and CPUs only when not the defaults. */
export function replayCommand(seed: string, steps: number, config: Config): string {
  return [
    `${CLI} replay --seed ${shellWord(seed)} --steps ${steps} --profile ${config.profile}`,
    config.mutant ? `--mutant ${config.mutant}` : '',
    ...optionFlags(config),
    ...kernelWords(config.kernel).map((w) => `--kernel ${w}`),
    config.geometry !== DEFAULT_CONFIG.geometry ? `--geometry ${config.geometry}` : '',
    config.cpus !== DEFAULT_CONFIG.cpus ? `--cpus ${config.cpus}` : '',
  ]
    .filter(Boolean)
    .join(' ');
}
