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
//   mem.version          a change counter: the runner compares it within one op only (judged at
//                        the op's start), never its value across ops
//
// Everything else is in, ghost that invariants read across steps included: each range's
// ghostReached and ghostPages, the TLB entries' owners and roots, cpu.flushOwed, the id counters
// (nextAsiId, nextAllocId, kernel.nextId, kvm.nextId: they decide the ids of objects yet to be
// made, and ids are compared across time, e.g. an allocation id in ghostReached). No id is renamed:
// a canonical renaming would have to rename ids inside ghost strings ("frame/alloc/part") and keep
// every id comparison the model and the invariants make, which nothing checks; two states that
// differ only in ids stay two states.

import { createHash } from 'node:crypto';
import type { System } from '../../model/system.ts';

/** Top-level System fields left out of the encoding (see above). */
export const EXCLUDED_SYSTEM_FIELDS: ReadonlySet<string> = new Set(['config', 'options', 'g', 'ghost', 'exec', 'caller']);

function encodeValue(v: unknown, out: string[]): void {
  switch (typeof v) {
    case 'number':
      out.push(String(v), ',');
      return;
    case 'string':
      out.push(JSON.stringify(v), ',');
      return;
    case 'boolean':
      out.push(v ? 't,' : 'f,');
      return;
    case 'undefined':
      out.push('u,');
      return;
    case 'object':
      break;
    default:
      throw new Error(`explore: cannot encode a ${typeof v} in the model state`);
  }
  if (v === null) {
    out.push('n,');
  } else if (Array.isArray(v)) {
    out.push('[');
    for (const x of v) encodeValue(x, out);
    out.push(']');
  } else if (ArrayBuffer.isView(v)) {
    out.push('<', Array.prototype.join.call(v, ','), '>');
  } else if (v instanceof Map) {
    out.push('M{');
    for (const [k, x] of v) {
      encodeValue(k, out);
      encodeValue(x, out);
    }
    out.push('}');
  } else if (v instanceof Set) {
    out.push('S{');
    for (const x of v) encodeValue(x, out);
    out.push('}');
  } else {
    out.push('{');
    for (const k of Object.keys(v)) {
      out.push(k, ':');
      encodeValue((v as Record<string, unknown>)[k], out);
    }
    out.push('}');
  }
}

/** The canonical text of a state: every field but those listed above. */
export function encodeState(sys: System): string {
  const out: string[] = [];
  for (const k of Object.keys(sys)) {
    if (EXCLUDED_SYSTEM_FIELDS.has(k)) continue;
    out.push(k, ':');
    if (k === 'mem') {
      const { version: _version, ...rest } = sys.mem;
      encodeValue(rest, out);
    } else encodeValue((sys as unknown as Record<string, unknown>)[k], out);
  }
  return out.join('');
}

/** Bits of SHA-256 kept per state: two of a million states collide with probability ~1e-17. */
export const FINGERPRINT_BITS = 96;

/** The fingerprint a search keeps per distinct state (base64 of the first FINGERPRINT_BITS of SHA-256). */
export function fingerprint(sys: System): string {
  return createHash('sha256').update(encodeState(sys)).digest('base64').slice(0, FINGERPRINT_BITS / 6);
}
