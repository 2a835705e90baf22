// Counting what the workers report, and showing it: one live line on a terminal (log-update), a
// plain line every few seconds otherwise (CI logs), and the tables of the final summary.

import { createLogUpdate } from 'log-update';
import pc from 'picocolors';
import { OP_KINDS } from '../../model/ops.ts';
import { type Config, DEFAULT_CONFIG } from '../../model/system.ts';
import type { Coverage, WalkStats } from './protocol.ts';

/** How often a non-terminal gets a progress line; ASI_CHECK_PROGRESS_MS overrides it (tests). */
export const PLAIN_PROGRESS_MS = 5000;
const LIVE_PROGRESS_MS = 250;

export function progressIntervalMs(): number {
  const env = Number(process.env.ASI_CHECK_PROGRESS_MS);
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

export interface CoverageFigures {
  readonly kindsSeen: number;
  readonly kindsTotal: number;
  /** Distinct (op kind, outcome) pairs seen. */
  readonly outcomes: number;
}

export function coverageFigures(c: Coverage): CoverageFigures {
  return {
    kindsSeen: OP_KINDS.filter((k) => c[k]).length,
    kindsTotal: OP_KINDS.length,
    outcomes: Object.values(c).reduce((n, o) => n + Object.keys(o).length, 0),
  };
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
}

export function progressLine(f: LineFigures): string {
  const c = coverageFigures(f.coverage);
  const found = `violations ${f.newFindings ? pc.red(`${f.newFindings} new`) : '0 new'}, ${f.knownFindings} known`;
  return [
    `${f.seconds.toFixed(0)}s`,
    `${count(rate(f.steps, f.seconds))} steps/s`,
    `walks ${count(f.walks)}`,
    `ops ${count(f.steps)}`,
    found,
    `op kinds ${c.kindsSeen}/${c.kindsTotal}, outcomes ${c.outcomes}`,
  ].join(pc.dim(' | '));
}

export interface Progress {
  /** A line that stays, printed above the live line. */
  note(text: string): void;
  /** Clears the live line; nothing more is drawn. */
  stop(): void;
}

export function startProgress(stream: NodeJS.WriteStream, line: () => string): Progress {
  if (stream.isTTY) {
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

/** One row per op kind in OP_KINDS order: count, then outcomes by frequency. */
export function coverageTable(c: Coverage): string[] {
  const width = Math.max(...OP_KINDS.map((k) => k.length));
  return OP_KINDS.map((kind) => {
    const outcomes = Object.entries(c[kind] ?? {}).sort((a, b) => b[1] - a[1]);
    const total = outcomes.reduce((n, [, k]) => n + k, 0);
    const detail = outcomes.map(([o, n]) => `${o === 'ok' ? pc.green(o) : pc.yellow(o)} ${count(n)}`).join(', ');
    return `  ${kind.padEnd(width)} ${count(total).padStart(10)}  ${total ? detail : pc.red('never run')}`;
  });
}

/** Quoted for a POSIX shell only when it has to be: seeds are usually plain. */
export function shellWord(s: string): string {
  return /^[\w./:@%+=,-]+$/.test(s) ? s : `'${s.replaceAll("'", `'\\''`)}'`;
}

/** The `asi-check replay --seed` line that re-runs one walk; geometry and CPUs only when not the defaults. */
export function replayCommand(seed: string, steps: number, config: Config): string {
  return [
    `asi-check replay --seed ${shellWord(seed)} --steps ${steps} --profile ${config.profile}`,
    config.mutant ? ` --mutant ${config.mutant}` : '',
    config.geometry !== DEFAULT_CONFIG.geometry ? ` --geometry ${config.geometry}` : '',
    config.cpus !== DEFAULT_CONFIG.cpus ? ` --cpus ${config.cpus}` : '',
  ].join('');
}
