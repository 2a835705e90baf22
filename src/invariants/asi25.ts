// Invariants of the 2025 design (src/model/asi25): what its code states about curr_asi and CR3,
// and about what the restricted address space may map. They apply to a system running it only.

import { cr3Root, formatCr3 } from '../model/x86/cpu.ts';
import { formatVa } from '../model/mm/geometry.ts';
import { allocationOfFrame } from '../model/mm/memory.ts';
import { framesOf } from '../model/mm/pagetable.ts';
import { ASI_GLOBAL_NONSENSITIVE } from '../model/asi25/map.ts';
import { gfpSensitive } from '../model/asi25/alloc.ts';
import type { System } from '../model/system.ts';
import type { Invariant } from './types.ts';

function runsAsi25(sys: System): boolean {
  return sys.asi25 !== undefined;
}

export const CURR_ASI: Invariant = {
  id: 'CURR-ASI',
  statement:
    "On every CPU, curr_asi names the domain whose page table CR3 holds, and is NULL exactly when CR3 holds the unrestricted one, except inside the two windows the code documents: __asi_enter between its curr_asi write and its CR3 write, asi_exit between its CR3 write and its curr_asi write.",
  source: 'the 2025 series, [PATCH RFC v2 03/29] (__asi_enter: "Must update curr_asi before writing CR3"; asi_exit: "Must not update curr_asi until after CR3 write")',
  appliesTo: runsAsi25,
  check: (sys) => {
    const a = sys.asi25!;
    for (const cpu of sys.cpus) {
      if (cpu.dead || a.cr3Window[cpu.id] !== null) continue;
      const curr = a.currAsi[cpu.id];
      const root = cr3Root(cpu.cr3);
      const expected = curr === null ? sys.kernel.pgd : a.domains.get(curr)?.pgd;
      if (root !== expected) return `cpu${cpu.id}: curr_asi is ${curr ?? 'NULL'} but CR3 holds ${formatCr3(sys, cpu.cr3)}`;
    }
    return undefined;
  },
};

export const ASI_NONSENSITIVE: Invariant = {
  id: 'ASI-NONSENSITIVE',
  statement:
    'Every page the global nonsensitive page table maps holds nonsensitive data only: it belongs to no __GFP_SENSITIVE allocation, and no sensitive data an earlier owner left in it remains (memory that becomes nonsensitive is zeroed first).',
  source: 'the 2025 series, [PATCH RFC v2 14/29] (__alloc_pages_noprof: "Clear out old (maybe sensitive) data before reallocating as nonsensitive"); issue 22',
  appliesTo: runsAsi25,
  check: (sys) => {
    const a = sys.asi25!;
    for (const { frame, va } of framesOf(sys.g, sys.tables, a.domains.get(ASI_GLOBAL_NONSENSITIVE)!.pgd!)) {
      const stale = a.staleData.get(frame);
      if (stale !== undefined) return `the global nonsensitive pgd maps ${formatVa(sys.g, va)} (pfn ${frame}, ${allocationOfFrame(sys.mem, frame)?.name ?? 'free'}), which still holds the data of ${stale}`;
      const owner = allocationOfFrame(sys.mem, frame);
      if (owner && gfpSensitive(owner)) return `the global nonsensitive pgd maps ${formatVa(sys.g, va)} (pfn ${frame}) of ${owner.name}, allocated __GFP_SENSITIVE`;
    }
    return undefined;
  },
};

export const ASI_DOMAIN_LIVE: Invariant = {
  id: 'ASI-DOMAIN-LIVE',
  statement:
    "A domain is destroyed only after every CPU left it and no task targets it: every CPU's curr_asi and every task's asi_state.target name a domain whose reference count is above zero.",
  source: 'the 2025 series, [PATCH RFC v2 03/29] (asi.h: "you must call asi_destroy() AFTER you are certain all CPUs have exited the restricted address space")',
  appliesTo: runsAsi25,
  check: (sys) => {
    const a = sys.asi25!;
    const dead = (key: string | null) => key !== null && key !== ASI_GLOBAL_NONSENSITIVE && !((a.domains.get(key)?.refCount ?? 0) > 0);
    for (const cpu of sys.cpus) if (!cpu.dead && dead(a.currAsi[cpu.id])) return `cpu${cpu.id}'s curr_asi is ${a.currAsi[cpu.id]}, destroyed (its pgd freed)`;
    for (const [task, s] of a.tasks) if (dead(s.target)) return `task ${task}'s asi_state.target is ${s.target}, destroyed`;
    return undefined;
  },
};
