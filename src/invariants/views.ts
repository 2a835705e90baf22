// What the incremental checker keeps across the checks of one run: each page table's leaves, with
// where each of its tables was read and how many leaves reach each frame, brought up to date from
// the model's change log (Memory.tableLog, Memory.frameLog) so that a step pays for the tables it
// wrote, not for every table of the machine: only the subtrees under changed tables are read again.
// Each tree keeps a short journal of what changed (translations moved, frames that changed owner,
// tables read again), so that a judgement asks what changed since it last looked and judges again
// only there.

import { PAGE_SIZE, PGT_LEVEL_PGD, vaLimit } from '../model/mm/geometry.ts';
import { type Leaf, type TableRead, leaves, subtreeLeaves, tableWindow } from '../model/mm/pagetable.ts';
import type { Asi, AsiRange, System } from '../model/system.ts';
import type { Phase } from './types.ts';

/** One page table as the invariants read it. */
export interface TreeView {
  /** Bumped whenever a table the tree was read from changed, or was allocated or freed. */
  readonly gen: number;
  /** The latest change of any kind: `gen`, or a frame its leaves reach allocated or freed. */
  readonly stamp: number;
  readonly leaves: readonly Leaf[];
  /** No frame was read as a table at two places of the tree: it is a tree, not a graph. */
  readonly readOnce: boolean;
}

/** A VA window [lo, hi). */
export type Window = readonly [number, number];

/** What changed in a tree since a stamp. */
export interface Changes {
  /** Where its translations moved. */
  readonly windows: readonly Window[];
  /** Frames its leaves reach that were allocated or freed, or changed objects. */
  readonly frames: readonly number[];
  /** The windows of the tables read again: outside them, every table of the tree is as it was. */
  readonly reread: readonly Window[];
}

interface Change extends Changes {
  readonly stamp: number;
  readonly frames: number[];
}

const NO_CHANGES: Changes = { windows: [], frames: [], reread: [] };

/** Changes kept per tree: a judgement that has not looked for longer judges afresh. */
const JOURNAL = 32;

interface Tree extends TreeView {
  gen: number;
  stamp: number;
  leaves: Leaf[];
  readOnce: boolean;
  /** Where each frame looked up as a table while reading the leaves was read, present or not. */
  reads: Map<number, TableRead[]>;
  /** How many leaves reach each frame. */
  frames: Int32Array;
  /** The tables changed since they were read; `all`: read the whole tree again. */
  dirty: Set<number>;
  all: boolean;
  /** The changes after `since`, oldest first. */
  journal: Change[];
  since: number;
}

export class Views {
  private readonly trees = new Map<number, Tree>();
  /** Positions in the change log (counted over the whole run) read so far. */
  private tableRead = -1;
  private frameRead = -1;
  /** Stamps are drawn from one counter, so a tree read afresh never repeats one a judgement holds. */
  private gens = 0;
  /** Bumped whenever an allocation was made or freed: judgements on which allocations live key on it. */
  allocGen = 0;
  private allocEpoch = -1;

  /** Reads what the model changed since the last check. */
  update(sys: System): void {
    const m = sys.mem;
    if (this.tableRead < m.tableLogStart || this.frameRead < m.frameLogStart) {
      // Entries were dropped unread (or this is the first check): nothing kept can be trusted.
      this.trees.clear();
      this.allocGen = ++this.gens;
    } else {
      for (let i = this.tableRead - m.tableLogStart; i < m.tableLog.length; i++) this.tableChanged(m.tableLog[i]);
      if (this.frameRead < m.frameLogStart + m.frameLog.length) {
        // Objects coming or going on a slab or percpu page change owners, not which allocations live.
        const stamp = ++this.gens;
        if (m.allocEpoch !== this.allocEpoch) this.allocGen = stamp;
        for (let i = this.frameRead - m.frameLogStart; i < m.frameLog.length; i++) this.frameChanged(m.frameLog[i], stamp);
      }
    }
    this.allocEpoch = m.allocEpoch;
    this.tableRead = m.tableLogStart + m.tableLog.length;
    this.frameRead = m.frameLogStart + m.frameLog.length;
    for (const root of this.trees.keys()) if (!sys.tables.has(root)) this.trees.delete(root);
  }

  private tableChanged(frame: number): void {
    for (const t of this.trees.values()) if (t.reads.has(frame)) t.dirty.add(frame);
  }

  private frameChanged(frame: number, stamp: number): void {
    for (const t of this.trees.values()) {
      // A table frame reassigned changes what PT-WF reads of it, and whether it is a table at all.
      if (t.reads.has(frame)) t.dirty.add(frame);
      if (!t.frames[frame]) continue;
      const last = t.journal[t.journal.length - 1];
      if (last?.stamp === stamp) last.frames.push(frame);
      else record(t, { stamp, windows: [], frames: [frame], reread: [] });
    }
  }

