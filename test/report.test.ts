// The replay report: snapshots and their diffs, what a violation message highlights, and the HTML
// page (sections, highlighted entries, escaping, the CPU timeline), finally checked in a real
// browser when Chromium is installed.

import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadCounterexample } from '../src/check/counterexample.ts';
import { runOps } from '../src/check/run.ts';
import { GEOMETRIES, parseVa } from '../src/model/mm/geometry.ts';
import { describeChange, diffSnapshots } from '../src/report/diff.ts';
import { type ReportHeader, esc, renderHtml } from '../src/report/html.ts';
import { focusOf } from '../src/report/pagetree.ts';
import { type Replay, recordReplay } from '../src/report/record.ts';
import type { CpuView, Snapshot } from '../src/report/snapshot.ts';

const root = join(import.meta.dirname, '..');
const g = GEOMETRIES.small;
// F5: vfree leaves the page mapped in the ASI (REFINE at 0xffffffffff40a000, pfn 63).
const F5 = join(root, 'counterexamples', 'rfc-v2+clearPresentPmd--refine--517b3a29e3ae.json');

function replayOf(file: string): { replay: Replay; header: ReportHeader } {
  const c = loadCounterexample(file);
  const replay = recordReplay(c.config, (opts) => runOps(c.config, c.ops, { ...opts, stopOn: c.invariant }), [c.message]);
  return { replay, header: { title: c.title, verdict: 'reproduces', reproduced: true, source: file, recorded: { invariant: c.invariant, message: c.message } } };
}

const EMPTY: Snapshot = { kernelMappedPages: 10, asis: [], allocs: [], cpus: [] };

describe('diffSnapshots', () => {
  it('names what a step created, tracked, mapped and allocated', () => {
    const after: Snapshot = {
      kernelMappedPages: 10,
      asis: [{ id: 1, pgd: 65, mappedPages: 3, ranges: [{ asi: 1, va: 0x40a000, size: 0x1000, level: 0, overlap: 0 }] }],
      allocs: [
        { id: 7, kind: 'pgtable', name: 'ASI 1 pgd', frames: [65], sensitive: false },
        { id: 8, kind: 'pgtable', name: 'ASI 1 pte table', frames: [66], sensitive: false },
        { id: 9, kind: 'pgtable', name: 'ASI 1 pte table', frames: [67], sensitive: false },
        { id: 10, kind: 'kmalloc', name: 'kmalloc', frames: [80], sensitive: true },
      ],
      cpus: [],
    };
    const lines = diffSnapshots(EMPTY, after).map((c) => describeChange(g, c));
    expect(lines).toEqual([
      'asi#1 created, pgd pfn 65',
      'asi#1 tracks [0xffffffffff40a000, +0x1000) pte',
      'asi#1 maps 0 -> 3 pages',
      'allocated page-table pages pfn 65-67: ASI 1 pgd, 2 x ASI 1 pte table',
      'allocated kmalloc pfn 80 (kmalloc, sensitive)',
    ]);
    expect(diffSnapshots(after, EMPTY).map((c) => c.kind)).toEqual(['asi-destroyed', 'range-removed', 'mapped', 'tables-freed', 'freed']);
    expect(diffSnapshots(after, after)).toEqual([]);
  });

  it('diffs every CPU field, including ones the view does not declare yet', () => {
    const cpu0: CpuView = { cpu: 0, cr3: 'kernel pgd', session: 'none', depth: 0 };
    const later = { ...cpu0, cr3: 'asi#1 pgd', session: 'entered asi#1', irqStack: 'yes' } as CpuView;
    const changes = diffSnapshots({ ...EMPTY, cpus: [cpu0] }, { ...EMPTY, cpus: [later] });
    expect(changes.map((c) => describeChange(g, c))).toEqual(['cpu0 cr3 kernel pgd -> asi#1 pgd', 'cpu0 session none -> entered asi#1', 'cpu0 irqStack - -> yes']);
  });
});

