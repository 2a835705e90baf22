// asi-check as a process, the long cases (the nightly workflow's `slow tests` job runs them with
// `npm run test:nightly`; `npm test` keeps the short ones in test/cli-scripting.test.ts): a slow
// reader and a closed pipe on the other end, the committed corpus counted as known by a real run,
// a vacuous run's exit status, and explore's memory cap over its worker threads. Each spawns node
// processes that take seconds of CPU, on top of what npm test's two cores already run.

import { spawn } from 'node:child_process';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { loadCounterexample } from '../../src/check/counterexample.ts';
import { EXIT_VACUOUS } from '../../src/commands/usage.ts';
import { root, startCli, tempDirs } from '../cli-run.ts';

const tmp = tempDirs('nightly');

const CORPUS = join(root, 'counterexamples');
const F5_FILE = join(CORPUS, 'rfc-v2+clearPresentPmd--refine--517b3a29e3ae.json');
const F5 = loadCounterexample(F5_FILE);

describe.concurrent('as a process, at length', () => {
  test('a replay piped into a slow reader arrives whole, verdict included; a long one reports progress on stderr', async () => {
    const cmd = `node bin/asi-check.js replay --seed pipe --steps 400 | (sleep 1; tail -n 1)`;
    const r = await new Promise<{ stdout: string; stderr: string }>((resolve) => {
      const child = spawn('sh', ['-c', cmd], { cwd: root, env: { ...process.env, NO_COLOR: '1', ASI_CHECK_REPLAY_PROGRESS_MS: '1' } });
      let [stdout, stderr] = ['', ''];
      child.stdout.on('data', (d: Buffer) => (stdout += d));
      child.stderr.on('data', (d: Buffer) => (stderr += d));
      child.on('close', () => resolve({ stdout, stderr }));
    });
    expect(r.stdout).toMatch(/^(no violation in 400 steps \(profile fixed\)|violates .*)\n$/);
    expect(r.stderr).toMatch(/^replay: step \d+ of 400, \d+ s$/m);
  });

  test('fuzz saves in a folder of its own, counts the committed corpus as known, and a vacuous run exits 4', async () => {
    const corpus = readdirSync(CORPUS).sort();
    const [vacuous, known, fresh] = [tmp(), tmp(), tmp()];
    const mutant = ['fuzz', '--json', '--mutant', 'copy-drops-nx', '--runs', '2', '--workers', '1', '--seed', 'kill'];
    // Only the second run is about the corpus: the others skip triaging it (seconds of CPU a run).
    const [v, k, f] = await Promise.all([
      startCli(['fuzz', '--json', '--runs', '1', '--steps', '5', '--workers', '1', '--seed', 'v', '--no-corpus'], { cwd: vacuous }).done,
      startCli(mutant, { cwd: known }).done,
      startCli([...mutant, '--no-corpus'], { cwd: fresh }).done,
    ]);
    expect(v.status).toBe(EXIT_VACUOUS);
    expect(JSON.parse(v.stdout)).toMatchObject({ violations: [], vacuous: expect.arrayContaining(['asi_enter']) as unknown });
    expect(readdirSync(vacuous)).toEqual([]);

    expect(k.status).toBe(1);
    const seen = JSON.parse(k.stdout) as { violations: { new: boolean; file: string }[] };
    expect(seen.violations.map((x) => [x.new, x.file.startsWith(CORPUS)])).toEqual(seen.violations.map(() => [false, true]));
    expect(readdirSync(known)).toEqual([]);

    expect(f.status).toBe(1);
    expect(readdirSync(join(fresh, 'asi-check-out', 'kill')).length).toBeGreaterThan(0);
    expect(f.stderr).toContain('new ones saved in asi-check-out/kill/');
    expect(readdirSync(CORPUS).sort()).toEqual(corpus);
  });

  test('a reader that closes the pipe at once (| head -n 0) leaves the exit status to the verdict: replay, triage, fuzz (stderr too)', async () => {
    const dir = tmp();
    const stale = join(dir, 'no-longer.json');
    writeFileSync(stale, JSON.stringify({ ...F5, config: { ...F5.config, profile: 'fixed', options: {} } }));
    const piped = (args: string, to = '') =>
      new Promise<number | null>((resolve) => {
        const child = spawn('bash', ['-c', `set -o pipefail; node bin/asi-check.js ${args} ${to}| head -n 0`], { cwd: root, env: { ...process.env, NO_COLOR: '1' }, stdio: 'ignore' });
        child.on('close', resolve);
      });
    const statuses = await Promise.all([
      piped(`replay ${F5_FILE}`),
      piped(`triage ${stale}`),
      // stderr into the closed pipe too: fuzz --json writes its header and progress there. A fixed
      // seed: with a random one, a 5-op walk now and then makes asi_map and asi_enter both succeed.
      piped(`fuzz --json --runs 1 --steps 5 --workers 1 --no-corpus --seed 1 --out ${join(dir, 'fuzz')}`, '2>&1 '),
    ]);
    expect(statuses).toEqual([1, 1, EXIT_VACUOUS]);
  });

  test("explore --max-memory caps the whole process, its worker threads included, not the main thread's heap alone", async () => {
    // Two workers put the process well past 100 MiB resident before the first batch is back,
    // while the main thread's heap stays far below it for a search of this size.
    const r = await startCli(['explore', '--json', '--depth', '4', '--workers', '2', '--max-memory', '100', '--out', tmp()]).done;
    expect(r.status).toBe(0);
    const summary = JSON.parse(r.stdout) as { stopped: string; rssBytes: number; heapBytes: number };
    expect(summary.stopped).toBe('max-memory');
    expect(summary.rssBytes).toBeGreaterThanOrEqual(100 * 2 ** 20);
    expect(summary.heapBytes).toBeLessThan(100 * 2 ** 20);
  });
});
