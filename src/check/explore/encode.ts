// The canonical encoding of a System and its fingerprint: two states with one encoding behave alike
// from then on (same successors under every op, same verdicts), so `explore` expands each once.
//
// The encoding is generic: every field the System holds now or gains later is encoded, in the
// order the model keeps it (Map and Set insertion order, array order, object key order), so that a
// field added to the model can never be silently left out. Distinguishing too much only costs
// states; leaving something out would make the search unsound. What is left out, and why:
//
//   config, options, g   fixed for a whole search (every state of one search shares them)
//   ghost                the current step's records (events, apiCall, cleared, coverage): `step`
//                        replaces it with newGhost() before the next op does anything, and the
//                        invariants read it only right after the step that wrote it, which
//                        `explore` judges on every transition, old target state or new
//   exec, caller         who runs the current step: `step` and the API-call wrapper reset them to
//                        processContext() and 0 when the step ends
//   onCpu                the path the current step runs on a CPU: undefined again when the op ends
//   racing               the CPU in flight while a racing op runs: undefined again before the op ends
//   spinning             a racing op waiting for the CPU in flight: undefined again before the op ends
//   mem.version, allocEpoch
//                        change counters: the checker compares them between checks of one run,
//                        never their values across states (explore judges each transition afresh)
//   mem.firstFree        where the allocator starts looking: derived from frameAlloc
//   mem.tableLog, frameLog and their starts
//                        the current step's change log, emptied when the next step begins, and
//                        positions counted over the whole run (read by the incremental checker only)
//   ranges' ghostStamp   the allocation counter when a range was mapped: it words ISOLATION's note
//                        (was an unrequested neighbour there then, or put there since) and decides
//                        no verdict, so two states that differ only in it are one
//
// Everything else is in, ghost that invariants read across steps included: each range's
// ghostReached and ghostPages, the TLB entries' owners and roots, cpu.flushOwed, the id counters
// (nextAsiId, nextAllocId, kernel.nextId, kvm.nextId: they decide the ids of objects yet to be
// made, and ids are compared across time, e.g. an allocation id in ghostReached). No id is renamed:
// a canonical renaming would have to rename ids inside ghost strings ("frame/alloc/part") and keep
// every id comparison the model and the invariants make, which nothing checks; two states that
// differ only in ids stay two states.

import type { System } from '../../model/system.ts';

/** Top-level System fields left out of the encoding (see above). */
export const EXCLUDED_SYSTEM_FIELDS: ReadonlySet<string> = new Set(['config', 'options', 'g', 'ghost', 'exec', 'caller', 'onCpu', 'racing', 'spinning']);

/** Fields left out wherever they are: only messages read them (see above). */
const WORDING_FIELDS: ReadonlySet<string> = new Set(['ghostStamp']);

/**
 * Where the walk of a state goes: one number or string at a time, with a tag opening each
 * container, so that no two different values give one sequence.
 */
interface Sink {
  num(x: number): void;
  str(s: string): void;
  tag(t: number): void;
  /** An object never changed after it was made: a sink may remember what it gave (by identity). */
  frozen(o: object, walk: (out: Sink) => void): void;
}

const T_UNDEFINED = 1, T_NULL = 2, T_TRUE = 3, T_FALSE = 4, T_ARRAY = 5, T_TYPED = 6, T_MAP = 7, T_SET = 8, T_OBJECT = 9, T_END = 10;

/**
 * Maps whose values are made whole and never changed, only replaced: allocations, TLB entries,
 * tasks, vmalloc areas, kmalloc objects, modules (every field `readonly`, arrays `readonly` too,
 * so the compiler holds the model to it). Their values are hashed once per object, not per state.
 */
function frozenMaps(sys: System): ReadonlySet<unknown> {
  const k = sys.kernel;
  return new Set<unknown>([sys.mem.allocs, k.tasks, k.vmAreas, k.kmallocs, k.modules, ...sys.cpus.map((c) => c.tlb)]);
}

