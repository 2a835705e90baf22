// Deduplication and saving of fuzz findings. A finding is "known" when a file with its key is
// already in the output directory or a known directory, or was saved earlier in this run; only
// new keys are written. The key is the violation's title, as syzbot groups crashes: the
// configuration, the invariant and the message with its numbers blanked out. One bug reached by
// many op sequences (a planted mutant trips STACK after vfree, schedule, task_exit...) is one file. Of the walks that hit one signature, the file keeps the earliest in
// walk order, so a run with a fixed seed and walk count writes the same files however its workers
// happened to interleave.

import { createHash } from 'node:crypto';
import { readdirSync, unlinkSync } from 'node:fs';
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

/** The message as a title: addresses, pfns, CPU and object numbers vary between hits of one bug. */
export function messageShape(message: string): string {
  return message.replace(/0x[0-9a-f]+|\d+/gi, 'N');
}

export function dedupKey(c: Pick<Counterexample, 'invariant' | 'message' | 'config'>): string {
  return createHash('sha256').update(`${JSON.stringify(canonicalConfig(c.config))}|${c.invariant}|${messageShape(c.message)}`).digest('hex').slice(0, 12);
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
  /** The saved file (new) or the file that already had it (known); none when saving failed. */
  readonly file?: string;
  /** Why a new finding could not be saved (e.g. ENOSPC): its ops and walk seed are all there is. */
  readonly saveError?: string;
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

  /** Records a shrunk violation; saves it when its key is new, or when it is an earlier walk of a new one. */
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
    const saved = knownFile !== undefined ? { file: knownFile } : keep === before ? before : this.save(c, before?.file);
    const finding: Finding = {
      signature: keep === before ? before.signature : signature(c),
      invariant: v.invariant,
      isNew: knownFile === undefined,
      ...(saved.file !== undefined ? { file: saved.file } : {}),
      ...(saved.saveError !== undefined ? { saveError: saved.saveError } : {}),
      first: keep.first,
      worker: keep.worker,
      walks: (before?.walks ?? 0) + 1,
    };
    this.findings.set(key, finding);
    return { finding, firstThisRun: !before };
  }

  /** A failed save keeps the finding in memory (the summary prints it); the run goes on. */
  private save(c: Counterexample, replaces: string | undefined): { file?: string; saveError?: string } {
    try {
      const file = saveCounterexample(this.outDir, c);
      // An earlier walk of the same bug may have another op shape, so another file name.
      if (replaces !== undefined && replaces !== file) unlinkSync(replaces);
      return { file };
    } catch (e) {
      return { saveError: (e as Error).message.split(',')[0] };
    }
  }

  /** In walk order. */
  list(): Finding[] {
    return [...this.findings.values()].sort((a, b) => (earlier(a, b) ? -1 : earlier(b, a) ? 1 : 0));
  }
}
