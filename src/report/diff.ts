// What one step changed, computed from the snapshots before and after it, and one line of text per
// change. Pure: the same two snapshots always give the same changes in the same order.

import { type Geometry, LEVEL_NAMES, formatVa } from '../model/mm/geometry.ts';
import type { AllocView, AsiView, CpuView, RangeView, Snapshot } from './snapshot.ts';

export type Change =
  | { readonly kind: 'asi-created' | 'asi-destroyed'; readonly asi: AsiView }
  | { readonly kind: 'range-added' | 'range-removed'; readonly range: RangeView }
  | { readonly kind: 'range-overlap'; readonly range: RangeView; readonly before: number }
  /** Pages a page table translates, for `space` "kernel" or "asi#N". */
  | { readonly kind: 'mapped'; readonly space: string; readonly before: number; readonly after: number }
  | { readonly kind: 'allocated' | 'freed'; readonly alloc: AllocView }
  /** Page-table pages come and go by the dozen (asi_create, asi_destroy): one change per step. */
  | { readonly kind: 'tables-allocated' | 'tables-freed'; readonly tables: readonly AllocView[] }
  | { readonly kind: 'cpu'; readonly cpu: number; readonly field: string; readonly before: string; readonly after: string };

/** Whether a change adds (+), removes (-) or modifies (~) something: the sign the trace prints. */
export function changeSign(c: Change): '+' | '-' | '~' {
  if (c.kind === 'asi-created' || c.kind === 'range-added' || c.kind === 'allocated' || c.kind === 'tables-allocated') return '+';
  if (c.kind === 'asi-destroyed' || c.kind === 'range-removed' || c.kind === 'freed' || c.kind === 'tables-freed') return '-';
  return '~';
}

function byKey<T>(xs: readonly T[], key: (x: T) => string): Map<string, T> {
  return new Map(xs.map((x) => [key(x), x]));
}

/** Items only in `a`, in a's order. */
function onlyIn<T>(a: Map<string, T>, b: Map<string, T>): T[] {
  return [...a].filter(([k]) => !b.has(k)).map(([, v]) => v);
}

const rangeKey = (r: RangeView) => `${r.asi}:${r.va}:${r.size}:${r.level}`;

function asiChanges(before: Snapshot, after: Snapshot): Change[] {
  const was = byKey(before.asis, (a) => String(a.id));
  const now = byKey(after.asis, (a) => String(a.id));
  const out: Change[] = [];
  if (before.kernelMappedPages !== after.kernelMappedPages) out.push({ kind: 'mapped', space: 'kernel', before: before.kernelMappedPages, after: after.kernelMappedPages });
  out.push(
    ...onlyIn(now, was).map((asi) => ({ kind: 'asi-created' as const, asi })),
    ...onlyIn(was, now).map((asi) => ({ kind: 'asi-destroyed' as const, asi })),
  );
  // By address rather than mapping_list order (newest first): easier to read against the op.
  const ranges = (s: Snapshot) => byKey(s.asis.flatMap((a) => a.ranges).sort((x, y) => x.asi - y.asi || x.va - y.va), rangeKey);
  const [r0, r1] = [ranges(before), ranges(after)];
  out.push(...onlyIn(r1, r0).map((range) => ({ kind: 'range-added' as const, range })));
  out.push(...onlyIn(r0, r1).map((range) => ({ kind: 'range-removed' as const, range })));
  for (const [k, range] of r1) {
    const old = r0.get(k);
    if (old && old.overlap !== range.overlap) out.push({ kind: 'range-overlap', range, before: old.overlap });
  }
  // A destroyed ASI maps nothing any more and a new one starts from nothing: both count from 0.
  for (const id of new Set([...was.keys(), ...now.keys()])) {
    const [b, a] = [was.get(id)?.mappedPages ?? 0, now.get(id)?.mappedPages ?? 0];
    if (a !== b) out.push({ kind: 'mapped', space: `asi#${id}`, before: b, after: a });
  }
  return out;
}

