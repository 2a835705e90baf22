// `asi-check explore`: shortest counterexamples that replay to the same verdict, a clean `fixed` at
// a small depth (in the default scope and in the kvm scope), a state encoding that merges what
// commutes and keeps ghost state apart, and bad input refused with exit 2.

import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, test, vi } from 'vitest';
import { type Shard, explore, shardOf } from '../src/check/explore/search.ts';
import { KVM_SCOPE, SMALL_SCOPE, type Scope, WIDE_SCOPE, alphabet } from '../src/check/explore/scope.ts';
import { Expander, nodeKey } from '../src/check/explore/expand.ts';
import { loadScope } from '../src/check/explore/scope-file.ts';
import { bfsMinimal, minimalCell, shrinkRatio } from '../src/check/explore/shrink-quality.ts';
import { encodeState, fingerprint } from '../src/check/explore/encode.ts';
import { runOps } from '../src/check/run.ts';
import { loadCounterexample } from '../src/check/counterexample.ts';
import { createSystem, step } from '../src/model/step.ts';
import { type Config, cloneSystem } from '../src/model/system.ts';
import type { Op } from '../src/model/ops.ts';
import { EXIT_REASONS } from '../src/model/kvm/run.ts';
import { main } from '../src/cli.ts';

const dir = mkdtempSync(join(tmpdir(), 'asi-explore-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(() => vi.restoreAllMocks());

const FIXED: Config = { geometry: 'small', cpus: 2, profile: 'fixed' };

function stateAfter(ops: readonly Op[]) {
  const sys = createSystem(FIXED);
  for (const op of ops) step(sys, op);
  return sys;
}

describe('explore', () => {
  test.each([
    ['exit-keeps-stack', 'STACK'],
    ['fini-backend-skipped', 'RANGE-NO-LEAK'],
  ] as const)('finds a shortest counterexample for %s (%s) that replays to the same verdict', async (mutant, invariant) => {
    const config: Config = { ...FIXED, mutant };
    const r = await explore(config, SMALL_SCOPE, { depth: 3 });
    expect(r.violation?.failure.violations[0].invariant).toBe(invariant);
    expect(r.violation!.ops).toHaveLength(2);
    // Nothing shorter: every single op was judged clean first.
    expect(r.depthCompleted).toBe(1);
    const replay = runOps(config, r.violation!.ops);
    expect(replay.failure?.step).toBe(r.violation!.failure.step);
    expect(replay.failure?.violations.map((v) => v.invariant)).toEqual(r.violation!.failure.violations.map((v) => v.invariant));
  });

  test('fixed has no violation up to depth 2, every level finished', async () => {
    const r = await explore(FIXED, SMALL_SCOPE, { depth: 2 });
    expect(r.violation).toBeUndefined();
    expect(r.stopped).toBeUndefined();
    expect(r.depthCompleted).toBe(2);
    expect(r.perLevel[0]).toBe(1);
    expect(r.states).toBe(r.perLevel.reduce((a, b) => a + b, 0));
  });

  test("asi-check 0.1's memory (KernelConfig.layout 1) is searched as 0.1 searched it: 770 transitions to depth 3, 236 states", async () => {
    // asi-check 0.1 gave 240 states and 770 transitions (`explore --depth 3`): the format-1 files
    // replay on this memory. asiEnterExclusive, newer, refuses asi_enter on a second CPU while the
    // first is in the ASI, and the 4 states where both were in it are gone.
    const r = await explore({ ...FIXED, kernel: { layout: 1 } }, SMALL_SCOPE, { depth: 3 });
    expect([r.states, r.transitions, r.depthCompleted]).toEqual([236, 770, 3]);
  });

  test('worker threads find the same states and transitions as one thread', async () => {
    const one = await explore(FIXED, SMALL_SCOPE, { depth: 2 });
    const two = await explore(FIXED, SMALL_SCOPE, { depth: 2, workers: 2 });
    expect([two.states, two.transitions, two.perLevel]).toEqual([one.states, one.transitions, one.perLevel]);
  });

  test('a scope file overrides the default scope (scopes/enter-exceptions.json)', async () => {
    const scope = loadScope(join(import.meta.dirname, '..', 'scopes', 'enter-exceptions.json'));
    expect(scope.interrupts).toEqual([]);
    expect(scope.tasks).toEqual(SMALL_SCOPE.tasks);
    const r = await explore(FIXED, scope, { depth: 2 });
    expect(r.violation).toBeUndefined();
    expect(r.depthCompleted).toBe(2);
  });

  test("the kvm scope: fixed has no violation up to depth 3, where KVM_RUN runs with each exit reason and an NMI after each of its first 24 micro-steps", async () => {
    const withVcpu = stateAfter([{ op: 'kvm_create_vm' }, { op: 'kvm_create_vcpu', vm: 1 }]);
    const runs = alphabet(withVcpu, KVM_SCOPE).filter((op) => op.op === 'kvm_run');
    expect(new Set(runs.flatMap((op) => op.exits))).toEqual(new Set(EXIT_REASONS));
    expect(new Set(runs.flatMap((op) => op.intr.map((e) => `${e.kind}@${e.at}`))).size).toBe(24);
    const r = await explore(FIXED, KVM_SCOPE, { depth: 3 });
    expect(r.violation).toBeUndefined();
    expect(r.stopped).toBeUndefined();
    expect(r.depthCompleted).toBe(3);
    expect(r.transitions).toBeGreaterThan(runs.length);
  });

  test('--preemptions: racing KVM_RUNs are offered only while the path has a preemption left, and one finds F38\'s use after free in 3 ops where none finds nothing', async () => {
    const withVcpu = stateAfter([{ op: 'kvm_create_vm' }, { op: 'kvm_create_vcpu', vm: 1 }]);
    const raced = (k: number) => alphabet(withVcpu, KVM_SCOPE, k).filter((op) => 'race' in op && op.race);
    expect(raced(0)).toEqual([]);
    expect(raced(1).length).toBe(5 * KVM_SCOPE.races!.points);
    // KVM_RUN without NMIs, raced at its first 8 points: where vcpu_isolation_enter reads kvm->memslots[0] among them.
    const scope: Scope = { ...KVM_SCOPE, kvm: { ...KVM_SCOPE.kvm!, runEvents: [[]] }, races: { ...KVM_SCOPE.races!, points: 8 } };
    const config: Config = { ...FIXED, options: { kvmIsolationEnterInSrcu: false } };
    expect((await explore(config, scope, { depth: 3 })).violation).toBeUndefined();
    const r = await explore(config, { ...scope, preemptions: 1 }, { depth: 3 });
    expect(r.violation?.failure.violations[0].invariant).toBe('NO-UAF');
    expect(r.violation!.ops.map((op) => op.op)).toEqual(['kvm_create_vm', 'kvm_create_vcpu', 'kvm_run']);
    expect(runOps(config, r.violation!.ops).failure?.violations[0].invariant).toBe('NO-UAF');
  });

  test('--preemptions: a node is its state and the preemptions its path has left, so a state reached with a race spent is not the one reached without', () => {
    const sys = stateAfter([{ op: 'kvm_create_vm' }]);
    const bounded = { ...KVM_SCOPE, preemptions: 2 };
    expect(nodeKey(sys, KVM_SCOPE, 0)).toBe(fingerprint(sys));
    expect(new Set([0, 1, 2].map((left) => nodeKey(sys, bounded, left))).size).toBe(3);
  });

  test('the kvm scope: a shortest counterexample for kvm-barrier-begin-skipped, an NMI inside the barrier window, replays to the same verdict', async () => {
    const config: Config = { ...FIXED, mutant: 'kvm-barrier-begin-skipped' };
    const r = await explore(config, KVM_SCOPE, { depth: 3 });
    expect(r.violation?.failure.violations[0].invariant).toBe('KVM-EXIT-CR3');
    expect(r.depthCompleted).toBe(2);
    expect(r.violation!.ops.map((op) => op.op)).toEqual(['kvm_create_vm', 'kvm_create_vcpu', 'kvm_run']);
    expect(r.violation!.ops[2]).toMatchObject({ intr: [{ kind: 'nmi' }] });
    expect(runOps(config, r.violation!.ops).failure?.violations.map((v) => v.invariant)).toEqual(r.violation!.failure.violations.map((v) => v.invariant));
    expect(runOps(FIXED, r.violation!.ops).failure).toBeUndefined();
  });

  test('a state cap stops the search and says how deep the proof reached', async () => {
    const r = await explore(FIXED, SMALL_SCOPE, { depth: 5, maxStates: 20 });
    expect(r.stopped).toBe('max-states');
    expect(r.depthCompleted).toBe(1);
  });
});

describe('shrink quality', () => {
  test('a shrunk counterexample against the shortest one for its invariant', async () => {
    const config: Config = { ...FIXED, mutant: 'fini-backend-skipped' };
    const m = await bfsMinimal(config, 'RANGE-NO-LEAK', 3, 0);
    expect(m.found?.length).toBe(2);
    expect(shrinkRatio(m)).toBe(1.5);
    expect(minimalCell(m)).toBe('2 (small)');
  });
});

describe('state encoding', () => {
  const readX = (cpu: number, va: number): Op => ({ op: 'access', cpu, va, access: 'read', intr: [] });

  test('two orders of commuting ops reach one state', () => {
    const base = stateAfter([{ op: 'vmalloc', pages: 1, sensitive: true }]);
    const va = base.kernel.vmAreas.get(Math.max(...base.kernel.vmAreas.keys()))!.va;
    const pre: Op[] = [{ op: 'vmalloc', pages: 1, sensitive: true }];
    const a = stateAfter([...pre, readX(0, va), { op: 'interrupt', cpu: 1, kind: 'irq', intr: [] }]);
    const b = stateAfter([...pre, { op: 'interrupt', cpu: 1, kind: 'irq', intr: [] }, readX(0, va)]);
    expect(fingerprint(a)).toBe(fingerprint(b));
    expect(fingerprint(a)).not.toBe(fingerprint(base));
  });

  test('states differing only in ghost state that invariants read are told apart', () => {
    const sys = stateAfter([{ op: 'asi_create', flags: 0 }, { op: 'vmalloc', pages: 1, sensitive: true }, { op: 'asi_map', asi: 1, ptr: 0, size: 4096, level: 0 }]);
    const owed = cloneSystem(sys);
    owed.cpus[0].flushOwed = true;
    expect(fingerprint(owed)).not.toBe(fingerprint(sys));
    const reached = cloneSystem(sys);
    const asi = reached.asis.get(1)!;
    asi.ranges = [{ ...asi.ranges[0], ghostReached: [...asi.ranges[0].ghostReached, '0/999/-1'] }, ...asi.ranges.slice(1)];
    expect(fingerprint(reached)).not.toBe(fingerprint(sys));
  });

  test("what the next step resets is left out: the step's ghost records and the change counter", () => {
    const sys = stateAfter([{ op: 'asi_create', flags: 0 }]);
    const other = cloneSystem(sys);
    other.ghost.events.push({ invariant: 'NO-WARN', message: 'x' });
    other.mem.version += 7;
    expect(encodeState(other)).toBe(encodeState(sys));
  });

  test('expanding a state leaves it as it was (clones share nothing a step changes)', () => {
    const e = new Expander({ ...FIXED, profile: 'rfc-v2' }, WIDE_SCOPE, {});
    for (const path of [[], [0], [0, 5], [0, 5, 9], [1, 3, 2]]) {
      const sys = e.stateOf(path);
      const before = encodeState(sys);
      e.expand(Int32Array.from(path), path.length, 1);
      expect(encodeState(e.stateOf(path))).toBe(before);
    }
  });

  test('a state stepped from a clone encodes as the same ops replayed from boot', () => {
    let sys = createSystem(FIXED);
    const ops: Op[] = [];
    for (const j of [0, 3, 5, 2]) {
      const next = cloneSystem(sys);
      const op = alphabet(sys, SMALL_SCOPE)[j];
      ops.push(op);
      step(next, op);
      sys = next;
    }
    expect(encodeState(sys)).toBe(encodeState(stateAfter(ops)));
  });
});

describe('explore in shards', () => {
  const nodes = async (config: Config, shard?: Shard) => {
    const keys: string[] = [];
    const r = await explore(config, SMALL_SCOPE, { depth: 3, ...(shard ? { shard } : {}) }, { onNode: (k) => keys.push(k) });
    return { r, keys };
  };

  test('n shards together reach the states one machine reaches, each node of the split level expanded by one shard', async () => {
    const one = await nodes(FIXED);
    const parts = await Promise.all([1, 2, 3].map((index) => nodes(FIXED, { index, count: 3, splitDepth: 1 })));
    expect(new Set(parts.flatMap((p) => p.keys))).toEqual(new Set(one.keys));
    const atSplit = parts.map((p) => p.r.perLevel[1]);
    expect(atSplit.reduce((a, b) => a + b, 0)).toBe(one.r.perLevel[1]);
    expect(atSplit.filter((n) => n > 0).length).toBeGreaterThan(1);
    for (const p of parts) expect(p.r.depthCompleted).toBe(3);
  });

  test('the shortest counterexample one machine finds, some shard finds at the same length, and none finds a shorter one', async () => {
    const config: Config = { ...FIXED, mutant: 'exit-keeps-stack' };
    const one = (await nodes(config)).r.violation!;
    const found = (await Promise.all([1, 2].map((index) => nodes(config, { index, count: 2, splitDepth: 1 })))).map((p) => p.r.violation);
    const lengths = found.filter((v) => v !== undefined).map((v) => v!.ops.length);
    expect(Math.min(...lengths)).toBe(one.ops.length);
    expect(found.find((v) => v?.ops.length === one.ops.length)!.failure.violations[0].invariant).toBe(one.failure.violations[0].invariant);
  });

  test('shardOf spreads keys over every shard', () => {
    const counts = [0, 0, 0, 0];
    for (let i = 0; i < 400; i++) counts[shardOf(`key${i}`, 4) - 1]++;
    expect(counts.every((n) => n > 60)).toBe(true);
  });
});

describe('explore on the command line', () => {
  async function cli(args: string[]) {
    const err = vi.spyOn(console, 'error').mockImplementation(() => {});
    const out = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    const errw = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    const status = await main(args);
    const stderr = [...err.mock.calls, ...errw.mock.calls].map((c) => String(c[0])).join('\n');
    const stdout = [...out.mock.calls.map((c) => String(c[0])), ...log.mock.calls.map((c) => String(c[0]))].join('\n');
    vi.restoreAllMocks();
    return { status, stderr, stdout };
  }

  test('a violation: exit 1 and a file that replay reproduces', async () => {
    const out = join(dir, 'cx');
    const r = await cli(['explore', '--depth', '3', '--mutant', 'fini-backend-skipped', '--workers', '0', '--out', out]);
    expect(r.status).toBe(1);
    const [file] = readdirSync(out);
    expect(file).toMatch(/^mutant-fini-backend-skipped--range-no-leak--[0-9a-f]{12}\.json$/);
    expect(loadCounterexample(join(out, file)).found?.by).toBe('explore');
    expect((await cli(['replay', join(out, file)])).status).toBe(1);
  });

  test('--shard i/n writes its part as a summary, and --merge takes the parts together: the depth all proved, or the shortest counterexample with its file', async () => {
    const part = (index: number, extra: string[] = []) => cli(['explore', '--depth', '3', '--shard', `${index}/2`, '--split-depth', '1', '--workers', '0', '--out', join(dir, `shard${extra.length}-${index}`), ...extra]);
    expect((await part(1)).status).toBe(0);
    const missing = await cli(['explore', '--merge', join(dir, 'shard0-1')]);
    expect(missing.status).toBe(0);
    expect(missing.stdout).toMatch(/shard 2 missing/);
    expect(missing.stdout).toMatch(/no violation up to depth 1, the split level \(shard 2 missing\)/);
    expect((await part(2)).status).toBe(0);
    const both = await cli(['explore', '--merge', join(dir, 'shard0-1'), join(dir, 'shard0-2'), '--json']);
    expect(both.status).toBe(0);
    expect(JSON.parse(both.stdout)).toMatchObject({ shards: 2, missing: [], depthProved: 3, violation: null });
    const mutant = ['--mutant', 'exit-keeps-stack'];
    await part(1, mutant);
    await part(2, mutant);
    const found = await cli(['explore', '--merge', join(dir, 'shard2-1'), join(dir, 'shard2-2')]);
    expect(found.status).toBe(1);
    expect(found.stdout).toMatch(/VIOLATION STACK after \d+ ops, found by shard \d, a shortest sequence/);
    const replay = /npx asi-check replay (\S+)/.exec(found.stdout)![1];
    expect((await cli(['replay', replay])).status).toBe(1);
    const mixed = await cli(['explore', '--merge', join(dir, 'shard0-1'), join(dir, 'shard2-2')]);
    expect(mixed.status).toBe(2);
    expect(mixed.stderr).toMatch(/are shards of different searches/);
  });

  test('--merge refuses a corrupt or newer shard summary, naming the file', async () => {
    const bad = join(dir, 'bad-shards');
    mkdirSync(bad, { recursive: true });
    const file = join(bad, 'explore-shard-1-of-2.json');
    writeFileSync(file, '{"format": "asi-check-explore-shard", ');
    expect((await cli(['explore', '--merge', bad])).stderr).toMatch(/explore-shard-1-of-2\.json: not valid JSON/);
    writeFileSync(file, JSON.stringify({ format: 'asi-check-explore-shard', version: 9 }));
    const newer = await cli(['explore', '--merge', bad]);
    expect(newer.status).toBe(2);
    expect(newer.stderr).toMatch(/version 9 is not supported/);
  });

  test.each([
    [['explore', '--merge', dir], /no shard summary/],
    [['explore', '--depth', '3', '--shard', '3/2'], /expected i\/n with 1 <= i <= n/],
    [['explore', '--depth', '3', '--shard', '1/2', '--split-depth', '3'], /--split-depth 3 must be below --depth 3/],
    [['explore'], /--depth/],
    [['explore', '--depth', '0'], /expected a whole number/],
    [['explore', '--depth', '2', '--scope', 'nope'], /neither a scope name/],
    [['explore', '--depth', '2', '--scope', join(dir, 'bad-scope.json')], /unknown scope field "frobs"/],
    [['explore', '--depth', '2', '--mutant', 'nope'], /unknown mutant/],
  ])('bad input %j: exit 2 and one clear line', async (args, message) => {
    writeFileSync(join(dir, 'bad-scope.json'), JSON.stringify({ frobs: 1 }));
    const r = await cli(args);
    expect(r.status).toBe(2);
    expect(r.stderr + r.stdout).toMatch(message);
  });
});
