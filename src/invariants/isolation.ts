// ISOLATION: an ASI exposes only what its callers asked for. What a range asked for is ghost state
// recorded when it was mapped: the objects (allocation and part, frame by frame) that its bytes
// reached through the kernel page table then. A sensitive object reachable through an ASI page
// table, or through the TLB of a CPU running isolated in it, must be one some live range of that
// ASI reached, on that frame, when it was mapped.
//
// Inherent, and allowed: the rest of a page whose bytes a range reached, when it belongs to the
// same object (page granularity inside a requested object). Not allowed: another object on that
// page (a percpu neighbour), other pages the mapping rounds out to, memory allocated later on a
// frame the range reached while it was free or owned by someone else, and what the kernel maps
// later under a table the ASI shares with it.

import { LEVEL_NAMES, PAGE_SIZE, formatVa } from '../model/mm/geometry.ts';
import { type Leaf, firstPageOf, framesOf } from '../model/mm/pagetable.ts';
import { type ObjectRef, frameHoldsSensitive, objectName, objectSensitive, objectsInFrame, unitAlloc, unitFrame, unitKey } from '../model/mm/memory.ts';
import type { Asi, AsiRange, System } from '../model/system.ts';
import type { Cpu } from '../model/x86/cpu.ts';
import type { Invariant, Phase } from './types.ts';
import { usableTlbEntries } from '../model/x86/cpu.ts';
import { _PAGE_GLOBAL } from '../model/mm/pte.ts';
import { isolatedIn } from './cpu.ts';
import { LeafVerdicts, type Window, firstAsi, keyCounts, rangeChanges, sinceVersion, windowsReaching } from './views.ts';

/** The units every live range of the ASI reached when it was mapped. */
function requestedUnits(asi: Asi): Set<string> {
  const units = new Set<string>();
  for (const r of asi.ranges) for (const u of r.ghostReached) units.add(u);
  return units;
}

/** Whether a live range reached a unit: the set of them, or (incremental) a count per unit kept as ranges come and go. */
interface Requested {
  has(unit: string): boolean;
}

/** The first sensitive object on `frame` that no range reached there when it was mapped. */
function unrequested(sys: System, frame: number, requested: Requested): ObjectRef | undefined {
  return objectsInFrame(sys.mem, frame).find((o) => objectSensitive(o) && !requested.has(unitKey(frame, o)));
}

/**
 * Why the object was not requested, when the ghost shows a range reached the frame: the frame's
 * allocation was freed and the frame reused, or (a slab or percpu page) the object was put on the
 * page since, or it was there already, beside the bytes the range reached.
 */
function reuseNote(o: ObjectRef, frame: number, asi: Asi): string {
  const prefix = `${frame}/`;
  for (const r of asi.ranges) {
    const then = r.ghostReached.find((u) => u.startsWith(prefix));
    if (then === undefined) continue;
    const since =
      unitAlloc(then) !== o.alloc.id ? 'it was freed and reused since' : o.part && o.part.id >= r.ghostStamp ? 'a new object was allocated on it since' : 'that object was already on it, beside the bytes the range reached';
    return ` (pfn ${frame} held allocation #${unitAlloc(then)} when the range was mapped; ${since})`;
  }
  return '';
}

/**
 * A CPU runs isolated code: its session is ACTIVE on the ASI its CR3 holds and, inside an op,
 * neither the asi_enter barrier window (retry_abort) nor a handler's entry or exit is in progress;
 * those are the ASI's own transitions, which run no caller code.
 */
export function runsIsolated(sys: System, cpu: Cpu, phase: Phase): Asi | undefined {
  if (cpu.dead) return undefined;
  const asi = isolatedIn(sys, cpu);
  if (!asi || (phase === 'micro-step' && (cpu.session.retryAbort || cpu.handlers.length > 0))) return undefined;
  return asi;
}

/** The first sensitive object the ASI's page table reaches that no range of it reached when it was mapped. */
function exposedBy(sys: System, asi: Asi): string | undefined {
  let requested: Set<string> | undefined;
  for (const { frame, va, leaf } of framesOf(sys.g, sys.tables, asi.pgd)) {
    const m = frameExposed(sys, asi, frame, va, leaf, () => (requested ??= requestedUnits(asi)));
    if (m !== undefined) return m;
  }
  return undefined;
}

