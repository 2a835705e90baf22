// The invariant catalogue, in the order violations are reported: structural first, then tracking,
// then what the page tables expose. Ids are published (saved counterexamples name them): keep them.

import type { System } from '../model/system.ts';
import { PT_OWN, PT_WF } from './pagetables.ts';
import { RANGE_EXACT, RANGE_NO_LEAK, RANGE_NO_OVERLAP, RANGE_OVERLAP_ACCOUNTED } from './ranges.ts';
import { REFINE } from './refine.ts';
import { ISOLATION } from './isolation.ts';
import { TLB_COHERENT } from './tlb.ts';
import { CALLER_CONTRACT } from './caller.ts';
import { CR3_RESTORED, ENTRY_MAPPED, KERNEL_RULES, NO_UAF, PROGRESS, SESSION, STACK } from './cpu.ts';
import { KVM_ENTRY, KVM_EXIT_CR3, KVM_SCOPE, KVM_USER } from './kvm.ts';
import { ASI_CRITICAL, ASI_DOMAIN_LIVE, ASI_KVM, ASI_NONSENSITIVE, ASI_PAGEBLOCK, ASI_PGD_SHARED, ASI_REFINE, ASI_TAINT, CURR_ASI } from './asi25.ts';
import { type Invariant, type Phase, type Violation, ghostEvent, judges } from './types.ts';
import { Views } from './views.ts';

export type { Invariant, Phase, Violation } from './types.ts';

export const NO_WARN: Invariant = {
  id: 'NO-WARN',
  statement: "No WARN_ON of the modelled code fires: the author's own assertions hold.",
  source: 'RFC v2 patch 14 (WARN_ON in asi_unmap_overlap)',
  check: (sys) => ghostEvent(sys, 'NO-WARN'),
};

/** Crashes and hangs first (the CPU stops), then what runs on the wrong CR3, then the rules broken on the way. */
export const INVARIANTS: readonly Invariant[] = [
  PT_WF,
  PT_OWN,
  ENTRY_MAPPED,
  PROGRESS,
  CR3_RESTORED,
  SESSION,
  STACK,
  RANGE_NO_OVERLAP,
  RANGE_OVERLAP_ACCOUNTED,
  RANGE_NO_LEAK,
  RANGE_EXACT,
  CALLER_CONTRACT,
  REFINE,
  ISOLATION,
  TLB_COHERENT,
  KERNEL_RULES,
  NO_WARN,
  NO_UAF,
  KVM_ENTRY,
  KVM_EXIT_CR3,
  KVM_SCOPE,
  KVM_USER,
  CURR_ASI,
  ASI_CRITICAL,
  ASI_TAINT,
  ASI_NONSENSITIVE,
  ASI_REFINE,
  ASI_PGD_SHARED,
  ASI_PAGEBLOCK,
  ASI_KVM,
  ASI_DOMAIN_LIVE,
];

/** The catalogue of the foundation (page tables and ranges), in the same order: what F1-F9 were checked against. */
export const FOUNDATION_INVARIANTS: readonly Invariant[] = INVARIANTS.filter((i) => ![ENTRY_MAPPED, PROGRESS, CR3_RESTORED, SESSION, STACK, TLB_COHERENT, CALLER_CONTRACT, KERNEL_RULES, NO_UAF, KVM_ENTRY, KVM_EXIT_CR3, KVM_SCOPE, KVM_USER, CURR_ASI, ASI_CRITICAL, ASI_TAINT, ASI_NONSENSITIVE, ASI_REFINE, ASI_PGD_SHARED, ASI_PAGEBLOCK, ASI_KVM, ASI_DOMAIN_LIVE].includes(i));

export function invariantById(id: string): Invariant | undefined {
  return INVARIANTS.find((i) => i.id === id);
}

/** Every invariant that applies to this system (and to this phase) and does not hold, in catalogue order, each judged on the whole state. */
export function checkAll(sys: System, only?: readonly Invariant[], phase: Phase = 'between-ops'): Violation[] {
  const out: Violation[] = [];
  for (const inv of only ?? INVARIANTS) {
    if (!judges(inv, sys)) continue;
    const message = inv.check(sys, phase);
    if (message !== undefined) out.push({ invariant: inv.id, message });
  }
  return out;
}

/**
 * How a run judges its states: `full` judges every invariant on the whole state at every check;
 * `incremental` gives the same verdicts from indexes kept across the run's checks, paying for what
 * each step changed.
 */
export type CheckMode = 'full' | 'incremental';
export const CHECK_MODES: readonly CheckMode[] = ['full', 'incremental'];

export type Checker = (sys: System, phase: Phase) => Violation[];

/**
 * A checker for one run (one system, checked in order): incremental judges keep state between
 * calls, in `views` (a test hands in a broken one to see the equivalence test fail).
 */
export function newChecker(mode: CheckMode, only?: readonly Invariant[], views = new Views()): Checker {
  const invariants = only ?? INVARIANTS;
  if (mode === 'full') return (sys, phase) => checkAll(sys, invariants, phase);
  const judgeOf = invariants.map((inv) => inv.incremental?.(views) ?? inv.check);
  return (sys, phase) => {
    views.update(sys);
    const out: Violation[] = [];
    for (let i = 0; i < invariants.length; i++) {
      const inv = invariants[i];
      if (!judges(inv, sys)) continue;
      const message = judgeOf[i](sys, phase);
      if (message !== undefined) out.push({ invariant: inv.id, message });
    }
    return out;
  };
}
