// `explore --shard i/n` writes what its part of the search proved as a shard summary, and
// `explore --merge DIR...` reads the n summaries back: the depth every shard proved, or the
// shortest counterexample any found. A summary is data a later job reads (the nightly's merge
// step), so it is versioned, written atomically and read with every defect named.

import { createHash } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../../model/system.ts';
import type { Op } from '../../model/ops.ts';
import { writeFileAtomically } from '../counterexample.ts';
import { ReadError, fsReason, readBounded } from '../read-file.ts';
import { ASI_CHECK_VERSION } from '../version.ts';
import type { Scope } from './scope.ts';
import type { Shard } from './search.ts';

export const SHARD_FORMAT = 'asi-check-explore-shard';
export const SHARD_VERSION = 1;

export interface ShardSummary {
  readonly format: typeof SHARD_FORMAT;
  readonly version: typeof SHARD_VERSION;
  readonly asiCheck: string;
  readonly config: Config;
  readonly scope: string;
  /** A digest of the whole scope (its alphabet and bound): shards of one search share it. */
  readonly scopeDigest: string;
  readonly depth: number;
  readonly shard: Shard;
  /** Every path through this shard's nodes of the split level, and every path of the levels above, of at most this many ops was judged. */
  readonly depthCompleted: number;
  readonly states: number;
  readonly transitions: number;
  /** Why it ended before `depth`, if it did: time, max-states, max-memory, interrupted. */
  readonly stopped: string | null;
  readonly violation: { readonly invariant: string; readonly message: string; readonly ops: readonly Op[]; readonly file: string } | null;
}

export class ShardError extends Error {}

export function scopeDigest(scope: Scope): string {
  return createHash('sha256').update(JSON.stringify(scope)).digest('hex').slice(0, 16);
}

export function shardFileName(shard: Shard): string {
  return `explore-shard-${shard.index}-of-${shard.count}.json`;
}

export function writeShardSummary(dir: string, summary: ShardSummary): string {
  const path = join(dir, shardFileName(summary.shard));
  writeFileAtomically(path, JSON.stringify(summary, null, 2) + '\n');
  return path;
}

const FILE = /^explore-shard-\d+-of-\d+\.json$/;
const MAX_SUMMARY_BYTES = 16 * 2 ** 20;

function parseSummary(path: string): ShardSummary {
  let x: unknown;
  try {
    x = JSON.parse(readBounded(path, MAX_SUMMARY_BYTES, 'a shard summary'));
  } catch (e) {
    throw new ShardError(`${path}: ${e instanceof ReadError ? e.message : `not valid JSON (${(e as Error).message})`}`);
  }
  const o = x as Record<string, unknown>;
  if (typeof o !== 'object' || o === null || o.format !== SHARD_FORMAT) throw new ShardError(`${path}: not an explore shard summary`);
  if (o.version !== SHARD_VERSION) throw new ShardError(`${path}: shard summary version ${JSON.stringify(o.version)} is not supported (this asi-check, ${ASI_CHECK_VERSION}, reads version ${SHARD_VERSION})`);
  const s = o.shard as Record<string, unknown> | undefined;
  const nat = (v: unknown) => Number.isSafeInteger(v) && (v as number) >= 0;
  if (!s || !nat(s.index) || !nat(s.count) || !nat(s.splitDepth) || (s.index as number) < 1 || (s.index as number) > (s.count as number)) throw new ShardError(`${path}: shard must be {index, count, splitDepth} with 1 <= index <= count`);
  for (const k of ['depth', 'depthCompleted', 'states', 'transitions'] as const) if (!nat(o[k])) throw new ShardError(`${path}: ${k} must be a whole number`);
  if (typeof o.scope !== 'string' || typeof o.scopeDigest !== 'string' || typeof o.config !== 'object' || o.config === null) throw new ShardError(`${path}: config, scope and scopeDigest are needed`);
  const v = o.violation as Record<string, unknown> | null;
  if (v !== null && (typeof v !== 'object' || typeof v.invariant !== 'string' || typeof v.message !== 'string' || !Array.isArray(v.ops) || typeof v.file !== 'string')) throw new ShardError(`${path}: violation must be null or {invariant, message, ops, file}`);
  return o as unknown as ShardSummary;
}

/** The shard summaries in these directories (each file named as writeShardSummary names it). */
export function readShardSummaries(dirs: readonly string[]): { path: string; summary: ShardSummary }[] {
  const out: { path: string; summary: ShardSummary }[] = [];
  for (const dir of dirs) {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch (e) {
      throw new ShardError(`${dir}: cannot read the directory (${fsReason(e)})`);
    }
    for (const name of names.filter((n) => FILE.test(n)).sort()) out.push({ path: join(dir, name), summary: parseSummary(join(dir, name)) });
  }
  if (out.length === 0) throw new ShardError(`no shard summary (explore-shard-<i>-of-<n>.json) in ${dirs.join(', ')}`);
  return out;
}

export interface Merged {
  readonly count: number;
  readonly splitDepth: number;
  /** Shards with no summary: nothing below the split level is proved for their part. */
  readonly missing: readonly number[];
  /** The depth all shards proved (the least of theirs); the split level's, at most, while one is missing. */
  readonly depthProved: number;
  readonly states: number;
  readonly transitions: number;
  /**
   * The shortest counterexample any shard found (the lowest shard on a tie), and where it is;
   * `shortest` when no shard is missing and every shard judged all paths one op shorter.
   */
  readonly violation?: { readonly shard: number; readonly summary: ShardSummary; readonly path: string; readonly shortest: boolean };
}

/** The n summaries of one search, taken together; summaries of different searches are an error naming both. */
export function mergeShards(found: readonly { path: string; summary: ShardSummary }[]): Merged {
  const [first] = found;
  const same = (s: ShardSummary) => JSON.stringify([s.config, s.scopeDigest, s.depth, s.shard.count, s.shard.splitDepth]);
  const byIndex = new Map<number, { path: string; summary: ShardSummary }>();
  for (const f of found) {
    if (same(f.summary) !== same(first.summary)) throw new ShardError(`${f.path} and ${first.path} are shards of different searches (configuration, scope, depth, shard count or split depth differ)`);
    const other = byIndex.get(f.summary.shard.index);
    if (other) throw new ShardError(`${f.path} and ${other.path} are both shard ${f.summary.shard.index}`);
    byIndex.set(f.summary.shard.index, f);
  }
  const { count, splitDepth } = first.summary.shard;
  const missing = Array.from({ length: count }, (_, i) => i + 1).filter((i) => !byIndex.has(i));
  const all = [...byIndex.values()].sort((a, b) => a.summary.shard.index - b.summary.shard.index);
  const violated = all.filter((f) => f.summary.violation).sort((a, b) => a.summary.violation!.ops.length - b.summary.violation!.ops.length)[0];
  const proved = Math.min(...all.map((f) => f.summary.depthCompleted));
  return {
    count,
    splitDepth,
    missing,
    depthProved: missing.length ? Math.min(proved, splitDepth) : proved,
    states: all.reduce((n, f) => n + f.summary.states, 0),
    transitions: all.reduce((n, f) => n + f.summary.transitions, 0),
    ...(violated ? { violation: { shard: violated.summary.shard.index, summary: violated.summary, path: violated.path, shortest: !missing.length && proved >= violated.summary.violation!.ops.length - 1 } } : {}),
  };
}
