// The saved counterexample format (version 2, version 1 still read): what a reader accepts, what it
// refuses and why, and how files are written (atomically, by rename).

import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import {
  type Counterexample,
  CounterexampleError,
  FORMAT,
  FORMAT_VERSION,
  loadCounterexample,
  makeCounterexample,
  parseCounterexample,
  saveCounterexample,
} from '../src/check/counterexample.ts';
import type { Op } from '../src/model/ops.ts';
import type { Config } from '../src/model/system.ts';

const CONFIG: Config = { geometry: 'small', cpus: 2, profile: 'rfc-v2' };
const OPS: Op[] = [
  { op: 'asi_create', flags: 0x1f },
  { op: 'task_create' },
  { op: 'asi_map', asi: 1, ptr: 0x40a000, size: 0x4000, level: 0 },
  { op: 'asi_remap', asi: 1, cur: null, ptr: 0x40a000, size: 0x1000 },
  { op: 'asi_map_percpu', asi: 1, var: 'rcu_data' },
  { op: 'kmalloc', size: 0x40, sensitive: true },
  { op: 'asi_unmap', asi: 1, ptr: 0x40a000 },
];

function valid(overrides: Partial<Counterexample> = {}): Counterexample {
  return { ...makeCounterexample(CONFIG, OPS, 'RANGE-EXACT', 'asi#1: 0x... is not mapped', 'RANGE-EXACT: map then unmap', { by: 'test', seed: 7, runs: 3 }), ...overrides };
}

/** The text of a valid counterexample with `edit` applied to its parsed JSON. */
function edited(edit: (o: Record<string, any>) => void): string {
  const o = JSON.parse(JSON.stringify(valid())) as Record<string, any>;
  edit(o);
  return JSON.stringify(o);
}

function rejection(text: string): CounterexampleError {
  try {
    parseCounterexample(text);
  } catch (e) {
    expect(e).toBeInstanceOf(CounterexampleError);
    return e as CounterexampleError;
  }
  throw new Error(`accepted: ${text.slice(0, 200)}`);
}

describe('parseCounterexample refuses, saying why', () => {
  const cases: { name: string; text: string; why: RegExp }[] = [
    { name: 'text that is not JSON', text: '{"format": ', why: /not valid JSON/ },
    { name: 'a JSON number', text: '42', why: /not a JSON object/ },
    { name: 'JSON null', text: 'null', why: /not a JSON object/ },
    { name: 'a JSON string', text: '"asi-check-counterexample"', why: /not a JSON object/ },
    { name: 'a file of another format', text: edited((o) => (o.format = 'something-else')), why: /not an asi-check counterexample.*something-else/ },
    { name: 'a file without a format', text: edited((o) => delete o.format), why: /not an asi-check counterexample/ },
    { name: `a newer format version (${FORMAT_VERSION + 1})`, text: edited((o) => (o.version = FORMAT_VERSION + 1)), why: new RegExp(`version ${FORMAT_VERSION + 1} is not supported`) },
    { name: 'a missing version', text: edited((o) => delete o.version), why: /version .*not supported/ },
    { name: 'a version given as a string', text: edited((o) => (o.version = String(FORMAT_VERSION))), why: /version .*not supported/ },
    { name: 'a version-2 file that does not say which asi-check saved it', text: edited((o) => delete o.asiCheck), why: /asiCheck must be the version of the asi-check that saved the file, got none/ },
    { name: 'a memcg out of range in an op', text: edited((o) => (o.ops[5].memcg = 9)), why: /op 6: kmalloc: field memcg must be 0-3/ },
    { name: 'a kmalloc burst past its bound', text: edited((o) => (o.ops[5].count = 100)), why: /op 6: kmalloc: field count must be 1-16/ },
    { name: 'an unknown invariant', text: edited((o) => (o.invariant = 'NO-BUGS')), why: /unknown invariant "NO-BUGS"/ },
    { name: 'a missing config', text: edited((o) => delete o.config), why: /config is not an object/ },
    { name: 'an unknown geometry', text: edited((o) => (o.config.geometry = 'huge')), why: /unknown geometry "huge"/ },
    { name: 'an unknown profile', text: edited((o) => (o.config.profile = 'rfc-v3')), why: /unknown profile "rfc-v3"/ },
    { name: 'an unknown mutant', text: edited((o) => (o.config.mutant = 'no-such-mutant')), why: /unknown mutant "no-such-mutant"/ },
    { name: 'an unknown design option', text: edited((o) => (o.config.options = { turboMode: true })), why: /unknown design option "turboMode"/ },
    { name: 'a design option of the wrong type', text: edited((o) => (o.config.options = { splitLargePages: 'yes' })), why: /splitLargePages has the wrong type/ },
    { name: 'an empty op list', text: edited((o) => (o.ops = [])), why: /ops must be a non-empty array/ },
    { name: 'an unknown op kind', text: edited((o) => (o.ops[1] = { op: 'asi_frobnicate' })), why: /op 2: unknown op "asi_frobnicate"/ },
    { name: 'an op that is not an object', text: edited((o) => (o.ops[0] = 'asi_create')), why: /op 1: not an object/ },
    { name: 'an op with a missing field', text: edited((o) => delete o.ops[2].size), why: /op 3: asi_map: field size must be a non-negative integer/ },
    { name: 'an op with a negative field', text: edited((o) => (o.ops[6].ptr = -4096)), why: /op 7: asi_unmap: field ptr must be a non-negative integer/ },
    { name: 'an op with a fractional field', text: edited((o) => (o.ops[0].flags = 1.5)), why: /op 1: asi_create: field flags must be a non-negative integer/ },
    { name: 'an op with a level above PGD', text: edited((o) => (o.ops[2].level = 5)), why: /op 3: asi_map: level must be 0-4/ },
    { name: 'an op with a non-boolean flag', text: edited((o) => (o.ops[5].sensitive = 1)), why: /op 6: kmalloc: field sensitive must be a boolean/ },
    { name: 'an unknown percpu variable', text: edited((o) => (o.ops[4].var = 'secret_key')), why: /op 5: .*unknown percpu variable "secret_key"/ },
  ];
  for (const c of cases) {
    test(c.name, () => {
      expect(rejection(c.text).message).toMatch(c.why);
    });
  }
});