function walkValue(v: unknown, out: Sink, frozen: ReadonlySet<unknown>): void {
  switch (typeof v) {
    case 'number':
      out.num(v);
      return;
    case 'string':
      out.str(v);
      return;
    case 'boolean':
      out.tag(v ? T_TRUE : T_FALSE);
      return;
    case 'undefined':
      out.tag(T_UNDEFINED);
      return;
    case 'object':
      break;
    default:
      throw new Error(`explore: cannot encode a ${typeof v} in the model state`);
  }
  if (v === null) {
    out.tag(T_NULL);
  } else if (Array.isArray(v)) {
    out.tag(T_ARRAY);
    for (const x of v) walkValue(x, out, frozen);
    out.tag(T_END);
  } else if (ArrayBuffer.isView(v)) {
    out.tag(T_TYPED);
    const xs = v as unknown as ArrayLike<number>;
    for (let i = 0; i < xs.length; i++) out.num(xs[i]);
    out.tag(T_END);
  } else if (v instanceof Map) {
    out.tag(T_MAP);
    const whole = frozen.has(v);
    for (const [k, x] of v) {
      walkValue(k, out, frozen);
      if (whole) out.frozen(x as object, (o) => walkValue(x, o, frozen));
      else walkValue(x, out, frozen);
    }
    out.tag(T_END);
  } else if (v instanceof Set) {
    out.tag(T_SET);
    for (const x of v) walkValue(x, out, frozen);
    out.tag(T_END);
  } else {
    out.tag(T_OBJECT);
    for (const k of Object.keys(v)) {
      if (WORDING_FIELDS.has(k)) continue;
      out.str(k);
      walkValue((v as Record<string, unknown>)[k], out, frozen);
    }
    out.tag(T_END);
  }
}

function walkState(sys: System, out: Sink): void {
  const frozen = frozenMaps(sys);
  for (const k of Object.keys(sys)) {
    if (EXCLUDED_SYSTEM_FIELDS.has(k)) continue;
    out.str(k);
    if (k === 'mem') {
      const { version: _v, allocEpoch: _ae, firstFree: _ff, tableLog: _tl, frameLog: _fl, tableLogStart: _ts, frameLogStart: _fs, ...rest } = sys.mem;
      walkValue(rest, out, frozen);
    } else walkValue((sys as unknown as Record<string, unknown>)[k], out, frozen);
  }
}

/** The canonical text of a state, for reading and for tests: what the fingerprint hashes (frozen objects inline). */
export function encodeState(sys: System): string {
  const parts: string[] = [];
  const sink: Sink = { num: (x) => parts.push(`${x},`), str: (s) => parts.push(`${JSON.stringify(s)},`), tag: (t) => parts.push(`#${t},`), frozen: (_, walk) => walk(sink) };
  walkState(sys, sink);
  return parts.join('');
}

/**
 * Three 32-bit lanes of MurmurHash3's mixing over the walk, each from its own seed: 96 bits, so
 * two of a million states collide with probability about 6e-18 (n^2 / 2^97). No string is built
 * and nothing is allocated per value: hashing costs a few multiplications a number.
 */
/** The three lanes each frozen object hashed to on its own. */
const frozenHashes = new WeakMap<object, readonly [number, number, number]>();

class Hash96 implements Sink {
  a = 0x9747b28c;
  b = 0x1b873593;
  c = 0x5bd1e995;

  private word(x: number): void {
    let k = Math.imul(x | 0, 0xcc9e2d51);
    k = Math.imul((k << 15) | (k >>> 17), 0x1b873593);
    this.a = (Math.imul(((this.a ^ k) << 13) | ((this.a ^ k) >>> 19), 5) + 0xe6546b64) | 0;
    this.b = (Math.imul(((this.b ^ k) << 17) | ((this.b ^ k) >>> 15), 9) + 0x2b8b3a9d) | 0;
    this.c = (Math.imul(((this.c ^ k) << 11) | ((this.c ^ k) >>> 21), 7) + 0x632be5ab) | 0;
  }

  num(x: number): void {
    // Addresses of the real geometry pass 2^32: the high and low words both count.
    if (Number.isInteger(x) && x >= -0x80000000 && x <= 0x7fffffff) this.word(x);
    else if (Number.isSafeInteger(x)) {
      this.tag(11);
      this.word(Math.floor(x / 0x100000000));
      this.word(x >>> 0);
    } else this.str(String(x));
  }

  str(s: string): void {
    this.tag(12);
    this.word(s.length);
    for (let i = 0; i < s.length; i++) this.word(s.charCodeAt(i));
  }

  tag(t: number): void {
    this.word(0x7f4a7c15 ^ t);
  }

  frozen(o: object, walk: (out: Sink) => void): void {
    let lanes = frozenHashes.get(o);
    if (!lanes) {
      const h = new Hash96();
      walk(h);
      lanes = [h.a, h.b, h.c];
      frozenHashes.set(o, lanes);
    }
    this.tag(13);
    for (const x of lanes) this.word(x);
  }

  digest(): string {
    const fmix = (h: number) => {
      h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
      h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
      return (h ^ (h >>> 16)) >>> 0;
    };
    return [fmix(this.a), fmix(this.b), fmix(this.c)].map((h) => h.toString(36)).join(':');
  }
}

/** The fingerprint a search keeps per distinct state: 96 bits of hash over the encoding. */
export function fingerprint(sys: System): string {
  const h = new Hash96();
  walkState(sys, h);
  return h.digest();
}
