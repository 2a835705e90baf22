// Invariants of the 2025 design (src/model/asi25): what its code states about curr_asi and CR3,
// and about what the restricted address spaces may map. They judge a system running it only.

import { type Cpu, cr3Pcid, cr3Root, formatCr3, usableTlbEntries } from '../model/x86/cpu.ts';
import { PAGE_SIZE, formatVa } from '../model/mm/geometry.ts';
import { allocationOfFrame } from '../model/mm/memory.ts';
import { framesOf, leaves, walk } from '../model/mm/pagetable.ts';
import { entryFlags, entryFrame, formatFlags, isLarge, isPresent } from '../model/mm/pte.ts';
import { ASI_GLOBAL_NONSENSITIVE, globalNonsensitivePgd, kernelPgdBoundary, physmapLeaf } from '../model/asi25/map.ts';
import { gfpSensitive } from '../model/asi25/alloc.ts';
import { ASI_TAINT_GUEST_CONTROL, ASI_TAINT_GUEST_DATA, ASI_TAINT_KERNEL_DATA, ASI_TAINT_OTHER_MM_CONTROL, ASI_TAINT_OTHER_MM_DATA, ASI_TAINT_USER_CONTROL, ASI_TAINT_USER_DATA, isRestrictedPcid } from '../model/asi25/runtime.ts';
import { pageblockNrPages } from '../model/asi25/pageblock.ts';
import { directMapVa } from '../model/mm/kernel.ts';
import type { System } from '../model/system.ts';
import { type Invariant, ghostEvent } from './types.ts';
import { sinceVersion } from './views.ts';
import { leafUnrefined } from './refine.ts';