describe('format 1 (asi-check 0.1)', () => {
  test("a version-1 file, which has no asiCheck, loads with 0.1's memory (layout 1) under its own kernel settings", () => {
    const v1 = edited((o) => {
      o.version = 1;
      delete o.asiCheck;
      o.config.kernel = { slab: true };
    });
    expect(parseCounterexample(v1).config.kernel).toEqual({ slab: true, layout: 1 });
    expect(rejection(edited((o) => ((o.version = 1), delete o.asiCheck, (o.config.kernel = { pml: false })))).message).toMatch(/unknown kernel setting "pml" \(format version 1\)/);
  });

  test('what is saved now is version 5 and names the asi-check that saved it', () => {
    const c = valid();
    expect(c.version).toBe(5);
    expect(c.asiCheck).toMatch(/^\d+\.\d+\.\d+/);
  });

  test('a race is read from version 3 only: a version-2 file with one is refused, naming the op', () => {
    const raced = { op: 'kvm_run', cpu: 0, vcpu: 2, exits: [], intr: [], race: { at: 3, on: 1, op: { op: 'kvm_io_bus', vm: 1, bus: 1, register: false } } };
    const text = (version: number) => JSON.stringify({ ...valid(), version, ops: [...valid().ops, raced] });
    expect(parseCounterexample(text(3)).ops.at(-1)).toEqual(raced);
    expect(() => parseCounterexample(text(2))).toThrow(/race needs format version 3, the file says 2/);
  });

  test('an ASI API call made on a CPU is read from version 4 only: a version-3 file with one is refused, naming the op', () => {
    const made = { op: 'asi_unmap', asi: 1, ptr: 4096, on: 1 };
    const text = (version: number) => JSON.stringify({ ...valid(), version, ops: [...valid().ops, made] });
    expect(parseCounterexample(text(4)).ops.at(-1)).toEqual(made);
    expect(() => parseCounterexample(text(3))).toThrow(/op 8: on needs format version 4, the file says 3/);
  });

  test('a GFP_ATOMIC kmalloc is read from version 5 only: a version-4 file with one, or with a racing one, is refused, naming the op', () => {
    const atomic = { op: 'kmalloc', size: 64, sensitive: false, atomic: true };
    const raced = { op: 'asi_enter', cpu: 0, asi: 1, intr: [], race: { at: 0, on: 1, op: atomic } };
    const text = (version: number, op: object) => JSON.stringify({ ...valid(), version, ops: [...valid().ops, op] });
    expect(parseCounterexample(text(5, atomic)).ops.at(-1)).toEqual(atomic);
    expect(() => parseCounterexample(text(4, atomic))).toThrow(/op 8: atomic needs format version 5, the file says 4/);
    expect(() => parseCounterexample(text(4, raced))).toThrow(/op 8: atomic needs format version 5, the file says 4/);
  });

  test('`on` and `intr` of an ASI API call are validated: only API calls take on, it names a CPU, events need it, and a racing op says its CPU with race.on', () => {
    const ops = (op: unknown) => JSON.stringify({ ...valid(), ops: [op] });
    expect(() => parseCounterexample(ops({ op: 'kmalloc', size: 8, sensitive: false, on: 1 }))).toThrow(/op 1: kmalloc: on must name a CPU, and only ASI API calls take it/);
    expect(() => parseCounterexample(ops({ op: 'asi_unmap', asi: 1, ptr: 0, on: -1 }))).toThrow(/asi_unmap: on must name a CPU/);
    const raced = { op: 'asi_enter', cpu: 0, asi: 1, intr: [], race: { at: 0, on: 1, op: { op: 'asi_unmap', asi: 1, ptr: 0, on: 1 } } };
    expect(() => parseCounterexample(ops(raced))).toThrow(/a racing op's CPU is race.on/);
    expect(() => parseCounterexample(ops({ op: 'asi_unmap', asi: 1, ptr: 0, intr: [{ at: 1, kind: 'nmi' }] }))).toThrow(/asi_unmap: intr needs on, the CPU its events land on/);
    expect(() => parseCounterexample(ops({ op: 'asi_unmap', asi: 1, ptr: 0, on: 0, intr: [{ at: 1, kind: 'smi' }] }))).toThrow(/asi_unmap: intr: unknown kind "smi"/);
    expect(parseCounterexample(ops({ op: 'asi_unmap', asi: 1, ptr: 0, on: 0, intr: [{ at: 1, kind: 'nmi' }] })).ops[0]).toMatchObject({ on: 0, intr: [{ at: 1, kind: 'nmi' }] });
  });

  test('a race is validated: on its own CPU, or nested, it is refused with the reason', () => {
    const run = (race: unknown) => JSON.stringify({ ...valid(), ops: [{ op: 'kvm_run', cpu: 0, vcpu: 2, exits: [], intr: [], race }] });
    expect(() => parseCounterexample(run({ at: 0, on: 0, op: { op: 'kmalloc', size: 8, sensitive: false } }))).toThrow(/runs on cpu0 too/);
    expect(() => parseCounterexample(run({ at: 0, op: { op: 'kmalloc', size: 8, sensitive: false } }))).toThrow(/race.on must name a CPU/);
    expect(() => parseCounterexample(run({ at: 0, on: 1, op: { op: 'kvm_run', cpu: 1, vcpu: 2, exits: [], intr: [] } }))).toThrow(/race.on is for ops that name no CPU/);
    expect(() => parseCounterexample(run({ at: -1, on: 1, op: { op: 'kmalloc', size: 8, sensitive: false } }))).toThrow(/race.at must be a non-negative integer/);
    const nested = { at: 0, op: { op: 'kvm_run', cpu: 1, vcpu: 2, exits: [], intr: [], race: { at: 0, on: 0, op: { op: 'kmalloc', size: 8, sensitive: false } } } };
    expect(() => parseCounterexample(run(nested))).toThrow(/no race of its own/);
  });
});

describe('parseCounterexample accepts what makeCounterexample makes', () => {
  test('a counterexample round-trips through JSON unchanged', () => {
    const c = valid();
    expect(c.format).toBe(FORMAT);
    expect(c.version).toBe(FORMAT_VERSION);
    expect(c.trace).toHaveLength(OPS.length);
    expect(parseCounterexample(JSON.stringify(c))).toEqual(c);
  });

  test('with design options, a mutant and a null remap pointer', () => {
    const config: Config = { geometry: 'real', cpus: 4, profile: 'fixed', options: { overlapPolicy: 'refuse', rollbackOnError: false }, mutant: 'overlap-check-skipped' };
    const c = makeCounterexample(config, OPS, 'RANGE-NO-OVERLAP', 'm', 't');
    expect(c.found).toBeUndefined();
    expect(parseCounterexample(JSON.stringify(c, null, 2))).toEqual(c);
  });
});

describe('saving and loading', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });
  function tempDir(): string {
    const d = mkdtempSync(join(tmpdir(), 'asi-check-cx-'));
    dirs.push(d);
    return d;
  }

  test('saveCounterexample writes a file that loadCounterexample reads back equal, leaving no temporary file', () => {
    const dir = join(tempDir(), 'nested', 'dir');
    const c = valid();
    const path = saveCounterexample(dir, c);
    expect(path.startsWith(dir)).toBe(true);
    expect(path.endsWith('.json')).toBe(true);
    expect(loadCounterexample(path)).toEqual(c);
    expect(readdirSync(dir)).toEqual([path.slice(dir.length + 1)]);
    expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  test('saving a counterexample of the same signature again overwrites the file', () => {
    const dir = tempDir();
    const first = valid();
    const second = valid({ message: 'a different message', title: 'a different title' });
    const p1 = saveCounterexample(dir, first);
    const p2 = saveCounterexample(dir, second);
    expect(p2).toBe(p1);
    expect(loadCounterexample(p1)).toEqual(second);
    expect(readdirSync(dir)).toHaveLength(1);
  });

  test('counterexamples of different signatures are kept side by side', () => {
    const dir = tempDir();
    const a = saveCounterexample(dir, valid());
    const b = saveCounterexample(dir, valid({ invariant: 'REFINE' }));
    expect(b).not.toBe(a);
    expect(readdirSync(dir).sort()).toHaveLength(2);
  });

  test('loadCounterexample of a missing file or a damaged file is a CounterexampleError', () => {
    const dir = tempDir();
    expect(() => loadCounterexample(join(dir, 'missing.json'))).toThrow(CounterexampleError);
    expect(() => loadCounterexample(join(dir, 'missing.json'))).toThrow(/cannot read/);
    const damaged = join(dir, 'damaged.json');
    writeFileSync(damaged, JSON.stringify(valid()).slice(0, 40));
    expect(() => loadCounterexample(damaged)).toThrow(/not valid JSON/);
  });
});
