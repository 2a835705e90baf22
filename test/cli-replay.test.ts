// `asi-check replay` as a user runs it: the command line through main(), in this process
// (test/cli-run.ts), its exit status, stdout and stderr; the bin script in a real process is
// cli-scripting.test.ts's. Bad input to replay is in cli-bad-inputs.test.ts, with every other command's.

import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freshDir, root, runMain } from './cli-run.ts';

const F5 = join(root, 'counterexamples', 'rfc-v2+clearPresentPmd--refine--517b3a29e3ae.json');
const tmp = freshDir('replay');
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const replay = (...args: string[]) => runMain('replay', ...args);

/** A copy of F5 with `edit` applied to its JSON (or raw text), in the temp dir. */
function variant(name: string, edit: ((o: Record<string, any>) => void) | string): string {
  const path = join(tmp, name);
  if (typeof edit === 'string') writeFileSync(path, edit);
  else {
    const o = JSON.parse(readFileSync(F5, 'utf8')) as Record<string, any>;
    edit(o);
    writeFileSync(path, JSON.stringify(o));
  }
  return path;
}

describe('asi-check replay FILE', () => {
  it('says which asi-check saved the file, and when it no longer reproduces, that another one did', async () => {
    const old = variant('old.json', (o) => (o.invariant = 'PT-WF'));
    const r1 = await replay(old);
    expect(r1.status).toBe(0);
    expect(r1.stdout).toContain("saved by asi-check 0.1 (format 1, replayed on 0.1's memory: kernel layout 1)");
    expect(r1.stdout.trimEnd().split('\n').at(-1)).toMatch(/^the recorded PT-WF no longer reproduces under profile rfc-v2; the file was saved by asi-check 0\.1, this is \d+\.\d+\.\d+$/);
  });

  it('exits 1 with a numbered trace, state diffs and the violation when the counterexample reproduces', async () => {
    const r = await replay(F5);
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(/^ {2}1\. vmalloc 1p = #7$/m);
    expect(r.stdout).toMatch(/^ {2}2\. asi_create\(0\) = asi#1$/m);
    expect(r.stdout).toContain('+ asi#1 created, pgd pfn');
    expect(r.stdout).toContain('~ kernel maps 293 -> 292 pages');
    expect(r.stdout).toContain('- freed vmalloc pfn 63 (vmalloc)');
    // Judged at the first micro-step after vfree: the IPI's entry, before the shootdown.
    expect(r.stdout).toContain('VIOLATION REFINE inside step 4, at irq@entry: asi#1 maps 0xffffffffff40a000 -> pfn 63');
    expect(r.stdout.trimEnd().split('\n').at(-1)).toBe('reproduces REFINE inside step 4, at irq@entry');
    expect(r.stderr).toBe('');
  });

  it('exits 0 and says so when the same ops no longer reproduce (fixed profile)', async () => {
    const fixed = variant('fixed.json', (o) => (o.config = { geometry: 'small', cpus: 2, profile: 'fixed' }));
    const r = await replay(fixed);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('the recorded REFINE no longer reproduces under profile fixed');
    expect(r.stdout).not.toContain('VIOLATION');
  });

  it('writes --html atomically: the report has its sections and no temp file is left', async () => {
    const dir = mkdtempSync(join(tmp, 'html-'));
    const out = join(dir, 'report.html');
    const r = await replay(F5, '--html', out);
    expect(r.status).toBe(1);
    expect(readdirSync(dir)).toEqual(['report.html']);
    const html = readFileSync(out, 'utf8');
    for (const id of ['summary', 'steps', 'cpus', 'pagetables']) expect(html).toContain(`<section id="${id}">`);
    expect(html).toContain('<tr class="hit leaf">');
  });
});

describe('asi-check replay --seed', () => {
  it('re-runs a walk byte for byte, and with --html too', async () => {
    const args = ['--seed', 'cli-test/s0/w0/3', '--steps', '40', '--profile', 'rfc-v2'];
    const out = join(tmp, 'seed.html');
    const [a, b] = await Promise.all([replay(...args), replay(...args, '--html', out)]);
    expect([0, 1]).toContain(a.status);
    expect(b.status).toBe(a.status);
    expect(a.stdout).toMatch(/^ {2}1\. /m);
    expect(a.stdout).toContain('source: npx asi-check replay --seed cli-test/s0/w0/3 --steps 40 --profile rfc-v2\n');
    expect(b.stdout).toBe(`${a.stdout}report: ${out}\n`);
    expect(readFileSync(out, 'utf8')).toContain('<section id="pagetables">');
  });
});