  /** The page table under `root`, with the tables a change reached read again. */
  tree(sys: System, root: number): TreeView {
    let t = this.trees.get(root);
    if (!t) {
      const stamp = ++this.gens;
      t = { gen: stamp, stamp, leaves: [], readOnce: true, reads: new Map(), frames: new Int32Array(sys.mem.frameAlloc.length), dirty: new Set(), all: true, journal: [], since: stamp };
      this.trees.set(root, t);
    }
    if (t.all || t.dirty.size > 0) {
      const change = (t.all ? undefined : readParts(sys, t)) ?? readAll(sys, root, t);
      t.readOnce = [...t.reads.values()].every((rs) => rs.length === 1);
      t.gen = ++this.gens;
      record(t, { stamp: t.gen, ...change, frames: [] });
      t.dirty.clear();
      t.all = false;
    }
    return t;
  }

  /**
   * What changed in the tree under `root` since `stamp` (a TreeView's stamp the caller kept):
   * undefined when that is not known any more (the caller judges afresh).
   */
  changesSince(sys: System, root: number, stamp: number | undefined): Changes | undefined {
    const t = this.tree(sys, root) as Tree;
    if (stamp === undefined || stamp < t.since) return undefined;
    if (stamp === t.stamp) return NO_CHANGES;
    const windows: Window[] = [];
    const frames: number[] = [];
    const reread: Window[] = [];
    for (let i = t.journal.length - 1; i >= 0 && t.journal[i].stamp > stamp; i--) {
      windows.push(...t.journal[i].windows);
      frames.push(...t.journal[i].frames);
      reread.push(...t.journal[i].reread);
    }
    return { windows, frames, reread };
  }
}

function record(t: Tree, c: Change): void {
  t.journal.push(c);
  t.stamp = c.stamp;
  if (t.journal.length > JOURNAL) t.since = t.journal.shift()!.stamp;
}

/** Reads the whole tree again. */
function readAll(sys: System, root: number, t: Tree): Omit<Changes, 'frames'> {
  const reads: TableRead[] = [];
  const fresh = leaves(sys.g, sys.tables, root, undefined, undefined, reads);
  const windows = movedWindows(t.leaves, fresh);
  t.reads = new Map();
  addReads(t, reads);
  t.frames.fill(0);
  countFrames(t, fresh, 1);
  t.leaves = fresh;
  return { windows, reread: [[0, vaLimit(sys.g)]] };
}

/**
 * Reads again only the subtrees of the changed tables, outermost first; undefined when that is
 * not sound: the root changed, or a changed table sits at two places of the tree.
 */
function readParts(sys: System, t: Tree): Omit<Changes, 'frames'> | undefined {
  const changed: TableRead[] = [];
  for (const f of t.dirty) {
    const rs = t.reads.get(f)!;
    if (rs.length !== 1 || rs[0].level === PGT_LEVEL_PGD) return undefined;
    changed.push(rs[0]);
  }
  changed.sort((a, b) => b.level - a.level);
  const outer: { at: TableRead; window: Window }[] = [];
  for (const at of changed) {
    const [lo, hi] = tableWindow(sys.g, at);
    if (!outer.some(({ window: [a, b] }) => a <= lo && hi <= b)) outer.push({ at, window: [lo, hi] });
  }
  const windows: Window[] = [];
  for (const { at, window: [lo, hi] } of outer) {
    // The subtree's reads, the table's own included, are recorded anew as it is read again.
    for (const [f, rs] of t.reads) {
      const kept = rs.filter((r) => !(r.level <= at.level && r.base >= lo && r.base < hi));
      if (kept.length === 0) t.reads.delete(f);
      else if (kept.length < rs.length) t.reads.set(f, kept);
    }
    const reads: TableRead[] = [];
    const fresh = subtreeLeaves(sys.g, sys.tables, at, undefined, undefined, reads);
    addReads(t, reads);
    // A table's leaves lie inside its window, and no other leaf does.
    const i = firstEndingAfter(t.leaves, lo);
    let j = i;
    while (j < t.leaves.length && t.leaves[j].va < hi) j++;
    const old = t.leaves.slice(i, j);
    windows.push(...movedWindows(old, fresh));
    countFrames(t, old, -1);
    countFrames(t, fresh, 1);
    t.leaves = [...t.leaves.slice(0, i), ...fresh, ...t.leaves.slice(j)];
  }
  return { windows, reread: outer.map((o) => o.window) };
}

function addReads(t: Tree, reads: readonly TableRead[]): void {
  for (const r of reads) {
    const rs = t.reads.get(r.table);
    if (rs) rs.push(r);
    else t.reads.set(r.table, [r]);
  }
}

