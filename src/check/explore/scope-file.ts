// `--scope NAME|FILE`: a named scope (SCOPES) or a JSON file holding a Scope. A file's fields
// override those of `small`, so a file names only what it changes; anything it cannot mean is an
// error naming the field.

import { INTR_KINDS } from '../../model/x86/entry.ts';
import { EXIT_REASONS } from '../../model/kvm/run.ts';
import { PERCPU_VAR_NAMES } from '../../model/mm/percpu.ts';
import { SCOPES, SMALL_SCOPE, type Scope } from './scope.ts';
import { ReadError, readBounded } from '../read-file.ts';

export class ScopeError extends Error {}

/** A scope is a few hundred bytes of JSON; far past that, the path names something else. */
const MAX_SCOPE_BYTES = 2 ** 20;

const isNat = (x: unknown): x is number => Number.isSafeInteger(x) && (x as number) >= 0;
const TARGETS: readonly string[] = ['vmalloc', 'kmalloc', 'stack', 'text', 'cea', 'hole', ...PERCPU_VAR_NAMES.map((v) => `percpu:${v}`), 'task-struct:<cpu>'];

function check(ok: boolean, field: string, what: string): void {
  if (!ok) throw new ScopeError(`scope field ${field}: ${what}`);
}

function checkTarget(x: unknown, field: string): void {
  check(isNat(x) || TARGETS.includes(x as string) || /^task-struct:\d$/.test(x as string), field, `a target is an address or one of ${TARGETS.join(', ')}`);
}

function checkEvents(x: unknown, field: string, depth = 0): void {
  check(Array.isArray(x) && depth <= 3, field, 'a list of events ({at, kind, touch?, nested?}), nested at most 3 deep');
  for (const e of x as Record<string, unknown>[]) {
    check(typeof e === 'object' && e !== null && isNat(e.at) && (INTR_KINDS as readonly unknown[]).includes(e.kind), field, `an event needs a whole number at and a kind (${INTR_KINDS.join(', ')})`);
    if (e.touch !== undefined) checkTarget(e.touch, field);
    if (e.nested !== undefined) checkEvents(e.nested, field, depth + 1);
  }
}

const lists = (x: unknown, field: string) => {
  check(Array.isArray(x), field, 'a list of event lists');
  for (const l of x as unknown[]) checkEvents(l, field);
};

const FIELDS: Record<keyof Scope, (x: unknown, f: string) => void> = {
  name: (x, f) => check(typeof x === 'string', f, 'a string'),
  about: (x, f) => check(typeof x === 'string', f, 'a string'),
  createFlags: (x, f) => check(Array.isArray(x) && x.every(isNat), f, 'a list of flag values'),
  maxAsis: (x, f) => check(isNat(x), f, 'a whole number'),
  destroy: (x, f) => check(typeof x === 'boolean', f, 'true or false'),
  map: (x, f) => {
    check(Array.isArray(x), f, 'a list of {target, pages}');
    for (const m of x as Record<string, unknown>[]) {
      check(typeof m === 'object' && m !== null && isNat(m.pages) && (m.pages as number) > 0, f, 'pages must be a positive whole number');
      checkTarget(m.target, f);
    }
  },
  unmapCallers: (x, f) => check(Array.isArray(x) && x.every(isNat), f, 'a list of caller numbers'),
  enterEvents: lists,
  exitEvents: lists,
  interrupts: (x, f) => checkEvents(x, f),
  reads: (x, f) => {
    check(Array.isArray(x), f, 'a list of targets');
    for (const t of x as unknown[]) checkTarget(t, f);
  },
  tlbFlushEvents: lists,
  vmalloc: (x, f) => check(x === null || (typeof x === 'object' && isNat((x as Record<string, unknown>).pages) && isNat((x as Record<string, unknown>).max)), f, 'null or {pages, max}'),
  tasks: (x, f) => {
    const t = x as Record<string, unknown>;
    check(x === null || (typeof x === 'object' && isNat(t.max) && typeof t.exit === 'boolean' && typeof t.schedule === 'boolean'), f, 'null or {max, exit, schedule}');
  },
  failAlloc: (x, f) => check(Array.isArray(x) && x.every(isNat), f, 'a list of counts'),
  kvm: (x, f) => {
    if (x === null) return;
    const k = x as Record<string, unknown>;
    check(typeof x === 'object' && isNat(k.maxVms) && Array.isArray(k.runs), f, 'null or {maxVms, runs, runEvents}');
    for (const r of k.runs as unknown[]) check(Array.isArray(r) && r.every((e) => (EXIT_REASONS as readonly unknown[]).includes(e)), f, `runs lists exit reasons (${EXIT_REASONS.join(', ')})`);
    lists(k.runEvents, `${f}.runEvents`);
  },
  races: (x, f) => {
    if (x === null) return;
    const r = x as Record<string, unknown>;
    check(typeof x === 'object' && isNat(r.points) && Array.isArray(r.runs), f, 'null or {runs, points}');
    for (const run of r.runs as unknown[]) check(Array.isArray(run) && run.every((e) => (EXIT_REASONS as readonly unknown[]).includes(e)), f, `runs lists exit reasons (${EXIT_REASONS.join(', ')})`);
  },
  preemptions: (x, f) => check(isNat(x), f, 'a whole number'),
};

/** A scope from its text; fields absent take `small`'s values. */
export function parseScope(text: string, name: string): Scope {
  let x: unknown;
  try {
    x = JSON.parse(text);
  } catch (e) {
    throw new ScopeError(`not valid JSON (${(e as Error).message})`);
  }
  if (typeof x !== 'object' || x === null || Array.isArray(x)) throw new ScopeError('not a JSON object');
  for (const [k, v] of Object.entries(x)) {
    if (!Object.hasOwn(FIELDS, k)) throw new ScopeError(`unknown scope field ${JSON.stringify(k)} (known: ${Object.keys(FIELDS).join(', ')})`);
    FIELDS[k as keyof Scope](v, k);
  }
  return { ...SMALL_SCOPE, name, ...(x as Partial<Scope>) };
}

/** A scope by name (small, wide, kvm) or from a JSON file. */
export function loadScope(nameOrFile: string): Scope {
  if (Object.hasOwn(SCOPES, nameOrFile)) return SCOPES[nameOrFile];
  let text: string;
  try {
    text = readBounded(nameOrFile, MAX_SCOPE_BYTES, 'a scope file');
  } catch (e) {
    if (!(e instanceof ReadError)) throw e;
    throw new ScopeError(`--scope ${nameOrFile}: neither a scope name (${Object.keys(SCOPES).join(', ')}) nor a scope file: ${e.message}`);
  }
  try {
    return parseScope(text, nameOrFile);
  } catch (e) {
    throw new ScopeError(`--scope ${nameOrFile}: ${(e as Error).message}`);
  }
}
