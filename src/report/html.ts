// The replay as one self-contained HTML page (inline CSS, no scripts, no external URLs): the
// summary, every step with its outcome and diff, the CPUs step by step, and the ASI page tables
// where the run stopped with the entries the violation names highlighted. Pure: text in, text out;
// every piece of model text goes through `esc`.

import { LEVEL_NAMES, PAGE_SIZE, formatVa } from '../model/mm/geometry.ts';
import { lowerLevel } from '../model/mm/pagetable.ts';
import type { Config } from '../model/system.ts';
import { changeSign, cpuField, describeChange, formatRange } from './diff.ts';
import { type PtRow, covers } from './pagetree.ts';
import type { AsiReport, Replay, StepView } from './record.ts';
import type { TraceEvent } from '../model/trace.ts';
import { failurePlace } from '../check/run.ts';
import { kernelWords } from '../check/counterexample.ts';
import type { CpuView } from './snapshot.ts';

export interface ReportHeader {
  readonly title: string;
  /** One sentence: does it reproduce, and what. */
  readonly verdict: string;
  readonly reproduced: boolean;
  /** Where the ops came from: the file, or the command that re-runs the walk. */
  readonly source: string;
  /** What a saved file recorded. */
  readonly recorded?: { readonly invariant: string; readonly message: string };
}