function allocChanges(before: Snapshot, after: Snapshot): Change[] {
  const was = byKey(before.allocs, (a) => String(a.id));
  const now = byKey(after.allocs, (a) => String(a.id));
  const out: Change[] = [];
  for (const [kind, allocs] of [['allocated', onlyIn(now, was)], ['freed', onlyIn(was, now)]] as const) {
    const tables = allocs.filter((a) => a.kind === 'pgtable');
    if (tables.length) out.push({ kind: `tables-${kind}`, tables });
    out.push(...allocs.filter((a) => a.kind !== 'pgtable').map((alloc) => ({ kind, alloc })));
  }
  return out;
}

/** Field by field, so that whatever the CPU view grows is diffed without changing this code. */
function cpuChanges(before: readonly CpuView[], after: readonly CpuView[]): Change[] {
  const was = byKey(before, (c) => String(c.cpu));
  const out: Change[] = [];
  for (const now of after) {
    const old: Partial<CpuView> = was.get(String(now.cpu)) ?? {};
    for (const field of new Set([...Object.keys(old), ...Object.keys(now)])) {
      if (field === 'cpu') continue;
      const [b, a] = [cpuField(old, field), cpuField(now, field)];
      if (a !== b) out.push({ kind: 'cpu', cpu: now.cpu, field, before: b, after: a });
    }
  }
  return out;
}

export function cpuField(c: Partial<CpuView>, field: string): string {
  const v = (c as Record<string, unknown>)[field];
  return v === undefined ? '-' : String(v);
}

export function diffSnapshots(before: Snapshot, after: Snapshot): Change[] {
  return [...asiChanges(before, after), ...allocChanges(before, after), ...cpuChanges(before.cpus, after.cpus)];
}

export function formatRange(g: Geometry, r: RangeView): string {
  return `[${formatVa(g, r.va)}, +0x${r.size.toString(16)}) ${LEVEL_NAMES[r.level]}`;
}

/** "pfn 4" or "pfn 4-7" for contiguous frames, else the list. */
export function formatFrames(frames: readonly number[]): string {
  const contiguous = frames.every((f, i) => f === frames[0] + i);
  if (frames.length > 1 && contiguous) return `pfn ${frames[0]}-${frames[frames.length - 1]}`;
  return `pfn ${frames.join(',')}`;
}

/** "ASI 1 pgd, 4 x ASI 1 pud table": how many pages of each kind of table. */
function tableKinds(tables: readonly AllocView[]): string {
  const counts = new Map<string, number>();
  for (const t of tables) counts.set(t.name, (counts.get(t.name) ?? 0) + 1);
  return [...counts].map(([name, n]) => (n > 1 ? `${n} x ${name}` : name)).join(', ');
}

/** One line for a change, without its sign. */
export function describeChange(g: Geometry, c: Change): string {
  switch (c.kind) {
    case 'asi-created':
      return `asi#${c.asi.id} created, pgd pfn ${c.asi.pgd}`;
    case 'asi-destroyed':
      return `asi#${c.asi.id} destroyed`;
    case 'range-added':
      return `asi#${c.range.asi} tracks ${formatRange(g, c.range)}`;
    case 'range-removed':
      return `asi#${c.range.asi} no longer tracks ${formatRange(g, c.range)}`;
    case 'range-overlap':
      return `asi#${c.range.asi} ${formatRange(g, c.range)} overlap count ${c.before} -> ${c.range.overlap}`;
    case 'mapped':
      return `${c.space} maps ${c.before} -> ${c.after} pages`;
    case 'allocated':
    case 'freed':
      return `${c.kind} ${c.alloc.kind} ${formatFrames(c.alloc.frames)} (${c.alloc.name}${c.alloc.sensitive ? ', sensitive' : ''})`;
    case 'tables-allocated':
    case 'tables-freed':
      return `${c.kind === 'tables-allocated' ? 'allocated' : 'freed'} page-table pages ${formatFrames(c.tables.flatMap((t) => t.frames))}: ${tableKinds(c.tables)}`;
    case 'cpu':
      return `cpu${c.cpu} ${c.field} ${c.before} -> ${c.after}`;
  }
}
