// Bad input to every command, as a script would give it: each case must end in exactly one line on
// stderr, exit status 2, and leave its working directory and every file it named as they were.
// The cases run in one process through main() and nightly() (test/cli-batch.ts); a sample also
// runs as real processes, which must behave byte for byte the same.

import { execFileSync } from 'node:child_process';
import { lstatSync, mkdirSync, readFileSync, readdirSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { FORMAT_VERSION, MAX_FILE_BYTES } from '../src/check/counterexample.ts';
import type { BatchCase, BatchResult } from './cli-batch.ts';
import { freshDir, root, runBatch, startCli } from './cli-run.ts';

const F5 = join(root, 'counterexamples', 'rfc-v2+clearPresentPmd--refine--517b3a29e3ae.json');
const NIGHTLY = join(root, 'src', 'commands', 'nightly.ts');
const fx = freshDir('bad-fixtures');
const cwds = freshDir('bad-cwd');
afterAll(() => [fx, cwds].forEach((d) => rmSync(d, { recursive: true, force: true })));

/** A file in the fixture folder: raw text, or F5 with `edit` applied to its JSON. */
function fixture(name: string, content: string | ((o: Record<string, any>) => void)): string {
  const path = join(fx, name);
  if (typeof content === 'string') writeFileSync(path, content);
  else {
    const o = JSON.parse(readFileSync(F5, 'utf8')) as Record<string, any>;
    content(o);
    writeFileSync(path, JSON.stringify(o));
  }
  return path;
}

const file = () => fixture('a-file', 'not a folder\n');
const missing = () => join(fx, 'no', 'such', 'parent', 'x');
// A run that got past validation would be short, so a missing check shows as a failed case, not a hang.
const FUZZ = ['fuzz', '--runs', '1', '--steps', '5', '--workers', '1'];
const NIGHTLY_ENV = { FUZZ_SECONDS: '1', FUZZ_SHARDS: '1', FUZZ_PROFILES: 'fixed', FUZZ_KNOWN: join(root, 'counterexamples') };

type Case = [what: string, tool: BatchCase['tool'], args: () => string[], message: RegExp, env?: Record<string, string>];

const CASES: Case[] = [
  ['no command', 'asi-check', () => [], /a command is needed/],
  ['an unknown command', 'asi-check', () => ['frobnicate'], /unknown command 'frobnicate'/],
  ['an unknown top-level flag', 'asi-check', () => ['--frobnicate'], /unknown option '--frobnicate'/],
  ['list with an argument', 'asi-check', () => ['list', 'mutants'], /too many arguments/],
  ['list with a flag', 'asi-check', () => ['list', '--json'], /unknown option '--json'/],

  ['replay of nothing', 'asi-check', () => ['replay'], /file or --seed, not both or neither/],
  ['replay of a missing file', 'asi-check', () => ['replay', join(fx, 'missing.json')], /cannot read \(ENOENT/],
  ['replay of a directory', 'asi-check', () => ['replay', fx], /not a regular file \(a directory\)/],
  ['replay of /dev/zero', 'asi-check', () => ['replay', '/dev/zero'], /not a regular file \(a device\)$/],
  ['replay of a FIFO', 'asi-check', () => ['replay', join(fx, 'fifo')], /not a regular file \(a FIFO\)/],
  ['replay of a huge file', 'asi-check', () => ['replay', join(fx, 'huge.json')], /too large \(67108865 bytes; a counterexample file is at most 67108864\)$/],
  ['replay of text', 'asi-check', () => ['replay', fixture('text.json', 'hello')], /not valid JSON/],
  ['replay of a JSON array', 'asi-check', () => ['replay', fixture('array.json', '[]')], /not an asi-check counterexample/],
  ['replay of another format', 'asi-check', () => ['replay', fixture('format.json', (o) => (o.format = 'syzkaller'))], /format "syzkaller"/],
  [`replay of version ${FORMAT_VERSION + 1}`, 'asi-check', () => ['replay', fixture('newer.json', (o) => (o.version = FORMAT_VERSION + 1))], new RegExp(`format version ${FORMAT_VERSION + 1} is not supported`)],
  ['replay of an unknown invariant', 'asi-check', () => ['replay', fixture('inv.json', (o) => (o.invariant = 'NOPE'))], /unknown invariant "NOPE"/],
  ['replay without a message', 'asi-check', () => ['replay', fixture('nomsg.json', (o) => delete o.message)], /message must be a string, got none$/],
  ['replay of a numeric message', 'asi-check', () => ['replay', fixture('nummsg.json', (o) => (o.message = 7))], /message must be a string, got 7$/],
  ['replay without a title', 'asi-check', () => ['replay', fixture('notitle.json', (o) => delete o.title)], /title must be a string, got none$/],
  ['replay of an object title', 'asi-check', () => ['replay', fixture('objtitle.json', (o) => (o.title = { a: 1 }))], /title must be a string, got \{"a":1\}$/],
  ['replay of no ops', 'asi-check', () => ['replay', fixture('noops.json', (o) => (o.ops = []))], /ops must be a non-empty array/],
  ['replay of an unknown op', 'asi-check', () => ['replay', fixture('op.json', (o) => (o.ops[0] = { op: 'asi_teleport' }))], /op 1: unknown op "asi_teleport"/],
  ['replay of 9 CPUs', 'asi-check', () => ['replay', fixture('cpus.json', (o) => (o.config.cpus = 9))], /cpus must be 1-4, got 9/],
  ['replay of an unknown mutant', 'asi-check', () => ['replay', fixture('mutant.json', (o) => (o.config.mutant = 'no-such-mutant'))], /unknown mutant "no-such-mutant"$/],
  ['replay of an unknown profile', 'asi-check', () => ['replay', fixture('profile.json', (o) => (o.config.profile = 'rfc-v9'))], /unknown profile "rfc-v9"$/],
  ['replay of an unknown design option', 'asi-check', () => ['replay', fixture('opt.json', (o) => (o.config.options = { warp: true }))], /unknown design option "warp"/],
  ['replay of a file named with a newline and an escape', 'asi-check', () => ['replay', fixture('two\nlines\x1b[2J.json', 'hello')], /two\\x0alines\\x1b\[2J\.json: not valid JSON/],
  ['replay of a file and --seed', 'asi-check', () => ['replay', F5, '--seed', '1'], /not both or neither/],
  ['replay of a file with --steps', 'asi-check', () => ['replay', F5, '--steps', '9'], /--steps only apply to --seed/],
  ['replay of a file with --option', 'asi-check', () => ['replay', F5, '--option', 'exactExtent=true'], /--option only apply to --seed/],
  ['replay --steps 0', 'asi-check', () => ['replay', '--seed', 'x', '--steps', '0'], /expected a whole number from 1 to 100000, got '0'/],
  ['replay --option of an unknown name', 'asi-check', () => ['replay', '--seed', 'x', '--option', 'warp=true'], /unknown design option 'warp'/],
  ['replay --option of a bad value', 'asi-check', () => ['replay', '--seed', 'x', '--option', 'exactExtent=yes'], /exactExtent takes true or false, got 'yes'/],
  ['replay --option without =', 'asi-check', () => ['replay', '--seed', 'x', '--option', 'exactExtent'], /expected name=value/],
  ['replay --steps many', 'asi-check', () => ['replay', '--seed', 'x', '--steps', 'many'], /--steps <n>' argument 'many' is invalid/],
  ['replay --profile rfc-v9', 'asi-check', () => ['replay', '--seed', 'x', '--profile', 'rfc-v9'], /unknown profile 'rfc-v9'/],
  ['replay --mutant nope', 'asi-check', () => ['replay', '--seed', 'x', '--mutant', 'nope'], /unknown mutant 'nope'/],
  ['replay --cpus 9', 'asi-check', () => ['replay', '--seed', 'x', '--cpus', '9'], /expected a whole number from 1 to 4, got '9'$/],
  ['replay --geometry huge', 'asi-check', () => ['replay', '--seed', 'x', '--geometry', 'huge'], /unknown geometry 'huge'/],
  ["replay --html ''", 'asi-check', () => ['replay', F5, '--html', ''], /--html '': an empty path/],
  ['replay --html of a directory', 'asi-check', () => ['replay', F5, '--html', fx], /is a directory/],
  ['replay --html in a missing directory', 'asi-check', () => ['replay', F5, '--html', missing()], /no such directory/],
  ['replay --html under a file', 'asi-check', () => ['replay', F5, '--html', join(file(), 'r.html')], /its parent is not a directory/],
  ['replay --html of its own input', 'asi-check', () => ['replay', fixture('input.json', () => {}), '--html', join(fx, 'input.json')], /--html .*input\.json: exists and is not an asi-check report; not replacing it$/],
  ['replay --html of a file that is not a report', 'asi-check', () => ['replay', F5, '--html', file()], /--html .*a-file: exists and is not an asi-check report/],
  ['replay --html of a symbolic link', 'asi-check', () => ['replay', F5, '--html', join(fx, 'link')], /--html .*link: a symbolic link; name the file itself/],
  ['replay --html of a FIFO', 'asi-check', () => ['replay', F5, '--html', join(fx, 'fifo')], /--html .*fifo: not a regular file \(a FIFO\)$/],

  ['triage of nothing', 'asi-check', () => ['triage'], /missing required argument 'paths'/],
  ['triage of a missing file', 'asi-check', () => ['triage', join(fx, 'missing.json')], /missing\.json: cannot read \(ENOENT/],
  ['triage of a symbolic link loop', 'asi-check', () => ['triage', join(fx, 'loop-a')], /loop-a: cannot read \(ELOOP/],
  ['triage of a 5000-character name', 'asi-check', () => ['triage', join(fx, 'a'.repeat(5000))], /cannot read \(ENAMETOOLONG/],
  ['triage of a path under a file', 'asi-check', () => ['triage', join(file(), 'x.json')], /a-file\/x\.json: cannot read \(ENOTDIR/],
  ['triage of an empty folder', 'asi-check', () => ['triage', join(fx, 'empty')], /empty: no counterexample files in it or its subfolders$/],
  ['triage of a folder of fuzz summaries', 'asi-check', () => ['triage', join(fx, 'artifacts')], /artifacts: no counterexample files in it or its subfolders \(1 JSON file that is not a counterexample passed over\)$/],
  ['triage of a fuzz summary named', 'asi-check', () => ['triage', join(fx, 'artifacts', 'summary', 'fixed-shard-1of4.json')], /fixed-shard-1of4\.json: not an asi-check counterexample/],
  ['triage of a damaged file in a folder', 'asi-check', () => ['triage', join(fx, 'damaged')], /damaged\/sub\/x\.json: not valid JSON/],

  ["fuzz --out ''", 'asi-check', () => [...FUZZ, '--out', ''], /--out '': an empty path/],
  ['fuzz --out of a file', 'asi-check', () => [...FUZZ, '--out', file()], /not a directory$/],
  ['fuzz --out of /dev/full', 'asi-check', () => [...FUZZ, '--out', '/dev/full'], /\/dev\/full: not a directory$/],
  ['fuzz --out with a missing parent', 'asi-check', () => [...FUZZ, '--out', missing()], /no such parent directory/],
  ['fuzz --out under a file', 'asi-check', () => [...FUZZ, '--out', join(file(), 'out')], /its parent is not a directory/],
  ['fuzz --out where nothing can be created', 'asi-check', () => [...FUZZ, '--out', '/proc/asi-check-out'], /cannot create \(/],
  ['fuzz --seconds 0', 'asi-check', () => [...FUZZ, '--seconds', '0'], /expected a whole number >= 1, got '0'/],
  ['fuzz --runs x', 'asi-check', () => ['fuzz', '--runs', 'x'], /expected a whole number >= 1, got 'x'/],
  ['fuzz --steps too many', 'asi-check', () => [...FUZZ, '--steps', '100001'], /from 1 to 100000/],
  ['fuzz --shard 0/2', 'asi-check', () => [...FUZZ, '--shard', '0/2'], /expected i\/n with 1 <= i <= n, got '0\/2'/],
  ['fuzz --shard 1/0', 'asi-check', () => [...FUZZ, '--shard', '1/0'], /got '1\/0'/],
  ['fuzz --workers 65', 'asi-check', () => [...FUZZ, '--workers', '65'], /from 1 to 64/],
  ['fuzz --profile nope', 'asi-check', () => [...FUZZ, '--profile', 'nope'], /unknown profile 'nope'/],
  ['fuzz --mutant nope', 'asi-check', () => [...FUZZ, '--mutant', 'nope'], /unknown mutant 'nope'/],
  ['fuzz --cpus 5', 'asi-check', () => [...FUZZ, '--cpus', '5'], /from 1 to 4/],
  ['fuzz --option of a bad policy', 'asi-check', () => [...FUZZ, '--option', 'overlapPolicy=sometimes'], /overlapPolicy takes count-ranges or refcount-entries or refuse/],
  ['fuzz --known of a missing folder', 'asi-check', () => [...FUZZ, '--known', missing()], /--known .*: not a directory/],
  ['fuzz --kernel of an unknown configuration', 'asi-check', () => [...FUZZ, '--kernel', 'slub'], /unknown kernel configuration 'slub' \(one of thp=off, kernel-thread, slab=off, nokmem, pml=off, layout=1, slab\)/],
  ['replay of a file with --kernel', 'asi-check', () => ['replay', F5, '--kernel', 'slab'], /only apply to --seed/],
  ['fuzz with a misspelt flag', 'asi-check', () => [...FUZZ, '--seeds', '1'], /unknown option '--seeds' \(Did you mean --seed\?\)$/],
  ['fuzz with an argument', 'asi-check', () => [...FUZZ, 'now'], /too many arguments/],

  ['explore --scope of a FIFO', 'asi-check', () => ['explore', '--depth', '1', '--scope', join(fx, 'fifo')], /--scope .*fifo: neither a scope name \(small, wide, kvm, asi25\) nor a scope file: not a regular file \(a FIFO\)$/],
  ['explore --scope of /dev/zero', 'asi-check', () => ['explore', '--depth', '1', '--scope', '/dev/zero'], /--scope \/dev\/zero: .*not a regular file \(a device\)$/],
  ['explore --scope of a missing file', 'asi-check', () => ['explore', '--depth', '1', '--scope', join(fx, 'missing.json')], /nor a scope file: cannot read \(ENOENT/],

  ['mutants --seconds-per-mutant 0', 'asi-check', () => ['mutants', '--seconds-per-mutant', '0'], />= 1, got '0'/],
  ['mutants --workers 0', 'asi-check', () => ['mutants', '--workers', '0'], /from 1 to 64/],
  ['mutants --only with an unknown mutant', 'asi-check', () => ['mutants', '--only', 'copy-drops-nz'], /unknown mutant 'copy-drops-nz'/],
  ['mutants with an unknown flag', 'asi-check', () => ['mutants', '--mutant', 'x'], /unknown option '--mutant'/],

  ['nightly with an unknown flag', 'nightly', () => ['--bogus'], /^fuzz:nightly: Unknown option '--bogus'/],
  ['nightly --kernel of an unknown configuration', 'nightly', () => ['--kernel', 'slub'], /^fuzz:nightly: --kernel: unknown kernel configuration 'slub'/],
  ['nightly with a flag missing its value', 'nightly', () => ['--shard'], /argument missing/],
  ['nightly --shard 5/4', 'nightly', () => ['--shard', '5/4'], /--shard: expected i\/n/],
  ['nightly --profile nope', 'nightly', () => ['--profile', 'nope'], /--profile: unknown profile 'nope'/],
  ['nightly FUZZ_SHARDS=four', 'nightly', () => [], /FUZZ_SHARDS must be a whole number from 1 to 64, got 'four'/, { FUZZ_SHARDS: 'four' }],
  ['nightly FUZZ_SHARDS=0', 'nightly', () => [], /FUZZ_SHARDS .* got '0'/, { FUZZ_SHARDS: '0' }],
  ['nightly FUZZ_SECONDS=-1', 'nightly', () => [], /FUZZ_SECONDS .* got '-1'/, { FUZZ_SECONDS: '-1' }],
  ['nightly FUZZ_PROFILES with an unknown one', 'nightly', () => [], /FUZZ_PROFILES: unknown profile 'nope'/, { FUZZ_PROFILES: 'fixed,nope' }],
  ['nightly FUZZ_STRICT with an unknown one', 'nightly', () => [], /FUZZ_STRICT: unknown profile 'v9'/, { FUZZ_STRICT: 'v9' }],
  ['nightly FUZZ_SEED empty', 'nightly', () => [], /FUZZ_SEED is empty/, { FUZZ_SEED: '' }],
  ['nightly FUZZ_OUT of a file', 'nightly', () => [], /FUZZ_OUT .*: not a directory$/, { FUZZ_OUT: file() }],
  ['nightly FUZZ_OUT with a missing parent', 'nightly', () => [], /FUZZ_OUT .*: no such parent directory/, { FUZZ_OUT: missing() }],
  ['nightly FUZZ_KNOWN missing', 'nightly', () => [], /FUZZ_KNOWN .*: not a directory/, { FUZZ_KNOWN: missing() }],
];

/** Names, sizes, modes and contents, of links as links: what "nothing changed" means for a folder. */
function snapshot(dir: string): string {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .sort()
    .map((name) => {
      const st = lstatSync(join(dir, name));
      return `${name} ${st.mode} ${st.size} ${st.isFile() && st.size < 1e6 ? readFileSync(join(dir, name), 'base64') : ''}`;
    })
    .join('\n');
}

describe('bad input to every command: one line on stderr, exit 2, nothing written', () => {
  const batch: BatchCase[] = CASES.map(([, tool, args, , env], i) => {
    const cwd = join(cwds, String(i));
    mkdirSync(cwd);
    return { tool, args: args(), cwd, env: { ...NIGHTLY_ENV, ...env } };
  });
  let results: BatchResult[];
  let before: string;

  beforeAll(async () => {
    execFileSync('mkfifo', [join(fx, 'fifo')]);
    symlinkSync('a-file', join(fx, 'link'));
    symlinkSync('loop-b', join(fx, 'loop-a'));
    symlinkSync('loop-a', join(fx, 'loop-b'));
    mkdirSync(join(fx, 'empty'));
    // What downloading the nightly artifacts gives, minus the counterexamples.
    mkdirSync(join(fx, 'artifacts', 'summary'), { recursive: true });
    writeFileSync(join(fx, 'artifacts', 'summary', 'fixed-shard-1of4.json'), JSON.stringify({ seed: 'nightly-1-1', walks: 3, violations: [] }));
    mkdirSync(join(fx, 'damaged', 'sub'), { recursive: true });
    writeFileSync(join(fx, 'damaged', 'sub', 'x.json'), '{"format": "asi-check-counterexample"');
    // Sparse: one byte over the cap costs no disk.
    writeFileSync(join(fx, 'huge.json'), '');
    truncateSync(join(fx, 'huge.json'), MAX_FILE_BYTES + 1);
    before = snapshot(fx);
    results = await runBatch(batch);
  });

  test(`${CASES.length} cases over list, replay, triage, fuzz, explore, mutants and fuzz:nightly`, () => {
    expect(CASES.length).toBeGreaterThanOrEqual(40);
    const commands = new Set(CASES.map(([, tool, args]) => (tool === 'nightly' ? 'nightly' : args()[0])));
    for (const c of ['list', 'replay', 'triage', 'fuzz', 'explore', 'mutants', 'nightly']) expect(commands).toContain(c);
    results.forEach((r, i) => {
      const [what, , , message] = CASES[i];
      expect({ what, status: r.status, stdout: r.stdout }).toEqual({ what, status: 2, stdout: '' });
      const lines = r.stderr.split('\n');
      expect(lines, what).toHaveLength(2);
      expect(lines[1], what).toBe('');
      expect(lines[0], what).toMatch(/^(asi-check|error|fuzz:nightly): /);
      expect(lines[0], what).toMatch(message);
      expect(readdirSync(batch[i].cwd), `${what}: its working directory`).toEqual([]);
    });
    expect(snapshot(fx), 'the files the cases named').toBe(before);
  });

  test('as real processes, a sample of the cases behaves exactly the same', async () => {
    const sample = CASES.map((c, i) => [c, i] as const).filter(([[what]]) => /^(no command|replay of a FIFO|fuzz --out of a file|nightly FUZZ_SHARDS=four)$/.test(what));
    expect(sample).toHaveLength(4);
    const runs = await Promise.all(
      sample.map(([, i]) => startCli(batch[i].args, { cwd: batch[i].cwd, env: batch[i].env, ...(batch[i].tool === 'nightly' ? { script: NIGHTLY } : {}) }).done),
    );
    runs.forEach((r, k) => expect({ status: r.status, stdout: r.stdout, stderr: r.stderr }).toEqual(results[sample[k][1]]));
  });
});