export function esc(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const CSS = `
body { font: 14px/1.45 system-ui, sans-serif; margin: 24px 32px; color: #1d232a; background: #fff; }
h1 { font-size: 20px; margin: 0 0 12px; } h2 { font-size: 17px; margin: 28px 0 8px; border-bottom: 2px solid #d0d7de; padding-bottom: 4px; }
h3 { font-size: 15px; margin: 18px 0 6px; }
code, .mono, td.mono { font: 13px/1.4 ui-monospace, "DejaVu Sans Mono", monospace; }
table { border-collapse: collapse; margin: 4px 0 12px; }
th, td { border: 1px solid #d0d7de; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f2f4f7; font-weight: 600; }
dl.summary { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; margin: 0; }
dl.summary dt { font-weight: 600; color: #57606a; } dl.summary dd { margin: 0; }
.verdict { font-weight: 700; padding: 6px 10px; border-radius: 4px; display: inline-block; }
.verdict.bad { background: #ffebe9; color: #a40e26; } .verdict.good { background: #dafbe1; color: #116329; }
.violation { color: #a40e26; font-weight: 600; }
tr.fail > td { background: #fff1f0; }
td.n { text-align: right; color: #57606a; }
td.op { white-space: nowrap; }
.log { color: #6e7781; } .add { color: #116329; } .del { color: #a40e26; } .mod { color: #9a6700; }
.err { color: #a40e26; }
tr.hit > td { background: #fff3b0; } tr.hit.leaf > td, tr.hit.range > td, tr.hit.frame > td { background: #ffd33d; font-weight: 600; }
td.hit, th.hit, h3.hit { background: #ffd33d; font-weight: 600; }
dl.summary code { white-space: pre-wrap; overflow-wrap: anywhere; }
td.changed { background: #ddf4ff; }
.differs { color: #a40e26; font-weight: 600; }
.shared { color: #6e7781; font-style: italic; }
.none { color: #6e7781; font-style: italic; }
table.race { width: 100%; } table.race td { width: 50%; }
.legend span { display: inline-block; padding: 0 6px; margin-right: 8px; border: 1px solid #d0d7de; }
`;

/** The start configuration on one line, the kernel in the words a file name uses (`kernel thp=off+slab`). */
function configText(c: Config): string {
  const parts = [`geometry ${c.geometry}`, `cpus ${c.cpus}`, `profile ${c.profile}`];
  if (c.mutant) parts.push(`mutant ${c.mutant}`);
  const kernel = kernelWords(c.kernel);
  if (kernel.length) parts.push(`kernel ${kernel.join('+')}`);
  if (c.options && Object.keys(c.options).length) parts.push(`options ${Object.entries(c.options).map(([k, v]) => `${k}=${String(v)}`).join(' ')}`);
  return parts.join(' · ');
}

function summary(h: ReportHeader, r: Replay): string {
  const rows: [string, string][] = [
    ['verdict', `<span class="verdict ${h.reproduced ? 'bad' : 'good'}">${esc(h.verdict)}</span>`],
    ['source', `<code>${esc(h.source)}</code>`],
    ['config', `<code>${esc(configText(r.config))}</code>`],
  ];
  if (h.recorded) rows.push(['recorded', `<b>${esc(h.recorded.invariant)}</b>: ${esc(h.recorded.message)}`]);
  for (const v of r.failure?.violations ?? []) rows.push([esc(failurePlace(r.failure!)), `<span class="violation">${esc(v.invariant)}</span>: ${esc(v.message)}`]);
  const dl = rows.map(([k, v]) => `<dt>${esc(k)}</dt><dd>${v}</dd>`).join('');
  return `<section id="summary"><h1>${esc(h.title)}</h1><dl class="summary">${dl}</dl></section>`;
}

const SIGN_CLASS = { '+': 'add', '-': 'del', '~': 'mod' } as const;

const logLine = (e: TraceEvent) => `<div class="log">${esc(`${e.kind}: ${e.text}`)}</div>`;

/**
 * A step whose op had a race: its lines side by side, a column per CPU, a row per stretch one CPU
 * ran, in the order they ran.
 */
function sideBySide(s: StepView, race: NonNullable<StepView['race']>): string {
  const runs: { racer: boolean; lines: string[] }[] = [];
  for (const e of s.log) {
    const racer = e.cpu !== undefined;
    if (runs.at(-1)?.racer !== racer) runs.push({ racer, lines: [] });
    runs.at(-1)!.lines.push(logLine(e));
  }
  const rows = runs.map((x) => (x.racer ? `<tr><td></td><td>${x.lines.join('')}</td></tr>` : `<tr><td>${x.lines.join('')}</td><td></td></tr>`));
  return `<table class="race"><thead><tr><th>cpu${race.host}: the op in flight</th><th>cpu${race.racer}: the racing op</th></tr></thead><tbody>${rows.join('')}</tbody></table>`;
}

function steps(r: Replay): string {
  const failAt = r.failure ? r.failure.step + 1 : -1;
  const body = r.steps
    .map((s) => {
      const details = [
        ...(s.race ? [sideBySide(s, s.race)] : s.log.map(logLine)),
        ...s.changes.map((c) => {
          const sign = changeSign(c);
          return `<div class="${SIGN_CLASS[sign]}">${esc(`${sign} ${describeChange(r.g, c)}`)}</div>`;
        }),
        ...(s.n === failAt ? r.failure!.violations.map((v) => `<div class="violation">${esc(`VIOLATION ${v.invariant}: ${v.message}`)}</div>`) : []),
      ];
      const ret = s.ret.startsWith('-E') ? `<span class="err">${esc(s.ret)}</span>` : esc(s.ret);
      return `<tr${s.n === failAt ? ' class="fail"' : ''}><td class="n">${s.n}</td><td class="mono op">${esc(s.op)}</td><td class="mono">${ret}</td><td class="mono">${details.join('')}</td></tr>`;
    })
    .join('\n');
  return `<section id="steps"><h2>Steps</h2><table><thead><tr><th>#</th><th>op</th><th>returns</th><th>log and state changes</th></tr></thead><tbody>\n${body}\n</tbody></table></section>`;
}

/** The CPU fields shown, in the order CpuView declares them, plus any a later model adds. */
function cpuFields(views: readonly CpuView[]): string[] {
  return [...new Set(views.flatMap((v) => Object.keys(v)))].filter((f) => f !== 'cpu');
}

function cpuTimeline(r: Replay): string {
  const timeline: { label: string; cpus: readonly CpuView[] }[] = [{ label: 'boot', cpus: r.bootCpus }, ...r.steps.map((s) => ({ label: String(s.n), cpus: s.cpus }))];
  const all = timeline.flatMap((t) => t.cpus);
  if (all.length === 0) return `<section id="cpus"><h2>CPUs</h2><p class="none">The model has no per-CPU state (CR3, asi_session, interrupt depth) yet.</p></section>`;
  const ids = [...new Set(all.map((c) => c.cpu))].sort((a, b) => a - b);
  const fields = cpuFields(all);
  // The CPU a violation names, at the step where it fails (or the last one): its CR3 and session are the evidence.
  const named = (id: number) => r.focus.cpus.includes(id);
  const failRow = r.failure ? r.failure.step + 1 : timeline.length - 1;
  const head = `<tr><th rowspan="2">step</th>${ids.map((id) => `<th colspan="${fields.length}"${named(id) ? ' class="hit"' : ''}>cpu${id}</th>`).join('')}</tr><tr>${ids.map(() => fields.map((f) => `<th>${esc(f)}</th>`).join('')).join('')}</tr>`;
  const body = timeline
    .map((t, i) => {
      const cells = ids.flatMap((id) => {
        const now = t.cpus.find((c) => c.cpu === id) ?? {};
        const before = i === 0 ? now : (timeline[i - 1].cpus.find((c) => c.cpu === id) ?? {});
        const cls = (f: string) => `mono${cpuField(now, f) !== cpuField(before, f) ? ' changed' : ''}${i === failRow && named(id) ? ' hit' : ''}`;
        return fields.map((f) => `<td class="${cls(f)}">${esc(cpuField(now, f))}</td>`);
      });
      return `<tr><td class="n">${esc(t.label)}</td>${cells.join('')}</tr>`;
    })
    .join('\n');
  return `<section id="cpus"><h2>CPUs</h2><p class="legend"><span class="changed" style="background:#ddf4ff">changed by the step</span><span style="background:#ffd33d">CPU the violation names, where it fails</span></p><table><thead>${head}</thead><tbody>\n${body}\n</tbody></table></section>`;
}

/** Entry sizes span 4K to 512G: "2M" reads better than "+512p". */
function humanSize(bytes: number): string {
  for (const [unit, n] of [['T', 2 ** 40], ['G', 2 ** 30], ['M', 2 ** 20], ['K', 2 ** 10]] as const) if (bytes % n === 0) return `${bytes / n}${unit}`;
  return `0x${bytes.toString(16)}`;
}

/** Where an entry points: a lower table, the frames of a leaf, or nowhere. */
function pointsTo(row: PtRow): string {
  const pages = row.size / PAGE_SIZE;
  if (row.kind === 'none') return 'not present';
  if (row.kind === 'table') return `${LEVEL_NAMES[lowerLevel(row.level)]} table pfn ${row.frame}`;
  return pages > 1 ? `pfn ${row.frame}-${row.frame + pages - 1}` : `pfn ${row.frame}`;
}

/** A table entry is either the ASI's own or a kernel table it shares; a leaf agrees with the kernel or not. */
function kernelView(row: PtRow): string {
  if (row.kind === 'table') return row.shared ? `<span class="shared">shared with the kernel (${esc(row.frameName)})</span>` : '';
  return row.kernel ? `<span class="differs">kernel: ${esc(row.kernel)}</span>` : 'same';
}

function ptRow(r: Replay, row: PtRow): string {
  const name = `${'\u00a0'.repeat(4 * row.depth)}${LEVEL_NAMES[row.level]}[${row.index}]`;
  // Entries on the walk to a named address are marked; the entry the violation is about, more so.
  const cls = row.hit ? (row.kind === 'table' ? ' class="hit"' : ' class="hit leaf"') : '';
  const cells = [
    `<td class="mono">${esc(name)}</td>`,
    `<td class="mono">${esc(`${formatVa(r.g, row.va)} +${humanSize(row.size)}`)}</td>`,
    `<td class="mono">${esc(pointsTo(row))}</td>`,
    `<td>${esc(row.kind === 'table' ? '' : row.frameName)}</td>`,
    `<td class="mono">${esc(row.flags)}</td>`,
    `<td>${esc(row.kind)}</td>`,
    `<td>${kernelView(row)}</td>`,
  ];
  return `<tr${cls}>${cells.join('')}</tr>`;
}

function asiSection(r: Replay, a: AsiReport): string {
  const ranges = a.asi.ranges.length
    ? `<table><thead><tr><th>tracked range</th><th>level</th><th>overlap</th></tr></thead><tbody>${a.asi.ranges
        .map((x) => `<tr${covers(r.focus, x.va, x.size) ? ' class="hit range"' : ''}><td class="mono">${esc(formatRange(r.g, x))}</td><td>${esc(LEVEL_NAMES[x.level])}</td><td>${x.overlap}</td></tr>`)
        .join('\n')}</tbody></table>`
    : '<p class="none">no tracked ranges</p>';
  return `<div class="asi" id="asi-${a.asi.id}"><h3${r.focus.asis.includes(a.asi.id) ? ' class="hit"' : ''}>asi#${a.asi.id} — pgd pfn ${a.asi.pgd}, ${a.asi.mappedPages} pages mapped</h3>${ranges}${ptTable(r, a.rows)}</div>`;
}

function ptTable(r: Replay, rows: readonly PtRow[]): string {
  return `<table class="pt"><thead><tr><th>entry</th><th>VA range</th><th>points to</th><th>frame holds</th><th>flags</th><th>kind</th><th>kernel's view</th></tr></thead><tbody>\n${rows.map((row) => ptRow(r, row)).join('\n')}\n</tbody></table>`;
}

/** The 2025 design: its one page table every domain's kernel half is. */
function global25Section(r: Replay, g: NonNullable<Replay['global25']>): string {
  return `<div class="asi" id="asi25-global"><h3>global nonsensitive pgd (every domain's kernel half) — pgd pfn ${g.pgd}</h3>${ptTable(r, g.rows)}</div>`;
}

function pageTables(r: Replay): string {
  const at = r.failure ? `after the failing step ${r.failure.step + 1}` : `after the last step ${r.steps.length}`;
  const legend = `<p class="legend"><span style="background:#ffd33d">entry the violation names</span><span style="background:#fff3b0">table entry on its walk</span><span class="differs">kernel maps it differently</span> flags: P present, W/r write, U/k user, x/X no-exec, G global, L large</p>`;
  const named = r.focus.vas.length || r.focus.pfns.length ? `<p>Named by the violation: <code>${esc([...r.focus.vas.map((v) => formatVa(r.g, v)), ...r.focus.pfns.map((p) => `pfn ${p}`)].join(', '))}</code></p>` : '';
  const frames = r.frames.length
    ? `<table><thead><tr><th>frame named</th><th>holds ${esc(at)}</th></tr></thead><tbody>${r.frames.map((f) => `<tr class="hit frame"><td class="mono">pfn ${f.pfn}</td><td>${esc(f.holds)}</td></tr>`).join('\n')}</tbody></table>`
    : '';
  const sections = [...r.asis.map((a) => asiSection(r, a)), ...(r.global25 ? [global25Section(r, r.global25)] : [])];
  const body = sections.length ? sections.join('\n') : '<p class="none">No ASI exists at this point.</p>';
  return `<section id="pagetables"><h2>ASI page tables ${esc(at)}</h2>${legend}${named}${frames}${body}</section>`;
}

/** How every report begins: an existing file that does not is not a report, and is never replaced by one. */
export const REPORT_HEAD = '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>asi-check: ';

export function renderHtml(h: ReportHeader, r: Replay): string {
  return `${REPORT_HEAD}${esc(h.title)}</title><style>${CSS}</style></head>
<body>
${summary(h, r)}
${steps(r)}
${cpuTimeline(r)}
${pageTables(r)}
</body></html>
`;
}
