// Deduplication and saving of fuzz findings. A finding is "known" when a file with its signature is
// already in the output directory or a --known directory, or was saved earlier in this run; only
// new signatures are written. Of the walks that hit one signature, the file keeps the earliest in
// walk order, so a run with a fixed seed and walk count writes the same files however its workers
// happened to interleave.

import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { CounterexampleError, type Counterexample, loadCounterexample, makeCounterexample, saveCounterexample, signature } from '../counterexample.ts';
import { OPTION_NAMES } from '../../model/options.ts';
import { type Config, resolveOptions } from '../../model/system.ts';
import type { FoundViolation } from './protocol.ts';

/**
 * One spelling per configuration: signature() hashes the config as written, and the same start
 * state can be written with keys in another order or with options left to the profile.
 */
export function canonicalConfig(c: Config): Config {
  const options = resolveOptions(c);
  const ordered = Object.fromEntries(OPTION_NAMES.map((k) => [k, options[k]]));
  return { geometry: c.geometry, cpus: c.cpus, profile: c.profile, options: ordered, ...(c.mutant ? { mutant: c.mutant } : {}) };
}

export function dedupKey(c: Pick<Counterexample, 'invariant' | 'ops' | 'config'>): string {
  return signature({ ...c, config: canonicalConfig(c.config) });
}

export interface KnownCorpus {
  /** dedupKey -> the file that has it. */
  readonly files: ReadonlyMap<string, string>;
  /** Files that could not be read as counterexamples, with why. */
  readonly unreadable: readonly string[];
}

export function loadKnown(dirs: readonly string[]): KnownCorpus {
  const files = new Map<string, string>();
  const unreadable: string[] = [];
  for (const dir of dirs) {
    let names: string[];
    try {
      names = readdirSync(dir).filter((f) => f.endsWith('.json')).sort();
    } catch {
      continue; // an output directory that does not exist yet holds nothing
    }
    for (const name of names) {
      const path = join(dir, name);
      try {
        files.set(dedupKey(loadCounterexample(path)), path);
      } catch (e) {
        if (!(e instanceof CounterexampleError)) throw e;
        unreadable.push(`${path}: ${e.message}`);
      }
    }
  }
  return { files, unreadable };
}

export interface Finding {
  /** signature() of the file this run saves (the key that deduplicates is dedupKey). */
  readonly signature: string;
  readonly invariant: string;
  /** Not in the known corpus when the run started. */
  readonly isNew: boolean;
  /** The saved file (new) or the file that already had it (known). */
  readonly file: string;
  /** The earliest walk, in walk order, that hit this signature. */
  readonly first: FoundViolation;
  readonly worker: number;
  /** Walks that hit it and were shrunk (repeats past MAX_SHRINKS_PER_KIND are not). */
  readonly walks: number;
}

function earlier(a: { first: FoundViolation; worker: number }, b: { first: FoundViolation; worker: number }): boolean {
  return a.first.walkIndex !== b.first.walkIndex ? a.first.walkIndex < b.first.walkIndex : a.worker < b.worker;
}

export class FindingStore {
  private readonly findings = new Map<string, Finding>();

  constructor(
    private readonly config: Config,
    private readonly outDir: string,
    private readonly known: KnownCorpus,
  ) {}

  /** Records a shrunk violation; saves it when its signature is new, or when it is an earlier walk of a new one. */
  add(worker: number, v: FoundViolation): { finding: Finding; firstThisRun: boolean } {
    const c = makeCounterexample(this.config, v.ops, v.invariant, v.message, `${v.invariant} after ${v.ops.map((o) => o.op).join(', ')}`, {
      by: 'fuzz',
      seed: v.walkSeed,
      runs: v.walks,
    });
    const key = dedupKey(c);
    const knownFile = this.known.files.get(key);
    const before = this.findings.get(key);
    const candidate = { first: v, worker };
    const keep = before && !earlier(candidate, before) ? before : candidate;
    const file = knownFile ?? (keep === before ? before.file : saveCounterexample(this.outDir, c));
    const finding: Finding = { signature: signature(c), invariant: v.invariant, isNew: knownFile === undefined, file, first: keep.first, worker: keep.worker, walks: (before?.walks ?? 0) + 1 };
    this.findings.set(key, finding);
    return { finding, firstThisRun: !before };
  }

  /** In walk order. */
  list(): Finding[] {
    return [...this.findings.values()].sort((a, b) => (earlier(a, b) ? -1 : earlier(b, a) ? 1 : 0));
  }
}
