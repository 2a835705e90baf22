// ISOLATION for page tables: an ASI exposes only data its user asked for. A sensitive object (a
// task's stack or struct, sensitive kmalloc/vmalloc memory, the percpu CSPRNG state) reachable
// through an ASI page table must be one that some live range of that ASI requested at least one
// byte of. Page granularity inside a requested object is inherent; whole other objects are not.

import { LEVEL_NAMES, formatVa } from '../model/geometry.ts';
import { frameAt, framesReached, leaves } from '../model/pagetable.ts';
import { objectKey, objectName, objectSensitive, objectsInFrame } from '../model/memory.ts';
import type { Asi, System } from '../model/system.ts';
import type { Invariant } from './types.ts';
import { usableTlbEntries } from '../model/cpu.ts';
import { _PAGE_GLOBAL } from '../model/pte.ts';
import { isolatedIn } from './cpu.ts';

function requestedObjects(sys: System, asi: Asi): Set<string> {
  const keys = new Set<string>();
  for (const r of asi.ranges) {
    for (const fb of framesReached(sys.g, sys.tables, sys.kernel.pgd, r.ptr, r.ptr + r.size)) {
      for (const o of objectsInFrame(sys.mem, fb.frame, fb.lo, fb.hi)) keys.add(objectKey(o));
    }
  }
  return keys;
}

/** A CPU running isolated also reaches what its TLB caches for its PCID, and every Global entry. */
function tlbExposure(sys: System): string | undefined {
  for (const cpu of sys.cpus) {
    const asi = cpu.dead ? undefined : isolatedIn(sys, cpu);
    if (!asi) continue;
    let requested: Set<string> | undefined;
    for (const { vpn, entry } of usableTlbEntries(cpu)) {
      for (const o of objectsInFrame(sys.mem, entry.frame)) {
        if (!objectSensitive(o)) continue;
        requested ??= requestedObjects(sys, asi);
        if (!requested.has(objectKey(o))) {
          const global = entry.flags & _PAGE_GLOBAL ? 'Global ' : '';
          return `cpu${cpu.id}, isolated in asi#${asi.id}, reaches ${objectName(o)} (pfn ${entry.frame}) at ${formatVa(sys.g, vpn * 4096)} through a ${global}TLB entry, which no range of asi#${asi.id} requested`;
        }
      }
    }
  }
  return undefined;
}

export const ISOLATION: Invariant = {
  id: 'ISOLATION',
  statement: 'No sensitive object is reachable through an ASI page table, or through the TLB of a CPU isolated in it (Global entries included), unless a live range of that ASI asked for part of it.',
  source: 'RFC v2 cover letter (the ASI maps only what VMExit handlers need); patches 08, 12, 15; SPEC 2.4 (TLB)',
  check(sys) {
    for (const asi of sys.asis.values()) {
      let requested: Set<string> | undefined;
      const seen = new Set<number>();
      for (const l of leaves(sys.g, sys.tables, asi.pgd)) {
        for (let va = l.va; va < l.va + l.size; va += 4096) {
          const frame = frameAt(l, va);
          if (seen.has(frame)) continue;
          seen.add(frame);
          for (const o of objectsInFrame(sys.mem, frame)) {
            if (!objectSensitive(o)) continue;
            requested ??= requestedObjects(sys, asi);
            if (!requested.has(objectKey(o))) return `asi#${asi.id} exposes ${objectName(o)} (pfn ${frame}) at ${formatVa(sys.g, va)} through a ${LEVEL_NAMES[l.level]} entry of +0x${l.size.toString(16)}, which no range of it requested`;
          }
        }
      }
    }
    return tlbExposure(sys);
  },
};
