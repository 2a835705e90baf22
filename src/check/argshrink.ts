// Argument shrinking: after ddmin has removed every op it can, make the arguments of the ops that
// remain simpler (smaller numbers, fewer flag bits, page-aligned sizes, `false` for booleans), so a
// counterexample shows only the arguments that matter. Generic over the Op union: it walks each
// op's own numeric and boolean fields, and its list of events (fewer events, no address touched,
// nothing nested), so new op kinds are shrunk without changes here.

import { PAGE_SIZE } from '../model/mm/geometry.ts';
import { type Op, validateOp } from '../model/ops.ts';
import type { Intr } from '../model/x86/entry.ts';
import type { Config } from '../model/system.ts';
import { violates } from './shrink.ts';

export interface ArgShrinkResult {
  readonly ops: Op[];
  /** Fields (op, field) whose final value differs from the input's. */
  readonly simplified: number;
  /** Candidate op lists run. */
  readonly tries: number;
}

/** Runs of the op list allowed per call: a few passes over a short list; a fuzz worker shrinks many. */
export const ARG_SHRINK_BUDGET = 500;

/** Flags-like values (few bits) also try each bit alone and each bit cleared; addresses do not. */
const MAX_BITS_PER_BIT_CANDIDATES = 8;

function setBits(v: bigint): bigint[] {
  const bits: bigint[] = [];
  for (let x = v; x > 0n; x &= x - 1n) bits.push(x & -x);
  return bits;
}

/**
 * How complicated a value reads, compared lexicographically: page-aligned beats unaligned, fewer
 * set bits beat more, then smaller beats larger. Halving 0x405000 to 0x202800 or "shrinking" a
 * size of 8192 to 4097 is not simpler, so neither is accepted.
 */
function complexity(v: bigint): [number, number, bigint] {
  return [v % BigInt(PAGE_SIZE) === 0n ? 0 : 1, setBits(v).length, v];
}

function simpler(a: bigint, b: bigint): boolean {
  const [x, y] = [complexity(a), complexity(b)];
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return x[i] < y[i];
  return false;
}

/**
 * Values simpler than `v`, simplest first: 0, 1, single bits, a bit cleared, half, rounded down to
 * a page, one less. Each is strictly simpler in a well-founded order, so shrinking a field ends.
 */
export function simplerValues(v: number): number[] {
  if (!Number.isSafeInteger(v) || v <= 0) return [];
  const big = BigInt(v);
  const bits = setBits(big);
  const [low, high] = [bits[0], bits[bits.length - 1]];
  const candidates = [0n, 1n, low, high, big - low, big - high, big / 2n, big - (big % BigInt(PAGE_SIZE)), big - 1n];
  if (bits.length <= MAX_BITS_PER_BIT_CANDIDATES) for (const b of bits) candidates.push(b, big - b);
  const unique = [...new Set(candidates)].filter((c) => simpler(c, big));
  return unique.sort((a, b) => (simpler(a, b) ? -1 : simpler(b, a) ? 1 : 0)).map(Number);
}

type Field = number | boolean | readonly Intr[];

function isEventList(x: unknown): x is readonly Intr[] {
  return Array.isArray(x) && x.every((e) => typeof e === 'object' && e !== null && 'at' in e && 'kind' in e);
}

/** An event list with one event fewer, or one event without its touched address or nested events. */
function simplerEvents(events: readonly Intr[]): (readonly Intr[])[] {
  const out: (readonly Intr[])[] = events.map((_, i) => events.filter((__, j) => j !== i));
  events.forEach((e, i) => {
    const replace = (x: Intr) => events.map((y, j) => (j === i ? x : y));
    if (e.nested?.length) for (const n of simplerEvents(e.nested)) out.push(replace({ ...e, nested: n }));
    if (e.va !== undefined) out.push(replace({ at: e.at, kind: e.kind, ...(e.nested ? { nested: e.nested } : {}) }));
  });
  return out;
}

function simplerField(x: unknown): Field[] {
  if (typeof x === 'boolean') return x ? [false] : [];
  if (typeof x === 'number') return simplerValues(x);
  if (isEventList(x)) return simplerEvents(x);
  return [];
}

function withField(op: Op, key: string, value: Field): Op {
  return { ...op, [key]: value } as Op;
}

/**
 * Greedy, field by field: the smallest simpler value that still violates `invariant` replaces the
 * current one; passes repeat until one changes nothing (a fixpoint) or the budget is spent. A
 * candidate that violates only some other invariant is rejected, so the invariant never changes.
 */
export function shrinkArgs(config: Config, ops: readonly Op[], invariant: string, budget = ARG_SHRINK_BUDGET, fails = (candidate: readonly Op[]) => violates(config, candidate, invariant)): ArgShrinkResult {
  const cur = [...ops];
  let tries = 0;
  const firstSimpler = (i: number, key: string): Op | undefined => {
    for (const value of simplerField((cur[i] as Record<string, unknown>)[key])) {
      if (tries >= budget) return undefined;
      tries++;
      const op = withField(cur[i], key, value);
      // Not an op a file could hold (a host moved onto its racing op's CPU): no candidate.
      if (validateOp(op) !== undefined) continue;
      const candidate = [...cur];
      candidate[i] = op;
      if (fails(candidate)) return op;
    }
    return undefined;
  };
  let changed = true;
  while (changed && tries < budget) {
    changed = false;
    for (let i = 0; i < cur.length; i++) {
      for (const key of Object.keys(cur[i])) {
        // After a success the new value has candidates of its own: start again from the simplest.
        for (let next = firstSimpler(i, key); next; next = firstSimpler(i, key)) {
          cur[i] = next;
          changed = true;
        }
      }
    }
  }
  const differs = (op: Op, i: number) => Object.keys(op).filter((k) => (op as Record<string, unknown>)[k] !== (ops[i] as Record<string, unknown>)[k]).length;
  return { ops: cur, simplified: cur.reduce((n, op, i) => n + differs(op, i), 0), tries };
}