/** What `frame`, reached at `va` through leaf `l`, exposes that no range of the ASI reached there. */
function frameExposed(sys: System, asi: Asi, frame: number, va: number, l: Leaf, requestedOf: () => Requested): string | undefined {
  if (!frameHoldsSensitive(sys.mem, frame)) return undefined;
  const o = unrequested(sys, frame, requestedOf());
  return o && `asi#${asi.id} exposes ${objectName(o)} (pfn ${frame}) at ${formatVa(sys.g, va)} through a ${LEVEL_NAMES[l.level]} entry of +0x${l.size.toString(16)}, which no range of it reached when it was mapped${reuseNote(o, frame, asi)}`;
}

/** A CPU running isolated also reaches what its TLB caches for its PCID, and every Global entry. */
function tlbExposure(sys: System, phase: Phase, requestedOf: (asi: Asi) => Requested = requestedUnits): string | undefined {
  for (const cpu of sys.cpus) {
    const asi = runsIsolated(sys, cpu, phase);
    if (!asi) continue;
    let requested: Requested | undefined;
    for (const { vpn, entry } of usableTlbEntries(cpu)) {
      if (!frameHoldsSensitive(sys.mem, entry.frame)) continue;
      requested ??= requestedOf(asi);
      const o = unrequested(sys, entry.frame, requested);
      if (o) {
        const global = entry.flags & _PAGE_GLOBAL ? 'Global ' : '';
        return `cpu${cpu.id}, isolated in asi#${asi.id}, reaches ${objectName(o)} (pfn ${entry.frame}) at ${formatVa(sys.g, vpn * PAGE_SIZE)} through a ${global}TLB entry, which no range of asi#${asi.id} reached when it was mapped${reuseNote(o, entry.frame, asi)}`;
      }
    }
  }
  return undefined;
}

export const ISOLATION: Invariant = {
  id: 'ISOLATION',
  statement:
    'No sensitive object is reachable through an ASI page table, or through the TLB of a CPU running isolated in it (Global entries included), unless a live range of that ASI reached that object on that frame when the range was mapped.',
  source: 'RFC v2 cover letter (the ASI maps only what VMExit handlers need); patches 08, 12, 15; SPEC 2.4 (TLB)',
  design: 'asi-2019',
  check: (sys, phase = 'between-ops') => firstAsi(sys, exposedBy) ?? tlbExposure(sys, phase),
  // What a leaf exposes changes only with the leaf, the owners of the frames it reaches, and the
  // units the ASI's ranges reached: only the leaves a step moved, whose frames changed owner, or
  // that reach a frame of a range it added or removed, are judged again. The TLBs change at
  // every micro-step and are judged whole.
  incremental: (views) => {
    // The ASI's units, asked for whenever a leaf or a TLB entry reaches a sensitive frame: counted
    // per unit, and brought up to date with the ranges added and removed since.
    const requestedOf: (asi: Asi) => Requested = keyCounts((r) => r.ghostReached);
    const kept = new Map<number, { ranges: readonly AsiRange[]; stamp: number; verdicts: LeafVerdicts }>();
    const exposed = (sys: System, asi: Asi) => {
      const c = kept.get(asi.id);
      const changes = c && views.changesSince(sys, asi.pgd, c.stamp);
      const ranges = c && rangeChanges(c.ranges, asi.ranges);
      const t = views.tree(sys, asi.pgd);
      let dirty: Window[] | undefined;
      if (changes && ranges) {
        const frames = [...changes.frames];
        for (const r of [...ranges.added, ...ranges.removed]) for (const u of r.ghostReached) frames.push(unitFrame(u));
        dirty = [...changes.windows, ...windowsReaching(t.leaves, frames)];
      }
      const verdicts = c?.verdicts ?? new LeafVerdicts();
      kept.set(asi.id, { ranges: asi.ranges, stamp: t.stamp, verdicts });
      const requested = () => requestedOf(asi);
      // A frame several leaves reach is judged in each: the first failing leaf is where the whole-state walk meets it first.
      return verdicts.judge(t.leaves, dirty, (l) => firstPageOf(l, (frame, va) => frameExposed(sys, asi, frame, va, l, requested)));
    };
    const tables = sinceVersion((sys) => firstAsi(sys, exposed));
    return (sys, phase) => tables(sys) ?? tlbExposure(sys, phase, requestedOf);
  },
};

