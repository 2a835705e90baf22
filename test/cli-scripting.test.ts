// asi-check as a tool people script (issue 10): where a run saves, what it counts as known, what a
// kill leaves behind, pipes, Ctrl-C through a shell, the time budget, coverage and the vacuity
// gate, design options on the command line, and the exit status of an internal error. In-process
// where the behaviour lives in a function; real processes where it is about the process.

import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, test, vi } from 'vitest';
import { configLabel, loadCounterexample } from '../src/check/counterexample.ts';
import { prepareOutDir } from '../src/commands/output.ts';
import { coverageFigures, replayCommand, vacuousOps } from '../src/check/fuzz/progress.ts';
import type { FoundViolation, WalkStats, WorkerEvent } from '../src/check/fuzz/protocol.ts';
import { FindingStore, loadKnown } from '../src/check/fuzz/store.ts';
import { runWalks } from '../src/check/fuzz/walker.ts';
import { main } from '../src/cli.ts';
import { EXIT_INTERNAL, EXIT_VACUOUS, configFromFlags, describeConfig, parseKernel, parseOption } from '../src/commands/usage.ts';
import type { BatchCase } from './cli-batch.ts';
import { root, runBatch, runMain, tempDirs } from './cli-run.ts';

const tmp = tempDirs('script');

const CORPUS = join(root, 'counterexamples');
const F5_FILE = join(CORPUS, 'rfc-v2+clearPresentPmd--refine--517b3a29e3ae.json');
const F5 = loadCounterexample(F5_FILE);
const violation = (walkIndex: number, ops = F5.ops, message = F5.message): FoundViolation => ({
  walkIndex,
  walkSeed: `t/s1/w0/${walkIndex}`,
  invariant: F5.invariant,
  message,
  ops,
  rawLength: 9,
  argsSimplified: 0,
  walks: walkIndex + 1,
  seconds: 0,
  fixes: [],
  causes: [],
  fn: 'vfree',
});

describe('saving findings', () => {
  test('a finding that cannot be saved (the disk filled up mid-run) is kept with the reason, not thrown', () => {
    const dir = tmp();
    writeFileSync(join(dir, 'file'), '');
    const store = new FindingStore(F5.config, join(dir, 'file'), { files: new Map(), unreadable: [] });
    const { finding } = store.add(0, violation(0));
    expect(finding).toMatchObject({ isNew: true, saveError: expect.stringMatching(/^E[A-Z]+: /) as unknown });
    expect(finding.file).toBeUndefined();
    expect(store.list()).toHaveLength(1);
  });

  test('one bug reached by different op sequences is one file: the key is the message with its numbers blanked', () => {
    const dir = tmp();
    const store = new FindingStore(F5.config, dir, { files: new Map(), unreadable: [] });
    store.add(0, violation(3));
    store.add(0, violation(1, F5.ops.slice(1), F5.message.replace(/pfn \d+/, 'pfn 99')));
    store.add(0, violation(2, [F5.ops[0], ...F5.ops]));
    expect(store.list()).toHaveLength(1);
    expect(store.list()[0]).toMatchObject({ walks: 3, first: { walkIndex: 1 } });
    // The earliest walk's file replaces the one saved first, under its own name.
    expect(readdirSync(dir)).toEqual([store.list()[0].file!.split('/').at(-1)]);
    expect(loadKnown([dir]).files.size).toBe(1);
  });

  test('a temp file of a dead writer is removed, a live one kept; a folder the run made and left empty goes', () => {
    const dir = tmp();
    const dead = 'x.json.999999999.asi-tmp';
    const live = `y.json.${process.pid}.asi-tmp`;
    for (const f of [dead, live, 'z.json']) writeFileSync(join(dir, f), '{}');
    prepareOutDir(dir, { flag: '--out', given: true }).release();
    expect(readdirSync(dir).sort()).toEqual([live, 'z.json']);
    const made = prepareOutDir(join(dir, 'a', 'b'), { flag: '--out', given: false });
    expect(existsSync(made.path)).toBe(true);
    made.release();
    expect(readdirSync(dir).sort()).toEqual([live, 'z.json']);
  });
});