function countFrames(t: Tree, ls: readonly Leaf[], by: number): void {
  for (const l of ls) for (let f = l.frame, end = Math.min(l.frame + l.size / PAGE_SIZE, t.frames.length); f < end; f++) t.frames[f] += by;
}

/** The same translation: a leaf's position in its table does not matter to a judgement. */
function sameLeaf(a: Leaf, b: Leaf): boolean {
  return a.va === b.va && a.size === b.size && a.frame === b.frame && a.flags === b.flags;
}

/** Where two leaf lists (in address order, as `leaves` gives them) translate differently. */
function movedWindows(a: readonly Leaf[], b: readonly Leaf[]): Window[] {
  const out: Window[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    const x = a[i];
    const y = b[j];
    if (x !== undefined && y !== undefined && sameLeaf(x, y)) {
      i++;
      j++;
    } else if (y === undefined || (x !== undefined && x.va <= y.va)) {
      out.push([x.va, x.va + x.size]);
      i++;
    } else {
      out.push([y.va, y.va + y.size]);
      j++;
    }
  }
  return out;
}

/** The stamps of an ASI's page table and of the kernel's that a judgement last saw. */
export interface SeenStamps {
  readonly asi: number;
  readonly kernel: number;
}

/**
 * For judgements that walk an ASI's page table and the kernel's: where either moved since `seen`
 * (undefined: not known, judge afresh), and the stamps to remember now.
 */
export function movedWithKernel(views: Views, sys: System, asi: Asi, seen: SeenStamps | undefined): { moved: readonly Window[] | undefined; now: SeenStamps } {
  const asiMoved = views.changesSince(sys, asi.pgd, seen?.asi)?.windows;
  const kernelMoved = views.changesSince(sys, sys.kernel.pgd, seen?.kernel)?.windows;
  const now = { asi: views.tree(sys, asi.pgd).stamp, kernel: views.tree(sys, sys.kernel.pgd).stamp };
  return { moved: asiMoved && kernelMoved && [...asiMoved, ...kernelMoved], now };
}

/** The windows of the leaves that reach one of `frames`. */
export function windowsReaching(ls: readonly Leaf[], frames: readonly number[]): Window[] {
  const out: Window[] = [];
  if (frames.length === 0) return out;
  const set = new Set(frames);
  for (const l of ls) if (reaches(l, set)) out.push([l.va, l.va + l.size]);
  return out;
}

/** Whether the leaf reaches a frame of `set`: by whichever is shorter, the leaf's frames or the set. */
function reaches(l: Leaf, set: Set<number>): boolean {
  const end = l.frame + l.size / PAGE_SIZE;
  if (end - l.frame <= set.size) {
    for (let f = l.frame; f < end; f++) if (set.has(f)) return true;
    return false;
  }
  for (const f of set) if (f >= l.frame && f < end) return true;
  return false;
}

/** Whether [lo, hi) meets one of the windows. */
export function meets(windows: readonly Window[], lo: number, hi: number): boolean {
  for (const [a, b] of windows) if (a < hi && lo < b) return true;
  return false;
}

/**
 * Verdicts on the leaves of one tree, kept across its generations: only the leaves inside the
 * windows that moved are judged again. The answer is the first failing leaf in address order,
 * the order `leaves` gives and the whole-state judgements report in.
 */
export class LeafVerdicts {
  private readonly failing = new Map<number, { readonly end: number; readonly message: string }>();
  private first: string | undefined;

  /** `moved` undefined: everything may have changed, judge every leaf. */
  judge(ls: readonly Leaf[], moved: readonly Window[] | undefined, verdict: (l: Leaf) => string | undefined): string | undefined {
    const record = (l: Leaf) => {
      const message = verdict(l);
      if (message !== undefined) this.failing.set(l.va, { end: l.va + l.size, message });
    };
    if (moved === undefined) {
      this.failing.clear();
      for (const l of ls) record(l);
    } else if (moved.length > 0) {
      for (const [va, f] of this.failing) if (meets(moved, va, f.end)) this.failing.delete(va);
      for (const [lo, hi] of moved) for (let i = firstEndingAfter(ls, lo); i < ls.length && ls[i].va < hi; i++) record(ls[i]);
    } else return this.first;
    let at = Infinity;
    this.first = undefined;
    for (const [va, f] of this.failing) if (va < at) [at, this.first] = [va, f.message];
    return this.first;
  }
}