describe('focusOf', () => {
  it('reads sign-extended addresses, pfns and refcounted entries out of violation messages, not sizes', () => {
    const f = focusOf(g, [
      'asi#1 still maps 0xffffffffff22e000 +0x1000 (pfn 46), which no live range covers',
      'asi#1: entry 0:8396800 has 0 references, but 1 live ranges rely on it',
      'pfn 46 again',
    ]);
    expect(f).toEqual({ vas: [parseVa(g, '0xffffffffff22e000'), 8396800], pfns: [46], cpus: [], asis: [1], allocations: [] });
  });

  it('reads CPUs, ASIs and task stacks', () => {
    const f = focusOf(g, ['asi#2 still maps the stack of task#4 (mapped by asi_enter on cpu1) after it left isolation', 'ASI 3 wrote']);
    expect(f).toMatchObject({ cpus: [1], asis: [2, 3], allocations: ['stack of task 4'] });
  });
});

describe('every saved counterexample', () => {
  const dir = join(root, 'counterexamples');
  const hits = (html: string, tag: string) => [...html.matchAll(/<(\w+) class="(?:[^"]* )?hit[" ]/g)].filter((m) => m[1] === tag).length;
  it.each(readdirSync(dir).filter((f) => f.endsWith('.json')))('%s: the report highlights what its violation names', (name) => {
    const { replay, header } = replayOf(join(dir, name));
    const html = renderHtml(header, replay);
    const message = header.recorded!.message;
    // What the message names and the run's end still has: a failing asi_create takes its ASI with it.
    const f = replay.focus;
    const present = f.cpus.length + f.vas.length + f.pfns.length + f.allocations.length + f.asis.filter((id) => replay.asis.some((a) => a.asi.id === id)).length;
    if (present) expect(hits(html, 'tr') + hits(html, 'td') + hits(html, 'h3'), 'some highlight').toBeGreaterThan(0);
    else expect(f.asis.length, 'it names at least an ASI the step destroyed').toBeGreaterThan(0);
    // A CPU invariant's evidence is the named CPU's CR3 and session at the failing step.
    if (/\bcpu\d+\b/.test(message)) expect(hits(html, 'td'), 'the named CPU').toBeGreaterThan(0);
  });
});

describe('renderHtml', () => {
  const { replay, header } = replayOf(F5);
  const html = renderHtml(header, replay);

  it('has the summary, steps, CPU and page-table sections, and loads nothing from outside', () => {
    for (const id of ['summary', 'steps', 'cpus', 'pagetables']) expect(html).toContain(`<section id="${id}">`);
    expect(html).toContain('<tr class="fail">');
    expect(html).not.toMatch(/(src|href)=|url\(|https?:\/\/|<script/);
  });

  it('highlights the pte the violation names, with the kernel view that contradicts it', () => {
    const hits = html.split('\n').filter((l) => l.startsWith('<tr class="hit leaf">'));
    // The ASI reaches pfn 63 twice: through the stale pte, and inside the direct map's large page (F1).
    const pte = hits.filter((l) => l.includes('0xffffffffff40a000 +4K'));
    expect(pte).toHaveLength(1);
    expect(pte[0]).toContain('pfn 63');
    expect(pte[0]).toContain('kernel: not mapped');
    // The pgd, pud and pmd entries on the walk to it are marked too.
    expect(html.split('\n').filter((l) => l.startsWith('<tr class="hit">')).length).toBeGreaterThanOrEqual(3);
  });

  it('shows the empty entry where a named address is not mapped, and what the kernel maps there', () => {
    // A copy that stops one page early: RANGE-EXACT names 0xffffffffff403000, which the ASI's pte table leaves empty.
    const short = replayOf(join(root, 'counterexamples', 'mutant-pte-copy-stops-early--range-exact--2e28b178e41a.json'));
    const missing = renderHtml(short.header, short.replay)
      .split('\n')
      .filter((l) => l.includes('not present'));
    expect(missing).toHaveLength(1);
    expect(missing[0]).toMatch(/^<tr class="hit leaf">.*pte\[3\].*0xffffffffff403000 \+4K.*kernel: pfn \d+ PWkxG/);
  });

  it('escapes every piece of text', () => {
    expect(esc(`<b> & "q" 'a'`)).toBe('&#60;b&#62; &#38; &#34;q&#34; &#39;a&#39;');
    const evil = renderHtml({ ...header, title: '<script>alert(1)</script>', source: 'a&b.json' }, replay);
    expect(evil).not.toContain('<script>');
    expect(evil).toContain('&#60;script&#62;alert(1)&#60;/script&#62;');
    expect(evil).toContain('a&#38;b.json');
  });

  it("shows each CPU's cr3, session and task in the timeline", () => {
    const cpus = html.slice(html.indexOf('<section id="cpus">'), html.indexOf('<section id="pagetables">'));
    for (const text of ['cpu0', 'cpu1', 'kernel/pcid1', '<th>task</th>', '<th>preempt</th>']) expect(cpus).toContain(text);
  });

  it('renders a CPU timeline, marking what each step changed', () => {
    const idle = (cpu: number): CpuView => ({ cpu, cr3: 'kernel pgd', session: 'none', depth: 0 });
    const entered: CpuView = { cpu: 1, cr3: 'asi#1 pgd', session: 'entered asi#1', depth: 1, task: 'task#2' };
    const withCpus: Replay = { ...replay, bootCpus: [idle(0), idle(1)], steps: replay.steps.map((s) => ({ ...s, cpus: s.n >= 3 ? [idle(0), entered] : [idle(0), idle(1)] })) };
    const page = renderHtml(header, withCpus);
    const cpus = page.slice(page.indexOf('<section id="cpus">'), page.indexOf('<section id="pagetables">'));
    expect(cpus).toContain('<th colspan="4">cpu0</th><th colspan="4">cpu1</th>');
    for (const f of ['cr3', 'session', 'depth', 'task']) expect(cpus).toContain(`<th>${f}</th>`);
    const rows = cpus.split('\n').filter((l) => l.startsWith('<tr><td class="n">'));
    expect(rows).toHaveLength(1 + replay.steps.length);
    expect(rows[3]).toContain('<td class="mono changed">asi#1 pgd</td>');
    expect(rows[3]).toContain('<td class="mono changed">task#2</td>');
    expect(rows[4]).not.toContain('changed');
  });
});

describe('a step with a race', () => {
  // F38: cpu1's kvm_io_bus_unregister_dev runs inside cpu0's KVM_RUN, between patch 26's read of
  // kvm->buses[1] and its use.
  const F38 = join(root, 'counterexamples', 'rfc-v2--no-uaf--72be468558bc.json');
  const { replay, header } = replayOf(F38);
  const raced = replay.steps.at(-1)!;
  const html = renderHtml(header, replay);

  it('shows the two CPUs side by side, a row per stretch each ran, in the order they ran', () => {
    expect(raced.race).toEqual({ host: 0, racer: 1 });
    const table = html.slice(html.indexOf('<table class="race">'), html.indexOf('</table>', html.indexOf('<table class="race">')));
    expect(table).toContain('<th>cpu0: the op in flight</th><th>cpu1: the racing op</th>');
    const rows = table.split('<tr>').slice(2);
    const column = (row: string) => (row.startsWith('<td></td>') ? 'cpu1' : 'cpu0');
    // cpu0 logs nothing up to its read; cpu1 runs its ioctl to its end, then cpu0 goes on and uses what it read.
    expect(rows.map(column)).toEqual(['cpu1', 'cpu0']);
    expect(rows[1]).toContain('remapped kvm buses[1]');
    expect(rows[0]).toContain(esc('runs at vcpu_run@vcpu_isolation_enter reads kvm->buses[1]'));
    expect(rows[0]).toContain(esc('kvm_io_bus_unregister_dev vm#1 bus 1 = 0'));
  });

  it("keeps the racing op's lines in the text trace, in the same order", () => {
    const lines = raced.log.map((e) => e.text);
    const racer = raced.log.filter((e) => e.cpu === 1).map((e) => e.text);
    expect(racer.length).toBeGreaterThan(1);
    expect(lines.indexOf(racer[0])).toBeLessThan(lines.indexOf(racer.at(-1)!));
  });
});

describe('in a browser', () => {
  // No arguments, as a user first runs it: the default report must pass too. It makes its own folder.
  it.skipIf(!existsSync('/usr/bin/chromium'))('scripts/check-html-report.sh passes with no arguments: Chromium renders the sections and a highlight', () => {
    const log = execFileSync(join(root, 'scripts', 'check-html-report.sh'), [], { encoding: 'utf8', env: { ...process.env, CHROMIUM: '/usr/bin/chromium' } });
    const out = dirname(/^report: (.*)$/m.exec(log)![1]);
    try {
      expect(log).toContain('ok   what the violation names is highlighted');
      expect(existsSync(join(out, 'report.png'))).toBe(true);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});
