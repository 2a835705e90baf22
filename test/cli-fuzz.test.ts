// `asi-check fuzz` as a user runs it: exit statuses, Ctrl-C, reproducibility from the printed seed,
// disjoint shards, and saved files that `asi-check replay` reproduces (bad usage is in
// cli-bad-inputs.test.ts). Every run writes to a fresh directory under the OS temp dir. Command
// lines run through main() in this process (test/cli-run.ts), Ctrl-C in a real one.

import { readFileSync, readdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { loadCounterexample } from '../src/check/counterexample.ts';
import { runSeededWalk } from '../src/check/seeded.ts';
import { MUTANT_INFO, type MutantName } from '../src/model/mutants.ts';
import { configFromFlags } from '../src/commands/usage.ts';
import { startPool } from '../src/check/fuzz/pool.ts';
import type { WalkTask, WorkerEvent } from '../src/check/fuzz/protocol.ts';
import { runMain, startCli, tempDirs } from './cli-run.ts';

const out = tempDirs('fuzz');

// Killed in the first walk or two by a one- or two-op counterexample; any mutant would do, slower.
const QUICK_MUTANT: MutantName = Object.hasOwn(MUTANT_INFO, 'copy-drops-nx') ? ('copy-drops-nx' as MutantName) : (Object.keys(MUTANT_INFO)[0] as MutantName);

interface Summary {
  walks: number;
  steps: number;
  coverage: { kindsOk: number; kindsTotal: number; outcomes: number; neverSucceeded: string[]; byKind: unknown };
  vacuous: string[];
  violations: { invariant: string; file: string; new: boolean; walkSeed: string; walks: number; ops: unknown[] }[];
  perWorker: { worker: number; walks: number; first?: string; last?: string }[];
  repeats: number;
}

async function fuzzJson(...args: string[]): Promise<{ status: number | null; summary: Summary; stderr: string }> {
  const r = await runMain('fuzz', '--json', ...args);
  return { status: r.status, summary: JSON.parse(r.stdout) as Summary, stderr: r.stderr };
}

describe.concurrent('asi-check fuzz', () => {
  test('a mutant run exits 1 and saves shrunk counterexamples that replay reproduces; a second run counts them as known', async () => {
    const dir = out();
    // --no-corpus: the committed corpus already knows this mutant's bug.
    const first = await fuzzJson('--mutant', QUICK_MUTANT, '--runs', '2', '--workers', '1', '--seed', 'kill', '--out', dir, '--no-corpus');
    expect(first.status).toBe(1);
    expect(first.summary.violations.length).toBeGreaterThan(0);
    for (const v of first.summary.violations) {
      expect(v.new).toBe(true);
      const c = loadCounterexample(v.file);
      expect(c.invariant).toBe(v.invariant);
      expect(c.found).toMatchObject({ by: 'fuzz', seed: v.walkSeed });
      expect(c.ops.length).toBeLessThanOrEqual(6);
      expect((await runMain('replay', v.file)).status).toBe(1);
    }
    // Walk 0 again: what it finds is already in the directory.
    const again = await fuzzJson('--mutant', QUICK_MUTANT, '--runs', '1', '--workers', '1', '--seed', 'kill', '--out', dir, '--no-corpus');
    expect(again.status).toBe(1);
    expect(again.summary.violations.length).toBeGreaterThan(0);
    expect(again.summary.violations.filter((v) => v.new)).toEqual([]);
    expect(readdirSync(dir).sort()).toEqual(first.summary.violations.map((v) => basename(v.file)).sort());
  });

  test('the same seed gives the same walks, violations and files, however the workers interleave', async () => {
    const [a, b] = [out(), out()];
    const args = ['--mutant', QUICK_MUTANT, '--runs', '4', '--workers', '2', '--seed', 'same', '--no-corpus'];
    const [ra, rb] = await Promise.all([fuzzJson(...args, '--out', a), fuzzJson(...args, '--out', b)]);
    const comparable = (s: Summary) => ({
      walks: s.walks,
      steps: s.steps,
      coverage: s.coverage,
      repeats: s.repeats,
      perWorker: s.perWorker,
      violations: s.violations.map((v) => ({ ...v, file: basename(v.file) })),
    });
    expect(comparable(rb.summary)).toEqual(comparable(ra.summary));
    expect(readdirSync(b).sort()).toEqual(readdirSync(a).sort());
    for (const f of readdirSync(a)) expect(readFileSync(join(b, f), 'utf8')).toBe(readFileSync(join(a, f), 'utf8'));
  });

  test('clean runs of the fixed profile exit 0; shards never share a walk: different walk seeds, different op lists', async () => {
    const [d1, d2] = [out(), out()];
    // --no-corpus: triaging the committed corpus (what counts as known) costs more than the walks, and a clean run reports nothing either way.
    const args = ['--runs', '2', '--steps', '60', '--workers', '1', '--seed', 'shards', '--no-corpus'];
    const [one, two] = await Promise.all([fuzzJson(...args, '--shard', '1/2', '--out', d1), fuzzJson(...args, '--shard', '2/2', '--out', d2)]);
    for (const { status, summary } of [one, two]) {
      expect(summary.violations).toEqual([]);
      expect(status).toBe(0);
      expect([summary.walks, summary.steps]).toEqual([2, 120]);
      expect(summary.vacuous).toEqual([]);
      expect(summary.coverage.kindsOk).toBeGreaterThan(0);
    }
    expect(readdirSync(d1)).toEqual([]);
    const seeds = (s: Summary) => s.perWorker.flatMap((w) => [w.first!, w.last!]);
    expect(seeds(one.summary)).toEqual(['shards/s1/w0/0', 'shards/s1/w0/1']);
    expect(seeds(two.summary)).toEqual(['shards/s2/w0/0', 'shards/s2/w0/1']);
    const config = configFromFlags({ profile: 'fixed', geometry: 'small', cpus: 2 });
    const ops = (seed: string) => JSON.stringify(runSeededWalk(config, seed, 60).ops);
    for (const [i, seed] of seeds(one.summary).entries()) expect(ops(seed)).not.toBe(ops(seeds(two.summary)[i]));
  });

  test('SIGINT after a violation keeps its saved counterexample, leaves no temp file, prints the summary and exits 1', async () => {
    const dir = out();
    const run = startCli(['fuzz', '--mutant', QUICK_MUTANT, '--seconds', '120', '--workers', '1', '--out', dir, '--no-corpus']);
    await run.waitFor('NEW');
    await run.waitFor('steps/s');
    run.child.kill('SIGINT');
    const r = await run.done;
    expect(r.status).toBe(1);
    expect(r.stdout).toContain('interrupted');
    expect(r.stdout).toMatch(/violations: \d+ signatures? \(\d+ new/);
    const files = readdirSync(dir);
    expect(files.filter((f) => !f.endsWith('.json'))).toEqual([]);
    expect(files.length).toBeGreaterThan(0);
    for (const f of files) expect(loadCounterexample(join(dir, f)).config.mutant).toBe(QUICK_MUTANT);
  });

  test('the worker pool also runs where vitest loads it, one worker taking queued tasks in turn', async () => {
    const config = configFromFlags({ profile: 'rfc-v2', geometry: 'small', cpus: 2 });
    const task = (worker: number): WalkTask => ({ config, base: 'pool', shard: 1, worker, steps: 10, walks: 2, firstViolationOnly: false, statsEveryMs: 1000 });
    const events: [number, WorkerEvent['type']][] = [];
    await startPool([task(0), task(1)], 1, (i, e) => events.push([i, e.type])).done;
    expect(events.filter(([, type]) => type === 'done')).toEqual([
      [0, 'done'],
      [1, 'done'],
    ]);
    expect(events.filter(([, type]) => type === 'crash')).toEqual([]);
  });
});