export const CURR_ASI: Invariant = {
  id: 'CURR-ASI',
  statement:
    "On every CPU, curr_asi names the domain whose page table CR3 holds, and is NULL exactly when CR3 holds the unrestricted one, except inside the two windows the code documents: __asi_enter between its curr_asi write and its CR3 write, asi_exit between its CR3 write and its curr_asi write.",
  source: 'the 2025 series, [PATCH RFC v2 03/29] (__asi_enter: "Must update curr_asi before writing CR3"; asi_exit: "Must not update curr_asi until after CR3 write")',
  design: 'asi-2025',
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

/** The CPUs whose task is in its critical section (tense, not in an interrupt of it), outside asi_enter's own steps. */
function criticalSections(sys: System): { readonly cpu: Cpu; readonly task: number; readonly target: string }[] {
  const a = sys.asi25!;
  const out: { cpu: Cpu; task: number; target: string }[] = [];
  for (const cpu of sys.cpus) {
    const task = sys.kernel.current[cpu.id];
    const s = a.tasks.get(task);
    if (!cpu.dead && s?.target && s.intrNestDepth === 0 && a.enterWindow[cpu.id] === 0) out.push({ cpu, task, target: s.target });
  }
  return out;
}

export const ASI_CRITICAL: Invariant = {
  id: 'ASI-CRITICAL',
  statement:
    "A task in its critical section (asi_state.target set, intr_nest_depth 0) runs on its target: curr_asi and CR3 are the target's, except in asi_enter's own steps from asi_set_target() to its CR3 write. An interrupt of the critical section re-enters the target before it returns.",
  source:
    'the 2025 series, [PATCH RFC v2 03/29] (asi.h: "ASI will re-enter the restricted address space before returning from the outermost exception/interrupt"), [PATCH RFC v2 05/29] (asi_intr_exit)',
  design: 'asi-2025',
  check: (sys) => {
    const a = sys.asi25!;
    for (const { cpu, task, target } of criticalSections(sys)) {
      if (a.cr3Window[cpu.id] !== null) continue;
      if (a.currAsi[cpu.id] !== target || cr3Root(cpu.cr3) !== a.domains.get(target)?.pgd) return `cpu${cpu.id}: task ${task} is in its critical section on ${target}, but curr_asi is ${a.currAsi[cpu.id] ?? 'NULL'} and CR3 holds ${formatCr3(sys, cpu.cr3)}`;
    }
    return undefined;
  },
};

/**
 * The taints (patch 03's names) of what ran on the CPU since its last flush of each kind, seen from
 * the CPU's current mm `mm`: the kernel unrestricted is KERNEL_DATA; user space and guests are
 * USER_* and GUEST_* of that mm, OTHER_MM_* of another (asi_handle_switch_mm's view).
 */
function ghostTaints(exposed: { readonly data: readonly string[]; readonly control: readonly string[] }, mm: number): number {
  const of = (what: string, own: readonly [number, number], other: number) => {
    if (what === 'kernel') return ASI_TAINT_KERNEL_DATA;
    const [kind, m] = what.split(':');
    return Number(m) === mm ? own[kind === 'user' ? 0 : 1] : other;
  };
  let t = 0;
  for (const w of exposed.data) t |= of(w, [ASI_TAINT_USER_DATA, ASI_TAINT_GUEST_DATA], ASI_TAINT_OTHER_MM_DATA);
  for (const w of exposed.control) t |= of(w, [ASI_TAINT_USER_CONTROL, ASI_TAINT_GUEST_CONTROL], ASI_TAINT_OTHER_MM_CONTROL);
  return t;
}

export const ASI_TAINT: Invariant = {
  id: 'ASI-TAINT',
  statement:
    "A task's critical section runs with none of the taints its domain's class must have flushed first, judged by what ran on the CPU since its last flush of each kind (the kernel unrestricted, user space or a guest of the current mm or another), not by asi_taints: no taint its policy's prevent_control or protect_data names, but those its policy sets itself (the posted flushes are stand-ins; a flush the code runs clears what ran before it).",
  source:
    'the 2025 series, [PATCH RFC v2 03/29] (struct asi_taint_policy: "Taints that need a flush when entering the domain"; maybe_flush_control, maybe_flush_data in __asi_enter), patches 21 and 25 (the KVM and userspace policies)',
  design: 'asi-2025',
  check: (sys) => {
    const a = sys.asi25!;
    for (const { cpu, task, target } of criticalSections(sys)) {
      const policy = a.policies[a.domains.get(target)?.classId ?? -1];
      if (a.currAsi[cpu.id] !== target || !policy) continue;
      // What the class sets itself on entry is its own, not left over from before.
      const left = ghostTaints(a.exposed[cpu.id], a.tasks.get(task)?.mm ?? 0) & (policy.preventControl | policy.protectData) & ~policy.set;
      if (left) return `cpu${cpu.id}: task ${task}'s critical section runs on ${target} with taints 0x${left.toString(16)} its class must flush first (since the last flushes ${[...a.exposed[cpu.id].data.map((w) => `${w} data`), ...a.exposed[cpu.id].control.map((w) => `${w} control`)].join(', ')} ran there)`;
    }
    return undefined;
  },
};

/** Why a frame a restricted address space reaches holds sensitive data, if it does. */
function sensitiveData(sys: System, frame: number): string | undefined {
  const stale = sys.asi25!.staleData.get(frame);
  if (stale !== undefined) return `${allocationOfFrame(sys.mem, frame)?.name ?? 'free'}, which still holds the data of ${stale}`;
  const owner = allocationOfFrame(sys.mem, frame);
  return owner && gfpSensitive(owner) ? `${owner.name}, allocated __GFP_SENSITIVE` : undefined;
}

/** The global nonsensitive page table (every domain's kernel half): it changes only with Memory.version. */
function sensitiveMapped(sys: System): string | undefined {
  for (const { frame, va } of framesOf(sys.g, sys.tables, globalNonsensitivePgd(sys))) {
    const why = sensitiveData(sys, frame);
    if (why) return `the global nonsensitive pgd maps ${formatVa(sys.g, va)} (pfn ${frame}) of ${why}`;
  }
  return undefined;
}

/**
 * The TLB entries a CPU on a restricted address space can use. Those of a PCID it is not on need a
 * CR3 write to be used, and every one the series makes flushes ("we currently never set the
 * noflush bit in CR3 for ASI transitions", patch 20).
 */
function sensitiveCached(sys: System): string | undefined {
  for (const cpu of sys.cpus) {
    if (cpu.dead || !isRestrictedPcid(cr3Pcid(cpu.cr3))) continue;
    for (const { vpn, entry } of usableTlbEntries(cpu)) {
      const why = sensitiveData(sys, entry.frame);
      if (why) return `cpu${cpu.id}, restricted (PCID ${cr3Pcid(cpu.cr3)}), can use its TLB entry for ${formatVa(sys.g, vpn * PAGE_SIZE)} (pfn ${entry.frame}) of ${why}`;
    }
  }
  return undefined;
}

export const ASI_NONSENSITIVE: Invariant = {
  id: 'ASI-NONSENSITIVE',
  statement:
    'Every page a restricted address space reaches, through the global nonsensitive page table or a TLB entry a CPU running restricted can use, holds nonsensitive data only: it belongs to no __GFP_SENSITIVE allocation, and no sensitive data an earlier owner left in it remains (memory that becomes nonsensitive is zeroed first).',
  source: 'the 2025 series, [PATCH RFC v2 14/29] (__alloc_pages_noprof: "Clear out old (maybe sensitive) data before reallocating as nonsensitive"); issue 22',
  design: 'asi-2025',
  check: (sys) => sensitiveMapped(sys) ?? sensitiveCached(sys),
  incremental: () => {
    const tables = sinceVersion(sensitiveMapped);
    return (sys) => tables(sys) ?? sensitiveCached(sys);
  },
};

function unrefinedGlobal(sys: System): string | undefined {
  for (const l of leaves(sys.g, sys.tables, globalNonsensitivePgd(sys))) {
    const m = leafUnrefined(sys, 'the global nonsensitive pgd', l);
    if (m !== undefined) return m;
  }
  return undefined;
}

export const ASI_REFINE: Invariant = {
  id: 'ASI-REFINE',
  statement:
    "Every translation of the global nonsensitive page table, which every domain's kernel half is, is the unrestricted one at that address: the same frame, no wider permissions.",
  source:
    'the 2025 series, [PATCH RFC v2 11/29] (asi_map: "The mapping will be identical to the one for the same virtual address in the unrestricted page tables. This is necessary to allow switching between the page tables at any arbitrary point in the kernel.")',
  design: 'asi-2025',
  check: unrefinedGlobal,
  incremental: () => sinceVersion(unrefinedGlobal),
};

function formatEntry(e: number): string {
  return e === 0 ? 'none' : `pfn ${entryFrame(e)} ${formatFlags(entryFlags(e))}`;
}

function unsharedPgd(sys: System): string | undefined {
  const global = sys.tables.get(globalNonsensitivePgd(sys))!;
  for (const [key, d] of sys.asi25!.domains) {
    if (key === ASI_GLOBAL_NONSENSITIVE || d.pgd === null) continue;
    const own = sys.tables.get(d.pgd)!;
    for (let i = kernelPgdBoundary(sys); i < global.length; i++) {
      if (own[i] !== global[i]) return `${key}'s pgd entry ${i} is ${formatEntry(own[i])}, the global nonsensitive pgd's ${formatEntry(global[i])}: what was mapped there since asi_init does not reach the domain`;
    }
  }
  return undefined;
}

export const ASI_PGD_SHARED: Invariant = {
  id: 'ASI-PGD-SHARED',
  statement: "Every domain's kernel-half pgd entries are the global nonsensitive pgd's: what is mapped nonsensitive after a domain was made reaches it too.",
  source:
    'the 2025 series, [PATCH RFC v2 12/29] (asi_global_init: "To avoid needing to synchronize new mappings into pre-existing domains we just pre-allocate all of the relevant level N-1 entries"; asi_init copies them)',
  design: 'asi-2025',
  check: unsharedPgd,
  incremental: () => sinceVersion(unsharedPgd),
};

/**
 * Every page of the restricted physmap against its pageblock's PB bit: a 2M leaf answers for its
 * whole pageblock, a leaf a set_memory_*() mirror split answers page by page. A page of a
 * nonsensitive pageblock may be absent where the unrestricted direct map has it absent too
 * (set_direct_map_invalid_noflush). The physmap changes only with Memory.version.
 */
function pageblockMismatch(sys: System): string | undefined {
  const nr = pageblockNrPages(sys);
  const bits = sys.asi25!.pbNonsensitive;
  for (let b = 0; b < bits.length; b++) {
    const { table, index } = physmapLeaf(sys, directMapVa(sys, b * nr));
    const e = sys.tables.get(table)![index];
    const present = isLarge(e) ? [isPresent(e)] : [...sys.tables.get(entryFrame(e))!].map(isPresent);
    const nonsensitive = bits[b] === 1;
    const wrong = present.findIndex((p, i) => p !== nonsensitive && (p || walk(sys.g, sys.tables, sys.kernel.pgd, directMapVa(sys, b * nr + i)).ok));
    if (wrong >= 0) return `pageblock ${b} (pfn ${b * nr}-${(b + 1) * nr - 1}) is ${nonsensitive ? 'nonsensitive' : 'sensitive'} (PB_nonsensitive ${bits[b]}) but pfn ${b * nr + wrong} is ${present[wrong] ? 'mapped in' : 'absent from'} the restricted direct map${present[wrong] ? '' : ', present in the unrestricted one'}`;
  }
  return undefined;
}

export const ASI_PAGEBLOCK: Invariant = {
  id: 'ASI-PAGEBLOCK',
  statement:
    'A page is mapped in the restricted direct map if and only if its pageblock is nonsensitive (PB_nonsensitive set) and the unrestricted direct map maps it: the allocator reads sensitivity from the pageblock, without walking page tables.',
  source:
    'the September 2025 series, [PATCH 12/21] ("a pageblock flag that can be used to check a page\'s sensitivity without needing to walk pagetables"; PB_nonsensitive: "Block is mapped into restricted address spaces") and [PATCH 19/21] (page_asi_mapping_bad)',
  design: 'asi-2025',
  appliesTo: (sys) => sys.options.pageblockDirectMap,
  check: pageblockMismatch,
  incremental: () => sinceVersion(pageblockMismatch),
};

export const ASI_KVM: Invariant = {
  id: 'ASI-KVM',
  statement:
    "KVM enters a guest on its VM's domain (curr_asi is kvm->arch.asi and CR3 its restricted one), VM-exit loads the CR3 curr_asi names, and KVM_RUN returns to user space on the unrestricted address space.",
  source:
    'the 2025 series, [PATCH RFC v2 21/29] (vmx_vcpu_enter_exit: asi_enter, then HOST_CR3, which "must be done after asi_enter(), as it changes CR3"; kvm_arch_vcpu_ioctl_run: "ASI doesn\'t have the capability to transition directly from the restricted address space to the user address space")',
  design: 'asi-2025',
  check: (sys) => ghostEvent(sys, 'ASI-KVM'),
};

export const ASI_DOMAIN_LIVE: Invariant = {
  id: 'ASI-DOMAIN-LIVE',
  statement:
    "A domain is destroyed only after every CPU left it and no task targets it: every CPU's curr_asi and every task's asi_state.target name a domain whose reference count is above zero.",
  source: 'the 2025 series, [PATCH RFC v2 03/29] (asi.h: "you must call asi_destroy() AFTER you are certain all CPUs have exited the restricted address space")',
  design: 'asi-2025',
  check: (sys) => {
    const a = sys.asi25!;
    const dead = (key: string | null) => key !== null && key !== ASI_GLOBAL_NONSENSITIVE && !((a.domains.get(key)?.refCount ?? 0) > 0);
    for (const cpu of sys.cpus) if (!cpu.dead && dead(a.currAsi[cpu.id])) return `cpu${cpu.id}'s curr_asi is ${a.currAsi[cpu.id]}, destroyed (its pgd freed)`;
    for (const [task, s] of a.tasks) if (dead(s.target)) return `task ${task}'s asi_state.target is ${s.target}, destroyed`;
    return undefined;
  },
};
