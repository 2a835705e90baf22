// What the incremental checker keeps across the checks of one run: each page table's leaves, with
// the tables they were read from and the frames they reach, brought up to date from the model's
// change log (Memory.tableLog, Memory.frameLog) so that a step pays for the tables it wrote, not
// for every table of the machine. Judgements cached on a tree key on its generations.

import { PAGE_SIZE } from '../model/mm/geometry.ts';
import { type Leaf, leaves } from '../model/mm/pagetable.ts';
import type { Asi, AsiRange, System } from '../model/system.ts';
import type { Phase } from './types.ts';

/** One page table as the invariants read it. */
export interface TreeView {
  /** Bumped whenever a table the tree was read from changed, or was allocated or freed. */
  readonly gen: number;
  /** Bumped whenever a frame its leaves reach is allocated or freed: the objects behind them changed. */
  readonly framesGen: number;
  readonly leaves: readonly Leaf[];
  /** The generation before this one, and the VA windows whose translations differ between the two. */
  readonly prevGen: number;
  readonly moved: readonly Window[];
}

/** A VA window [lo, hi). */
export type Window = readonly [number, number];

interface Tree extends TreeView {
  gen: number;
  framesGen: number;
  leaves: Leaf[];
  prevGen: number;
  moved: Window[];
  /** Every frame looked up as a table while reading the leaves. */
  tables: Set<number>;
  /** Frames the leaves reach, one byte each. */
  frames: Uint8Array;
  stale: boolean;
}

export class Views {
  private readonly trees = new Map<number, Tree>();
  /** Positions in the change log (counted over the whole run) read so far. */
  private tableRead = -1;
  private frameRead = -1;
  /** Generations are drawn from one counter, so a tree read afresh never repeats one a cache holds. */
  private gens = 0;
  /** Bumped whenever a frame was allocated or freed: judgements on which allocations live key on it. */
  allocGen = 0;

  /** Reads what the model changed since the last check. */
  update(sys: System): void {
    const m = sys.mem;
    if (this.tableRead < m.tableLogStart || this.frameRead < m.frameLogStart) {
      // Entries were dropped unread (or this is the first check): nothing kept can be trusted.
      this.trees.clear();
      this.allocGen = ++this.gens;
    } else {
      if (this.frameRead < m.frameLogStart + m.frameLog.length) this.allocGen = ++this.gens;
      for (let i = this.tableRead - m.tableLogStart; i < m.tableLog.length; i++) this.tableChanged(m.tableLog[i]);
      for (let i = this.frameRead - m.frameLogStart; i < m.frameLog.length; i++) this.frameChanged(m.frameLog[i]);
    }
    this.tableRead = m.tableLogStart + m.tableLog.length;
    this.frameRead = m.frameLogStart + m.frameLog.length;
    for (const root of this.trees.keys()) if (!sys.tables.has(root)) this.trees.delete(root);
  }

  private tableChanged(frame: number): void {
    for (const t of this.trees.values()) if (t.tables.has(frame)) t.stale = true;
  }

  private frameChanged(frame: number): void {
    for (const t of this.trees.values()) {
      // A table frame reassigned changes what PT-WF reads of it, and whether it is a table at all.
      if (t.tables.has(frame)) t.stale = true;
      if (t.frames[frame]) t.framesGen = ++this.gens;
    }
  }

  /** The page table under `root`, read again only if a change reached it. */
  tree(sys: System, root: number): TreeView {
    let t = this.trees.get(root);
    if (!t) {
      t = { gen: 0, framesGen: 0, leaves: [], prevGen: 0, moved: [], tables: new Set(), frames: new Uint8Array(0), stale: true };
      this.trees.set(root, t);
    }
    if (t.stale) {
      t.tables = new Set();
      const before = t.leaves;
      t.leaves = leaves(sys.g, sys.tables, root, undefined, undefined, t.tables);
      t.moved = movedWindows(before, t.leaves);
      t.prevGen = t.gen;
      t.frames = new Uint8Array(sys.mem.frameAlloc.length);
      for (const l of t.leaves) t.frames.fill(1, l.frame, l.frame + l.size / PAGE_SIZE);
      t.gen = ++this.gens;
      t.framesGen = ++this.gens;
      t.stale = false;
    }
    return t;
  }
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

/**
 * The windows whose translations changed since generation `gen` of this tree: none if it is the
 * current one, undefined when more than one generation passed (the caller judges afresh).
 */
export function movedSince(t: TreeView, gen: number): readonly Window[] | undefined {
  if (gen === t.gen) return [];
  return gen === t.prevGen ? t.moved : undefined;
}

/** The generations of an ASI's page table and of the kernel's that a judgement last saw. */
export interface SeenGens {
  readonly asiGen: number;
  readonly kernelGen: number;
}

/**
 * For judgements that walk an ASI's page table and the kernel's: where either moved since `seen`
 * (undefined: not known, judge afresh), and the generations to remember now.
 */
export function movedWithKernel(views: Views, sys: System, asi: Asi, seen: SeenGens | undefined): { moved: readonly Window[] | undefined; now: SeenGens } {
  const t = views.tree(sys, asi.pgd);
  const k = views.tree(sys, sys.kernel.pgd);
  const asiMoved = seen && movedSince(t, seen.asiGen);
  const kernelMoved = seen && movedSince(k, seen.kernelGen);
  return { moved: asiMoved && kernelMoved && [...asiMoved, ...kernelMoved], now: { asiGen: t.gen, kernelGen: k.gen } };
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
 * ranges it depends on (and what else the caller passes, e.g. the ASI's vCPU, which it keeps); the ASI's tracked ranges are compared by identity, element by element
 * (the model replaces a range rather than changing what a judgement reads of it).
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
    cache.set(asi.id, { key: k, ranges: withRanges ? [...asi.ranges] : [], message });
    return message;
  };
}

function sameNumbers(a: readonly number[], b: readonly number[]): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return a.length === b.length;
}

/** The same ranges, by identity and in order. */
export function sameRanges(a: readonly AsiRange[], b: readonly AsiRange[]): boolean {
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