/** The index of the first leaf that ends after `va` (leaves in address order, not overlapping). */
function firstEndingAfter(ls: readonly Leaf[], va: number): number {
  let lo = 0;
  let hi = ls.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (ls[mid].va + ls[mid].size <= va) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** An incremental judgement: called at every check of the run, it must give the check's answer. */
export type Judge = (sys: System, phase: Phase) => string | undefined;

/** The first ASI's verdict, in sys.asis order: the order every per-ASI invariant reports in. */
export function firstAsi(sys: System, judge: (sys: System, asi: Asi) => string | undefined): string | undefined {
  for (const asi of sys.asis.values()) {
    const m = judge(sys, asi);
    if (m !== undefined) return m;
  }
  return undefined;
}

/**
 * A judgement per ASI, made again only when its key changes. Keys are the generations and the
 * ranges it depends on (and what else the caller passes, e.g. the ASI's vCPU); the ASI's tracked
 * ranges are compared by identity (the model replaces a range, and the list, rather than changing
 * what a judgement reads of them).
 */
export function perAsi<A extends unknown[]>(
  judge: (sys: System, asi: Asi, ...rest: A) => string | undefined,
  key: (sys: System, asi: Asi, ...rest: A) => readonly number[],
  withRanges: boolean,
): (sys: System, asi: Asi, ...rest: A) => string | undefined {
  const cache = new Map<number, { key: readonly number[]; ranges: readonly AsiRange[]; message: string | undefined }>();
  return (sys, asi, ...rest) => {
    const k = key(sys, asi, ...rest);
    const c = cache.get(asi.id);
    if (c && sameNumbers(c.key, k) && (!withRanges || sameRanges(c.ranges, asi.ranges))) return c.message;
    const message = judge(sys, asi, ...rest);
    cache.set(asi.id, { key: k, ranges: withRanges ? asi.ranges : [], message });
    return message;
  };
}

function sameNumbers(a: readonly number[], b: readonly number[]): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return a.length === b.length;
}

/** The ranges added and removed between two lists of an ASI's ranges (by identity); undefined when only their order changed. */
export function rangeChanges(before: readonly AsiRange[], now: readonly AsiRange[]): { readonly added: readonly AsiRange[]; readonly removed: readonly AsiRange[] } | undefined {
  if (sameRanges(before, now)) return NO_RANGE_CHANGES;
  const was = new Set(before);
  const is = new Set(now);
  const added = now.filter((r) => !was.has(r));
  const removed = before.filter((r) => !is.has(r));
  return added.length + removed.length > 0 ? { added, removed } : undefined;
}

const NO_RANGE_CHANGES = { added: [], removed: [] };

/**
 * Per ASI, how many of its live ranges hold each key (`keysOf` a range: the units it reached, the
 * entries it relies on), brought up to date from the ranges added and removed since the last call.
 * A key no range holds is dropped, so `has` asks whether any live range holds it.
 */
export function keyCounts(keysOf: (r: AsiRange) => readonly string[]): (asi: Asi) => ReadonlyMap<string, number> {
  const kept = new Map<number, { ranges: readonly AsiRange[]; counts: Map<string, number> }>();
  const count = (counts: Map<string, number>, r: AsiRange, by: 1 | -1) => {
    for (const k of keysOf(r)) {
      const n = (counts.get(k) ?? 0) + by;
      if (n > 0) counts.set(k, n);
      else counts.delete(k);
    }
  };
  return (asi) => {
    const c = kept.get(asi.id) ?? { ranges: [], counts: new Map<string, number>() };
    // Undefined: only the order changed, and a count does not depend on it.
    const changes = rangeChanges(c.ranges, asi.ranges);
    for (const r of changes?.added ?? []) count(c.counts, r, 1);
    for (const r of changes?.removed ?? []) count(c.counts, r, -1);
    kept.set(asi.id, { ranges: asi.ranges, counts: c.counts });
    return c.counts;
  };
}

/** The same ranges, by identity and in order: the same list (the model replaces an ASI's list when it changes it), or one with the same elements. */
export function sameRanges(a: readonly AsiRange[], b: readonly AsiRange[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * A whole-state judgement made again only when Memory.version has moved: for checks that read only
 * allocations, page tables and tracked ranges (and, inside them, judgements cached on finer keys).
 */
export function sinceVersion(judge: (sys: System) => string | undefined): (sys: System) => string | undefined {
  let version = -1;
  let message: string | undefined;
  return (sys) => {
    if (version === sys.mem.version) return message;
    version = sys.mem.version;
    return (message = judge(sys));
  };
}

/**
 * A judgement on which page-table pages are allocated to whom and which of them each ASI counts
 * (asi->pgd, its backend pages), made again only when a frame was allocated or freed, or an ASI or
 * a backend page came or went: the model adds a backend page only as it allocates one.
 */
export function sincePgtablePages(views: Views, judge: (sys: System) => string | undefined): (sys: System) => string | undefined {
  let key: readonly number[] = [];
  let message: string | undefined;
  return (sys) => {
    let pages = 0;
    for (const asi of sys.asis.values()) pages += asi.backend.length;
    const now = [views.allocGen, sys.asis.size, pages];
    if (sameNumbers(key, now)) return message;
    key = now;
    return (message = judge(sys));
  };
}
