// Triage attributes every saved counterexample: an F/V file to the design option FINDINGS.md names
// for it, a mutant file to its mutant. Where the corpus says more than FINDINGS.md (another option
// fixes the same ops too), the extra causes are written down here, so a change shows.

import { copyFileSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { loadCounterexample } from '../src/check/counterexample.ts';
import { causeLabel, fixCandidates, fixTarget, triageOps, withFixes } from '../src/check/triage.ts';
import { runWalks } from '../src/check/fuzz/walker.ts';
import { FindingStore, loadKnown } from '../src/check/fuzz/store.ts';
import type { FoundViolation, WalkTask } from '../src/check/fuzz/protocol.ts';
import { violates } from '../src/check/shrink.ts';
import { FIXED_OPTIONS, OPTION_NAMES, RFC_V2_OPTIONS, V3_OPTIONS } from '../src/model/options.ts';
import type { Op } from '../src/model/ops.ts';
import { main } from '../src/cli.ts';
import { inProcess, root, runMain, tempDirs } from './cli-run.ts';

const dir = join(root, 'counterexamples');
const tempDir = tempDirs('triage');
const files = readdirSync(dir).filter((f) => f.endsWith('.json')).sort();
/** The corpus file of a finding, by the name its title starts with: names change when the corpus is re-saved. */
const fileOf = (finding: string) => files.find((f) => loadCounterexample(join(dir, f)).title.startsWith(`${finding}:`))!;
const F1 = fileOf('F1');
const V1 = fileOf('V1');

/** "F7" -> "overlapPolicy": the fix column of FINDINGS.md's tables names the option first, in backquotes. */
function findingOptions(): Map<string, string> {
  const rows = readFileSync(join(root, 'FINDINGS.md'), 'utf8').split('\n').filter((l) => /^\| [FV]\d+ \|/.test(l));
  return new Map(rows.map((l) => {
    const cells = l.split(/(?<!\\)\|/).map((c) => c.trim());
    return [cells[1], /`(\w+)/.exec(cells[cells.length - 2])![1]];
  }));
}

/**
 * Ops that more than the named option repairs. F3 and F6 unmap a range whose clear misses pages; the
 * refcount overlap policy clears by its own entry list and misses nothing, and F3's range is the core
 * session page, which protectInternalRanges refuses to unmap at all.
 */
const ALSO_EXPLAINED_BY: Record<string, readonly string[]> = {
  F3: ['overlapPolicy', 'protectInternalRanges'],
  F4: ['privateLowerTables'],
  F6: ['overlapPolicy'],
  F9: ['mapRequiresLiveMemory'],
  F12: ['overlapPolicy'],
  F17: ['nmiDefersExit'],
  F23: ['mapRequiresLiveMemory'],
  F26: ['overlapPolicy'],
  F29: ['exactExtent', 'privateLowerTables'],
  // Forgetting the removed bus makes the next vcpu_isolation_enter see NULL == NULL and skip it.
  F31: ['kvmFreeResetsRemap'],
  // asi_map's own guard refuses the shared slab page: KVM_CREATE_VCPU or KVM_RUN fails instead.
  F33: ['mapRefusesSharedSlabPages'],
  F34: ['mapRefusesSharedSlabPages'],
  // The same guard refuses KVM_CREATE_VCPU's map of the lapic's slab page: the vCPU has no ASI to enter.
  F38: ['mapRefusesSharedSlabPages'],
  F40: ['mapRefusesSharedSlabPages'],
  // A session holds a reference on its ASI: the refcount refuses that asi_destroy too.
  F15: ['asiUsersRefcount'],
};

describe('triage of counterexamples/', () => {
  const named = findingOptions();

  test('FINDINGS.md names a design option of OPTION_NAMES for each finding', () => {
    expect(named.size).toBeGreaterThanOrEqual(22);
    for (const [f, o] of named) expect(OPTION_NAMES, f).toContain(o);
  });

  for (const file of files) {
    test(`${file} is attributed`, () => {
      const c = loadCounterexample(join(dir, file));
      const t = triageOps(c.config, c.ops, c.invariant);
      expect(t.reproduces).toBe(true);
      const labels = t.causes.map(causeLabel);
      if (c.config.mutant) {
        expect(labels).toEqual([`mutant ${c.config.mutant}`]);
        return;
      }
      const finding = /^([FV]\d+):/.exec(c.title)?.[1];
      expect(finding, `${file}: the title names no finding`).toBeDefined();
      expect(labels, `${file} (${finding})`).toEqual(OPTION_NAMES.filter((o) => o === named.get(finding!) || ALSO_EXPLAINED_BY[finding!]?.includes(o)));
    });
  }
});

describe('triage', () => {
  test('a v3 configuration is judged against v3 with its own fixes: interruptResumes is a design choice, never a fix', () => {
    const v3 = fixTarget({ geometry: 'small', cpus: 2, profile: 'v3' });
    expect(v3).toEqual({ ...V3_OPTIONS, resumeFlushesGlobal: true, exitDeactivatesFirst: true });
    expect(fixTarget({ geometry: 'small', cpus: 2, profile: 'rfc-v2' })).toEqual(FIXED_OPTIONS);
    expect(fixCandidates({ geometry: 'small', cpus: 2, profile: 'fixed' })).toEqual([]);
    const choices = OPTION_NAMES.filter((o) => FIXED_OPTIONS[o] === RFC_V2_OPTIONS[o]);
    for (const profile of ['rfc-v2', 'v3'] as const) for (const o of choices) expect(fixCandidates({ geometry: 'small', cpus: 2, profile })).not.toContain(o);
  });

  test('ops that need two fixes together get one combined cause, found by dropping options', () => {
    // F1 and F2 at once: asi_create(CPU_PTR) maps both the whole direct-map page and the percpu page beside the CSPRNG.
    const ops: Op[] = [{ op: 'asi_create', flags: 0x2 }];
    const config = { geometry: 'small' as const, cpus: 2, profile: 'rfc-v2' as const };
    const t = triageOps(config, ops, 'ISOLATION');
    expect(t.causes.map(causeLabel)).toEqual(['splitLargePages+percpuSecretsOwnPage']);
  });

  test('ops that do not violate their invariant are attributed to nothing', () => {
    const config = { geometry: 'small' as const, cpus: 2, profile: 'fixed' as const };
    const t = triageOps(config, [{ op: 'asi_create', flags: 0 }], 'ISOLATION');
    expect(t).toEqual({ invariant: 'ISOLATION', reproduces: false, causes: [] });
  });
});

describe('asi-check triage', () => {
  test('exit 0 on the corpus, one line a file and a table by root cause; --json says the same', async () => {
    const text = await runMain('triage', `counterexamples/${F1}`, `counterexamples/${V1}`);
    expect(text.status).toBe(0);
    expect(text.stdout).toMatch(new RegExp(`${F1.replaceAll('.', '\\.').replaceAll('+', '\\+')} +ISOLATION +splitLargePages`));
    expect(text.stdout).toMatch(new RegExp(`${V1.replaceAll('.', '\\.').replaceAll('+', '\\+')} +ISOLATION +resumeFlushesGlobal`));
    const json = await runMain('triage', '--json', `counterexamples/${V1}`);
    expect(JSON.parse(json.stdout).results[0]).toMatchObject({ invariant: 'ISOLATION', rootCause: 'resumeFlushesGlobal', causes: [{ options: ['resumeFlushesGlobal'] }] });
  });

  test('a folder of downloaded nightly artifacts: counterexamples in its subfolders are judged, the fuzz summaries beside them passed over', async () => {
    const d = tempDir();
    mkdirSync(join(d, 'fuzz-fixed-shard-1', 'summary'), { recursive: true });
    copyFileSync(join(dir, F1), join(d, 'fuzz-fixed-shard-1', F1));
    writeFileSync(join(d, 'fuzz-fixed-shard-1', 'summary', 'fixed-shard-1of4.json'), JSON.stringify({ seed: 'nightly-1-1', walks: 3, violations: [] }));
    const r = await runMain('triage', d);
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`fuzz-fixed-shard-1/${F1.replaceAll('.', '\\.').replaceAll('+', '\\+')} +ISOLATION +splitLargePages`));
    expect(r.stdout).toMatch(/^1 file in [\d.]+ s, 1 attributed, 0 not \(1 JSON file that is not a counterexample passed over\):$/m);
    const json = JSON.parse((await runMain('triage', '--json', d)).stdout) as { files: number; passedOver: string[] };
    expect(json).toMatchObject({ files: 1, passedOver: [join(d, 'fuzz-fixed-shard-1', 'summary', 'fixed-shard-1of4.json')] });
  });

  test('a long triage says on stderr how far it has got, as a long replay does', async () => {
    const r = await inProcess(() => main(['triage', join(dir, F1)]), { env: { ASI_CHECK_REPLAY_PROGRESS_MS: '1' } });
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(new RegExp(`^triage: file 1 of 1 \\(.*${F1.replaceAll('.', '\\.').replaceAll('+', '\\+')}\\), replay \\d+, step \\d+ of \\d+, \\d+ s$`, 'm'));
  });

  test('exit 1 when a file is not attributed, 2 when a file is not a counterexample', async () => {
    const d = tempDir();
    const c = JSON.parse(readFileSync(join(dir, F1), 'utf8'));
    writeFileSync(join(d, 'a.json'), JSON.stringify({ ...c, config: { ...c.config, profile: 'fixed', options: {} } }));
    const r = await runMain('triage', d);
    expect(r.status, r.stdout + r.stderr).toBe(1);
    expect(r.stdout).toMatch(/a\.json +ISOLATION +does not reproduce/);
    writeFileSync(join(d, 'b.json'), '{"format": "asi-check-counterexample"');
    const bad = await runMain('triage', d);
    expect(bad.status).toBe(2);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
  });
});

describe('fuzz --keep-going', () => {
  test('a short seeded rfc-v2 walk goes on past explained violations and reaches several root causes, each replayable from its fixes', () => {
    const config = { geometry: 'small' as const, cpus: 2, profile: 'rfc-v2' as const };
    const found: FoundViolation[] = [];
    const task: WalkTask = { config, base: 'keep-going', shard: 1, worker: 0, steps: 20, walks: 1, firstViolationOnly: false, statsEveryMs: 1e9, keepGoing: { known: [] } };
    runWalks(task, () => false, (e) => e.type === 'violation' && found.push(e.violation));
    const causes = new Set(found.flatMap((v) => v.causes.map(causeLabel)));
    expect(causes.size, [...causes].join(', ')).toBeGreaterThan(1);
    // Each round turns on more fixes; the file of a finding carries them and reproduces.
    for (const [i, v] of found.entries()) {
      if (i > 0) expect(v.fixes.length).toBeGreaterThan(found[i - 1].fixes.length);
      expect(violates(withFixes(config, v.fixes), v.ops, v.invariant)).toBe(true);
    }
  });
});

describe('fuzz deduplication by (invariant, root cause)', () => {
  const config = { geometry: 'small' as const, cpus: 2, profile: 'rfc-v2' as const };
  const found = (ops: Op[], causes: FoundViolation['causes'], walkIndex: number, fn = ops[ops.length - 1].op, invariant = 'ISOLATION'): FoundViolation => ({
    walkIndex, walkSeed: `dedup/${walkIndex}`, invariant, message: '', ops, rawLength: ops.length, argsSimplified: 0, walks: walkIndex + 1, seconds: 0, fixes: [], causes, fn,
  });

  test('ops of another shape with a known root cause are known; a violation nothing explains is new, once per signature', () => {
    const out = tempDir();
    const store = new FindingStore(config, out, loadKnown([dir]));
    const f1 = store.add(0, found([{ op: 'asi_create', flags: 0 }], [{ options: ['splitLargePages'] }], 0));
    expect(f1.finding).toMatchObject({ isNew: false, rootCause: 'splitLargePages', file: join(dir, F1) });
    const again = store.add(1, found([{ op: 'task_create' }, { op: 'asi_create', flags: 0 }], [{ options: ['splitLargePages'] }], 1));
    expect(again).toMatchObject({ firstThisRun: false, finding: { walks: 2 } });
    const unexplained = store.add(0, found([{ op: 'kmalloc', size: 64, sensitive: true }], [], 2));
    expect(unexplained.finding.isNew).toBe(true);
    expect(unexplained.finding.rootCause).toBeUndefined();
    expect(readdirSync(out)).toHaveLength(1);
  });

  test('a known root cause met in another function, or by another invariant, is kept as a new shape of it, once per shape', () => {
    const out = tempDir();
    const store = new FindingStore(config, out, loadKnown([dir]));
    const cause = [{ options: ['splitLargePages'] as const }];
    const inAsiEnter = store.add(0, found([{ op: 'asi_create', flags: 0 }, { op: 'asi_enter', cpu: 0, asi: 1, intr: [] }], cause, 0, 'asi_enter'));
    expect(inAsiEnter.finding).toMatchObject({ isNew: true, rootCause: 'splitLargePages', shapeOf: join(dir, F1) });
    expect(store.add(1, found([{ op: 'task_create' }, { op: 'asi_create', flags: 0 }, { op: 'asi_enter', cpu: 1, asi: 1, intr: [] }], cause, 1, 'asi_enter')).firstThisRun).toBe(false);
    const otherInvariant = store.add(0, found([{ op: 'asi_create', flags: 0 }], cause, 2, 'asi_create', 'REFINE'));
    expect(otherInvariant.finding).toMatchObject({ isNew: true, shapeOf: join(dir, F1) });
    expect(readdirSync(out)).toHaveLength(2);
  });
});
