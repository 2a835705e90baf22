// Deduplication and saving of fuzz findings, by (invariant, root cause) as triage.ts names it: a
// finding is "known" when a file in the output directory or a --known directory has that invariant
// and root cause, or one was saved earlier in this run; only new ones are written. A violation no
// design option explains (or a mutant's) is grouped by its title instead, as syzbot groups
// crashes: the configuration, the invariant and the message with its numbers blanked out. Of the walks
// that hit one key, the file keeps the earliest in walk order, so a run with a fixed seed and walk
// count writes the same files however its workers happened to interleave.

import { createHash } from 'node:crypto';
import { readdirSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { CounterexampleError, type Counterexample, loadCounterexample, makeCounterexample, saveCounterexample, signature } from '../counterexample.ts';
import { OPTION_NAMES } from '../../model/options.ts';
import { type Config, resolveOptions } from '../../model/system.ts';
import type { FoundViolation } from './protocol.ts';
import { failingFunction } from '../run.ts';
import { type RootCause, causeKey, causeLabel, primaryCause, triageOps, withFixes } from '../triage.ts';
import { fsReason } from '../read-file.ts';

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
  /** causeKey of each root cause of a file (dedupKey when nothing explains it) -> the file that has it. */
  readonly files: ReadonlyMap<string, string>;
  /**
   * shapeKey of each root cause of a file, with the function it fails in, and causeLabel of each
   * root cause whatever its invariant -> the file that has it (absent: only `files` is known).
   */
  readonly shapes?: ReadonlyMap<string, string>;
  readonly causes?: ReadonlyMap<string, string>;
  /** Files that could not be read as counterexamples, with why. */
  readonly unreadable: readonly string[];
}

/** A root cause met by one invariant in one function: keep-going keeps each such shape of a cause. */
export function shapeKey(invariant: string, cause: RootCause, fn: string): string {
  return `${causeKey(invariant, cause)} in ${fn}`;
}

export function loadKnown(dirs: readonly string[]): KnownCorpus {
  const files = new Map<string, string>();
  const shapes = new Map<string, string>();
  const causes = new Map<string, string>();
  const unreadable: string[] = [];
  const first = (m: Map<string, string>, key: string, path: string) => m.has(key) || m.set(key, path);
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
        const c = loadCounterexample(path);
        const t = triageOps(c.config, c.ops, c.invariant);
        if (!t.causes.length) first(files, dedupKey(c), path);
        const failure = c.config.mutant ? undefined : t.failure;
        for (const cause of t.causes) {
          first(files, causeKey(c.invariant, cause), path);
          if (!failure) continue;
          first(causes, causeLabel(cause), path);
          first(shapes, shapeKey(c.invariant, cause, failingFunction(c.ops, failure)), path);
        }
      } catch (e) {
        if (!(e instanceof CounterexampleError)) throw e;
        unreadable.push(`${path}: ${e.message}`);
      }
    }
  }
  return { files, shapes, causes, unreadable };
}

export interface Finding {
  /** signature() of the file this run saves (what deduplicates is the invariant and root cause). */
  readonly signature: string;
  readonly invariant: string;
  /** causeLabel of the cause it is filed under; undefined when nothing in `fixed` explains it. */
  readonly rootCause?: string;
  /** The fixes --keep-going had turned on: the saved file's configuration carries them. */
  readonly config: Config;
  /** Not in the known corpus when the run started. */
  readonly isNew: boolean;
  /** A new shape of a known root cause: the known file that has that cause. */
  readonly shapeOf?: string;
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
  /** causeKeys of the findings so far. */
  private readonly causesMet = new Set<string>();

  constructor(
    private readonly config: Config,
    private readonly outDir: string,
    private readonly known: KnownCorpus,
  ) {}

  /** Records a shrunk violation; saves it when its key is new, or when it is an earlier walk of a new one. */
  add(worker: number, v: FoundViolation): { finding: Finding; firstThisRun: boolean } {
    const config = withFixes(this.config, v.fixes);
    const c = makeCounterexample(config, v.ops, v.invariant, v.message, `${v.invariant} after ${v.ops.map((o) => o.op).join(', ')}`, {
      by: 'fuzz',
      seed: v.walkSeed,
      runs: v.walks,
    });
    const cause = primaryCause({ invariant: v.invariant, reproduces: true, causes: v.causes }, (k) => this.known.files.has(k) || this.causesMet.has(k));
    if (cause) this.causesMet.add(causeKey(v.invariant, cause));
    // A design option's cause: with the shapes of the corpus known, one file per shape; else (a
    // mutant's, which is there to be killed) one per cause.
    const shapes = cause && !('mutant' in cause) ? this.known.shapes : undefined;
    const key = !cause ? dedupKey(c) : shapes ? shapeKey(v.invariant, cause, v.fn) : causeKey(v.invariant, cause);
    const knownFile = (shapes ?? this.known.files).get(key);
    // The file that knew the cause: one of the same invariant if there is one.
    const shapeOf = shapes && knownFile === undefined ? (this.known.files.get(causeKey(v.invariant, cause!)) ?? this.known.causes?.get(causeLabel(cause!))) : undefined;
    const before = this.findings.get(key);
    if (before && !earlier({ first: v, worker }, before)) {
      const finding = { ...before, walks: before.walks + 1 };
      this.findings.set(key, finding);
      return { finding, firstThisRun: false };
    }
    const saved = knownFile !== undefined ? { file: knownFile } : this.save(c, before?.file);
    const finding: Finding = {
      signature: signature(c),
      invariant: v.invariant,
      ...(cause ? { rootCause: causeLabel(cause) } : {}),
      config,
      isNew: knownFile === undefined,
      ...(shapeOf !== undefined ? { shapeOf } : {}),
      ...(saved.file !== undefined ? { file: saved.file } : {}),
      ...(saved.saveError !== undefined ? { saveError: saved.saveError } : {}),
      first: v,
      worker,
      walks: (before?.walks ?? 0) + 1,
    };
    this.findings.set(key, finding);
    return { finding, firstThisRun: !before };
  }

  /** A failed save keeps the finding in memory (the summary prints it); the run goes on. */
  private save(c: Counterexample, replaces: string | undefined): { file?: string; saveError?: string } {
    try {
      const file = saveCounterexample(this.outDir, c);
      // One key, one file: an earlier walk's ops (another shape, so another name) replace the later one's.
      if (replaces !== undefined && replaces !== file) unlinkSync(replaces);
      return { file };
    } catch (e) {
      return { saveError: fsReason(e) };
    }
  }

  /** In walk order. */
  list(): Finding[] {
    return [...this.findings.values()].sort((a, b) => (earlier(a, b) ? -1 : earlier(b, a) ? 1 : 0));
  }
}