describe('where a run saves by default', () => {
  test('a folder named from the seed: one bounded folder under asi-check-out whatever the seed, removed if left empty; one that cannot be made is named as the default, not as an --out never given', async () => {
    const [long, dots, blocked] = [tmp(), tmp(), tmp()];
    writeFileSync(join(blocked, 'asi-check-out'), '');
    const fuzz = (cwd: string, ...args: string[]): BatchCase => ({ tool: 'asi-check', args: ['fuzz', '--workers', '1', '--no-corpus', ...args], cwd });
    const [l, d, b] = await runBatch([
      fuzz(long, '--runs', '1', '--steps', '5', '--seed', 'x'.repeat(300)),
      fuzz(dots, '--runs', '1', '--steps', '5', '--seed', '..'),
      fuzz(blocked, '--runs', '1', '--steps', '5', '--seed', 's'),
    ]);
    expect({ status: l.status, stderr: l.stderr }).toEqual({ status: EXIT_VACUOUS, stderr: expect.not.stringContaining('--out') as unknown });
    expect(l.stdout).toMatch(/new ones saved in asi-check-out\/x{48}-[0-9a-f]{12}\//);
    expect(readdirSync(long)).toEqual([]);

    expect(d.status).toBe(EXIT_VACUOUS);
    expect(d.stdout).toMatch(/new ones saved in asi-check-out\/seed-[0-9a-f]{12}\//);
    expect(readdirSync(dots)).toEqual([]);

    expect(b.status).toBe(2);
    expect(b.stderr).toMatch(/^asi-check: the default output folder asi-check-out\/s \(--out picks another\): cannot create \(ENOTDIR[^\n]*\)\n$/);
    expect(readdirSync(blocked)).toEqual(['asi-check-out']);
  });
});

describe('a fuzz worker', () => {
  test('--seconds is kept between two steps of a walk: a 100,000-op walk stops at the budget and says so', () => {
    const events: WorkerEvent[] = [];
    const t0 = performance.now();
    runWalks({ config: configFromFlags({ profile: 'fixed', geometry: 'small', cpus: 2 }), base: 'budget', shard: 1, worker: 0, steps: 100_000, seconds: 0.3, firstViolationOnly: false, statsEveryMs: 1e9 }, () => false, (e) => events.push(e));
    expect(performance.now() - t0).toBeLessThan(1500);
    const done = events.at(-1) as { type: 'done'; stats: WalkStats };
    expect(done.type).toBe('done');
    expect(done.stats).toMatchObject({ walks: 0, cutShort: 1 });
  });

  test('an op kind counts as covered only when it succeeded, and a run where a core op never did is vacuous', () => {
    const c = { asi_create: { ok: 3 }, asi_map: { '-EINVAL': 5 }, vmalloc: { ok: 1 } };
    const f = coverageFigures(c);
    expect(f.kindsOk).toBe(2);
    expect(f.neverSucceeded).toContain('asi_map');
    expect(f.neverSucceeded).not.toContain('vmalloc');
    expect(vacuousOps(c)).toEqual(['asi_map', 'asi_enter']);
    expect(vacuousOps({ asi_create: { ok: 1 }, asi_map: { ok: 1 }, asi_enter: { ok: 1 } })).toEqual([]);
  });
});

describe("a file's own text on a terminal", () => {
  test('terminal escapes and bidi overrides in a title, a message or a file name are shown as escapes, never sent raw; the HTML report escapes markup', async () => {
    const dir = tmp();
    const hostile = { ...F5, title: 'F5 \x1b]0;owned\x07\x1b[2J<script>x</script>\u202e', message: `${F5.message}\x1b[8m` };
    const file = join(dir, 'esc\x1b[31m.json');
    writeFileSync(file, JSON.stringify(hostile));
    const replay = await runMain('replay', file, '--html', join(dir, 'r.html'));
    expect(replay.status).toBe(1);
    expect(replay.stdout).not.toMatch(/[\x00-\x08\x0b-\x1f\x7f\u202e]/);
    expect(replay.stdout).toContain('F5 \\x1b]0;owned\\x07\\x1b[2J<script>x</script>\\u202e');
    expect(replay.stdout).toContain('source: ' + join(dir, 'esc\\x1b[31m.json'));
    const html = readFileSync(join(dir, 'r.html'), 'utf8');
    expect(html).toContain('&#60;script&#62;x&#60;/script&#62;');
    expect(html).not.toContain('<script');

    const triage = await runMain('triage', dir);
    expect(triage.stdout).not.toMatch(/[\x00-\x08\x0b-\x1f\x7f]/);
    expect(triage.stdout).toContain('esc\\x1b[31m.json');
  });
});

describe('the HTML report', () => {
  test('its configuration line names the kernel configuration with the words --kernel takes (a format-1 file runs on layout=1)', async () => {
    const dir = tmp();
    const name = readdirSync(CORPUS).find((f) => f.startsWith('rfc-v2+thp=off--'))!;
    const r = await runMain('replay', join(CORPUS, name), '--html', join(dir, 'r.html'));
    expect(r.status).toBe(1);
    const config = /<dt>config<\/dt><dd><code>([^<]*)<\/code>/.exec(readFileSync(join(dir, 'r.html'), 'utf8'))?.[1];
    expect(config).toBe('geometry small · cpus 2 · profile rfc-v2 · kernel thp=off+layout=1');
  });
});

describe("explore's limits", () => {
  test('--seconds past what a 32-bit timer holds (2147484 s) is a budget like any other, not one that ends the search at once', async () => {
    // A worker, so the search waits on the event loop, where a timer that fired at once would be seen.
    const r = await runMain('explore', '--depth', '2', '--seconds', '2147484', '--workers', '1', '--out', tmp());
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^no violation up to depth 2 \(37 states\)$/m);
    expect(r.stderr).toBe('');
  });

  test(`a scope that offers no op proves nothing: exit ${EXIT_VACUOUS}, as a vacuous fuzz run`, async () => {
    const dir = tmp();
    const scope = join(dir, 'nothing.json');
    const none = { createFlags: [], destroy: false, map: [], unmapCallers: [], enterEvents: [], exitEvents: [], interrupts: [], reads: [], vmalloc: null, tasks: null, failAlloc: [], kvm: null };
    writeFileSync(scope, JSON.stringify(none));
    const r = await runMain('explore', '--depth', '2', '--scope', scope, '--workers', '0', '--out', join(dir, 'out'));
    expect(r.status).toBe(EXIT_VACUOUS);
    expect(r.stdout).toMatch(/^vacuous search: the scope offers no op, so no transition was judged and no violation proves nothing \(exit 4\)$/m);
    expect(r.stdout).not.toMatch(/no violation up to depth/);
    const json = await runMain('explore', '--json', '--depth', '2', '--scope', scope, '--workers', '0', '--out', join(dir, 'out'));
    expect(json.status).toBe(EXIT_VACUOUS);
    expect(JSON.parse(json.stdout)).toMatchObject({ transitions: 0, vacuous: true, violation: null });
    expect(readdirSync(dir)).toEqual(['nothing.json']);
  });
});

describe('design options on the command line', () => {
  test('--option sets an option over the profile and the mutant, and printed replay lines carry it', () => {
    const option = parseOption('overlapPolicy=refuse', parseOption('resumeFlushesGlobal=true'));
    const config = configFromFlags({ profile: 'v3', geometry: 'small', cpus: 2, option });
    expect(config.options).toEqual({ resumeFlushesGlobal: true, overlapPolicy: 'refuse' });
    expect(replayCommand('s/1', 60, config)).toBe('npx asi-check replay --seed s/1 --steps 60 --profile v3 --option resumeFlushesGlobal=true --option overlapPolicy=refuse');
    // A mutant's own options are implied by --mutant.
    const mutant = configFromFlags({ profile: 'fixed', mutant: 'overlap-check-skipped', geometry: 'small', cpus: 2 });
    expect(replayCommand('s', 60, mutant)).toBe('npx asi-check replay --seed s --steps 60 --profile fixed --mutant overlap-check-skipped');
  });
});

describe('kernel configurations on the command line', () => {
  test('--kernel sets the words a file name uses, and printed replay lines and file names carry them', () => {
    const kernel = parseKernel('thp=off', parseKernel('slab=off'));
    const config = configFromFlags({ profile: 'fixed', geometry: 'real', cpus: 2, kernel });
    expect(config.kernel).toEqual({ slab: false, thp: false });
    expect(replayCommand('s', 60, config)).toBe('npx asi-check replay --seed s --steps 60 --profile fixed --kernel thp=off --kernel slab=off --geometry real');
    expect(configLabel(config)).toBe('fixed+thp=off+slab=off');
    expect(describeConfig(config)).toBe('profile fixed, kernel thp=off+slab=off, real geometry, 2 CPUs');
    // A setting that is the default says nothing: slab caches are on in 5.2.
    expect(configLabel(configFromFlags({ profile: 'fixed', geometry: 'real', cpus: 2, kernel: parseKernel('slab') }))).toBe('fixed');
  });
});

describe('main()', () => {
  afterEach(() => vi.restoreAllMocks());

  test('help shows defaults as a user types them', async () => {
    let out = '';
    vi.spyOn(process.stdout, 'write').mockImplementation((s) => ((out += String(s)), true));
    expect(await main(['fuzz', '--help'])).toBe(0);
    out = out.replace(/\s+/g, ' ');
    expect(out).toContain('(default: 1/1)');
    expect(out).toContain('--option <name=value>');
    expect(out).not.toMatch(/\{"index"|to up/);
  });

  test(`an internal error exits ${EXIT_INTERNAL} with the command that reproduces it`, async () => {
    const err: string[] = [];
    vi.spyOn(console, 'error').mockImplementation((s: string) => void err.push(s));
    vi.spyOn(console, 'log').mockImplementation(() => {
      throw new Error('the terminal caught fire');
    });
    expect(await main(['list'])).toBe(EXIT_INTERNAL);
    expect(err[0]).toBe('asi-check: internal error (a bug in asi-check, please report it): the terminal caught fire');
    expect(err[1]).toBe('reproduce with: npx asi-check list');
  });
});

describe.concurrent('as a process', () => {
  test('on a full disk, fuzz --out NEWDIR exits 2 and leaves no NEWDIR behind', async () => {
    const dir = tmp();
    const out = join(dir, 'new');
    // A file-size limit fails the probe write after it created the file, as a full disk does; with
    // SIGXFSZ ignored the write returns EFBIG instead of killing node.
    const cmd = `trap '' XFSZ; ulimit -f 2; exec node bin/asi-check.js fuzz --runs 1 --steps 5 --workers 1 --no-corpus --out ${out}`;
    const r = await new Promise<{ status: number | null; stderr: string }>((resolve) => {
      const child = spawn('sh', ['-c', cmd], { cwd: root, env: { ...process.env, NO_COLOR: '1' } });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d));
      child.on('close', (status) => resolve({ status, stderr }));
    });
    expect(r).toEqual({ status: 2, stderr: `asi-check: --out ${out}: cannot write (EFBIG: file too large)\n` });
    expect(readdirSync(dir)).toEqual([]);
  });

  const hasScript = (() => {
    try {
      execFileSync('script', ['--version'], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  })();

  // npx runs asi-check under `sh -c`; dash, given SIGINT, kills itself after its child exits, and npm then exits 130.
  test.skipIf(!hasScript)('Ctrl-C on a terminal, under sh as npx runs it, ends with the documented status, not 130', async () => {
    const dir = tmp();
    mkdirSync(join(dir, 'out'));
    const child = spawn('script', ['-qfec', `sh -c 'node bin/asi-check.js fuzz --seconds 60 --workers 1 --no-corpus --out ${join(dir, 'out')}'`, '/dev/null'], { cwd: root, env: { ...process.env, NO_COLOR: '1', ASI_CHECK_PROGRESS_MS: '100' } });
    let out = '';
    let sent = false;
    child.stdout.on('data', (d: Buffer) => {
      out += d;
      // `script` gives the terminal no width, so progress comes as plain lines: send once walks have run.
      if (!sent && /walks [1-9]/.test(out)) {
        sent = true;
        child.stdin.write('\x03');
      }
    });
    const status = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect({ status, noted: out.includes('Ctrl-C: finishing the walks in progress'), interrupted: out.includes('interrupted') }, out).toEqual({ status: 0, noted: true, interrupted: true });
  });
});
