// Mutants: small, deliberate mistakes an implementation of the `fixed` design (or of `asi25-fixed`)
// could make. Each is injected at one line of the model (grep for its name) and must be killed by
// some invariant.

import type { DesignOptions, ProfileName } from './options.ts';

export const MUTANTS = {
  'unmap-first-page-only': {
    where: 'asi_unmap (refcount path): only the first page of a range is released',
    expect: 'RANGE-OVERLAP-ACCOUNTED',
  },
  'refcount-not-taken': {
    where: 'asi_map_range: an entry that is already set with the same value is not counted again',
    expect: 'RANGE-OVERLAP-ACCOUNTED',
  },
  'offset-not-validated': {
    where: 'asi_pXX_offset (patch 05): asi_valid_offset() is skipped, so the ASI walks into kernel tables',
    expect: 'PT-OWN',
    // Only an ASI that shares kernel tables meets one on its walk.
    options: { privateLowerTables: false },
  },
  'fini-backend-skipped': {
    where: 'asi_destroy (patch 04): asi_fini_backend() is not called, backend pages stay allocated',
    expect: 'RANGE-NO-LEAK',
  },
  'fini-frees-kernel-tables': {
    where: 'asi_fini_backend: frees every table reachable from the ASI pgd, kernel tables included',
    expect: 'PT-WF',
    // Only an ASI that shares kernel tables reaches one from its pgd.
    options: { privateLowerTables: false },
  },
  'split-maps-whole-large-page': {
    where: 'split of a kernel large page: all its 4K entries are filled, not only the requested ones',
    expect: 'RANGE-NO-LEAK',
  },
  'pte-copy-stops-early': {
    where: 'asi_copy_pte_range (patch 08): the loop stops one page before end',
    expect: 'RANGE-EXACT',
  },
  'copy-drops-nx': {
    where: 'asi_set_pte: the copied entry loses _PAGE_NX',
    expect: 'REFINE',
  },
  'vfree-skips-asi-unmap': {
    where: 'kernel free path: vfree does not unmap the area from the ASIs tracking it',
    expect: 'REFINE',
  },
  'rollback-forgets-tables': {
    where: 'asi_map_range error path: the entries set so far are not released',
    expect: 'RANGE-NO-LEAK',
  },
  'overlap-check-skipped': {
    where: 'asi_map_range with overlapPolicy=refuse: the overlap test is skipped',
    expect: 'RANGE-NO-OVERLAP',
    options: { overlapPolicy: 'refuse' },
  },
  'refcount-off-by-one': {
    where: 'asi_unmap (refcount path): an entry is cleared when its count drops to 1, not 0',
    expect: 'RANGE-OVERLAP-ACCOUNTED',
  },
  // CPUs, sessions and entry code (issue 4).
  'original-cr3-saved-late': {
    where: 'asi_enter: original_cr3 is read with __get_current_cr3_fast() after the session is ACTIVE, so it is the isolation CR3',
    expect: 'CR3-RESTORED',
  },
  'stack-mapped-after-cr3': {
    where: 'asi_enter: the current stack is mapped after load_cr3(), not before',
    expect: 'STACK',
  },
  'barrier-not-set': {
    where: 'asi_enter: asi_barrier_begin() is left out, so an abort before load_cr3() is undone by it',
    // Judged at micro-steps: the CPU runs isolated on what the aborting handler left in its TLB.
    expect: 'ISOLATION',
  },
  'nmi-skips-abort': {
    where: 'paranoid_entry: ASI_START_ABORT_ELSE_JUMP always jumps, so an NMI handler runs on the ASI page table',
    // The first symptom: ASI_FINISH_ABORT finds the session ACTIVE, not ABORTED.
    expect: 'NO-WARN',
  },
  'finish-abort-skips-exit': {
    where: 'asi_finish_abort: abort_depth reaching 0 does not call asi_exit(), the session stays ABORTED',
    expect: 'SESSION',
  },
  'exit-keeps-stack': {
    where: 'asi_exit: current->stack is not unmapped',
    expect: 'STACK',
  },
  'switch-does-not-abort': {
    where: 'prepare_task_switch: asi_abort() is left out, the next task runs in the previous task\'s session',
    // Judged at micro-steps: the next task runs isolated on a stack the ASI does not map.
    expect: 'STACK',
  },
  'global-flush-too-early': {
    where: 'asi_enter: the Global TLB flush comes before the session is ACTIVE, so an interrupt can refill it before load_cr3()',
    expect: 'ISOLATION',
  },
  'fault-always-handled': {
    where: 'asi_fault: reports every kernel fault handled, isolation or not',
    expect: 'PROGRESS',
  },
  'resume-reloads-before-idepth-dec': {
    where: 'v3 ASI_RESUME: the isolation CR3 is reloaded before idepth drops to 0, so an interrupt in between leaves the session ACTIVE on the kernel CR3',
    expect: 'SESSION',
    options: { interruptResumes: true },
  },
  'shootdown-skips-last-page': {
    where: 'flush_tlb_kernel_range after vfree/vunmap: the IPI handler invalidates every page of the area but the last',
    expect: 'TLB-COHERENT',
  },
  'unmap-ignores-caller': {
    where: "asi_unmap (unmapMatchesCaller): the caller is not compared, so one caller's unmap removes another's range",
    expect: 'CALLER-CONTRACT',
  },
  'init-skips-session': {
    where: 'asi_init_mapping: cpu_asi_session is not mapped',
    expect: 'ENTRY-MAPPED',
  },
  // KVM (issue 12).
  'kvm-uninit-keeps-asi': {
    where: 'vmx_isolation_uninit (patch 23): asi_destroy(vcpu->asi) is left out, vcpu->asi is only cleared',
    expect: 'KVM-USER',
    kvm: true,
  },
  'kvm-run-skips-exit': {
    where: 'kvm_may_access_sensitive_data (patch 25): its vcpu_isolation_exit() call is left out, so neither the end of vcpu_run nor vcpu_put leaves isolation: KVM_RUN returns to user space isolated',
    expect: 'KVM-USER',
    kvm: true,
  },
  'kvm-barrier-end-skipped': {
    where: 'vmx_vcpu_run (patch 25): vmx_isolation_barrier_end() is left out after VM-exit, retry_abort stays set',
    // The first symptom: asi_exit's WARN_ON(retry_abort) when KVM_RUN leaves isolation.
    expect: 'NO-WARN',
    kvm: true,
  },
  'kvm-host-cr3-written-once': {
    where: 'vmx_vcpu_run: HOST_CR3 is written at the first run only, not whenever __get_current_cr3_fast() changes',
    expect: 'KVM-EXIT-CR3',
    kvm: true,
  },
  'kvm-barrier-begin-skipped': {
    where: 'vmx_vcpu_run (patch 25): vmx_isolation_barrier_begin() is left out, so an NMI while the guest runs ends the session and VM-exit still loads the isolation HOST_CR3',
    expect: 'KVM-EXIT-CR3',
    kvm: true,
  },
  'kvm-remap-memslots-slot0': {
    where: 'vcpu_isolation_enter (patch 26): `asi_remap(vcpu->asi, &vcpu->asi_memslots[0], kvm->memslots[i], ...)`, every address space remapped through slot 0',
    expect: 'KVM-ENTRY',
    kvm: true,
  },
  'kvm-host-cr3-ignores-asi': {
    where: "vmx_vcpu_run: HOST_CR3 from the kernel's CR3 (patch 21's ASI-aware __get_current_cr3_fast() not used), so VM-exit leaves an ACTIVE session on the kernel page table",
    expect: 'KVM-EXIT-CR3',
    kvm: true,
  },
  'kvm-maps-first-vm': {
    where: "vmx_isolation_map_kvm_vmx_data (patch 24): maps the first VM's struct kvm_vmx, not the vCPU's own",
    expect: 'KVM-SCOPE',
    kvm: true,
  },
  // The 2025 design (issue 22): run on asi25-fixed.
  'asi25-cr3-before-curr-asi': {
    where: "__asi_enter (2025 patch 03): CR3 is written before curr_asi (\"Must update curr_asi before writing CR3\")",
    expect: 'CURR-ASI',
    profile: 'asi25-fixed',
  },
  'asi25-exit-clears-curr-asi-first': {
    where: 'asi_exit (2025 patch 03): curr_asi is cleared before the unrestricted CR3 is written ("Must not update curr_asi until after CR3 write")',
    expect: 'CURR-ASI',
    profile: 'asi25-fixed',
  },
  'asi25-intr-exit-skips-reenter': {
    where: 'asi_intr_exit (2025 patch 05): the outermost return does not call __asi_enter(), so the critical section goes on unrestricted',
    expect: 'ASI-CRITICAL',
    profile: 'asi25-fixed',
  },
  'asi25-intr-enter-skips-depth': {
    where: 'asi_intr_enter (2025 patch 05): intr_nest_depth is not incremented',
    // The first symptom: asi_relax's VM_WARN_ON_ONCE(asi_intr_nest_depth()) once asi_intr_exit took it below 0.
    expect: 'NO-WARN',
    profile: 'asi25-fixed',
  },
  'asi25-pf-skips-exit': {
    where: 'exc_page_fault (2025 patch 10): asi_exit() is left out, so a fault on memory the restricted address space does not map oopses',
    expect: 'PROGRESS',
    profile: 'asi25-fixed',
  },
  'asi25-async-free-skips-unmap': {
    where: 'asi_async_free_work_fn (2025 patch 14): the page is freed without asi_unmap()',
    expect: 'ASI-NONSENSITIVE',
    profile: 'asi25-fixed',
  },
  'asi25-vfree-skips-asi-unmap': {
    where: "vfree (2025 patch 17): the area is not asi_unmap()ped from the global nonsensitive pgd",
    expect: 'ASI-REFINE',
    profile: 'asi25-fixed',
  },
  'asi25-init-skips-last-pgd-entry': {
    where: "asi_init (2025 patch 12): the copy of the global nonsensitive pgd's kernel half stops one entry short",
    expect: 'ASI-PGD-SHARED',
    profile: 'asi25-fixed',
  },
  'asi25-map-drops-nx': {
    where: 'asi_map (2025 patch 11): the copied entry loses _PAGE_NX',
    expect: 'ASI-REFINE',
    profile: 'asi25-fixed',
  },
  'asi25-kvm-host-cr3-before-enter': {
    where: 'vmx_vcpu_enter_exit (2025 patch 21): HOST_CR3 is refreshed from __get_current_cr3_fast() before asi_enter(), so VM-exit loads the unrestricted CR3 with curr_asi set',
    expect: 'ASI-KVM',
    profile: 'asi25-fixed',
    kvm: true,
  },
  'asi25-kvm-run-skips-exit': {
    where: "kvm_arch_vcpu_ioctl_run (2025 patch 21): the asi_exit() after vcpu_run is left out, so KVM_RUN returns to user space restricted",
    expect: 'ASI-KVM',
    profile: 'asi25-fixed',
    kvm: true,
  },
  'asi25-enter-skips-data-flush': {
    where: "__asi_enter (2025 patch 03): maybe_flush_data() is left out, so what an earlier domain tainted stays when the new one runs",
    expect: 'ASI-TAINT',
    profile: 'asi25-fixed',
  },
  'asi25-cr3-helpers-skip-exit': {
    where: 'native_flush_tlb_local (2025 patch 20) and the CR3 helpers (patch 22) without their asi_exit(): CR3 is read restricted and written back after an NMI has left the restricted address space',
    expect: 'CURR-ASI',
    profile: 'asi25-fixed',
  },
  'asi25-exit-skips-kernel-taint': {
    where: "asi_exit (2025 patch 03) without its this_cpu_or(asi_taints, ASI_TAINT_KERNEL_DATA): the next critical section is entered with no data flush after the kernel ran unrestricted",
    expect: 'ASI-TAINT',
    profile: 'asi25-fixed',
  },
  'asi25-unmap-skips-flush': {
    where: "asi_unmap (2025 patch 11): asi_flush_tlb_range() is left out, so a CPU running restricted keeps the translation of a page given back",
    expect: 'ASI-NONSENSITIVE',
    profile: 'asi25-fixed',
  },
  // The September 2025 direct map: run on asi25-dm-fixed.
  'asi25-flip-skips-zeroing': {
    where: '__rmqueue_asi (September 2025 patch 18): kernel_init_pages() is left out, so pageblocks that become nonsensitive keep what sensitive owners left in them',
    expect: 'ASI-NONSENSITIVE',
    profile: 'asi25-dm-fixed',
  },
  'asi25-flip-keeps-pageblock-bit': {
    where: '__rmqueue_asi (September 2025 patch 18): set_pageblock_sensitive() is left out, so the restricted direct map and PB_nonsensitive disagree',
    expect: 'ASI-PAGEBLOCK',
    profile: 'asi25-dm-fixed',
  },
  'asi25-flip-maps-next-block': {
    where: "set_direct_map_sensitive (September 2025 patch 18): the pageblock after the one asked for is [un]mapped",
    expect: 'ASI-PAGEBLOCK',
    profile: 'asi25-dm-fixed',
  },
  'asi25-mirror-drops-clr': {
    where: "mirror_asi_direct_map (September 2025 patch 05): asi_cpa keeps the change's mask_set and loses its mask_clr, so a set_memory_ro() leaves the restricted alias writable",
    expect: 'ASI-REFINE',
    profile: 'asi25-dm-fixed',
  },
  'asi25-rmqueue-ignores-freetype': {
    where: 'rmqueue (September 2025 patch 12): a page is taken from any free list, not only those of the freetype gfp_freetype() gives',
    // The series' own check sees it first: check_new_pages' bad_page() (patch 19) at the allocation.
    expect: 'NO-WARN',
    profile: 'asi25-dm-fixed',
  },
  'asi25-pindex-ignores-sensitivity': {
    where: 'order_to_pindex (September 2025 patch 12): the sensitivity term is left out, so both sensitivities share one per-CPU list of each order',
    // check_new_pages' bad_page() (patch 19) sees a page of the other sensitivity handed out.
    expect: 'NO-WARN',
    profile: 'asi25-dm-fixed',
  },
  'asi25-rmqueue-asi-ignores-noblock': {
    where: "__rmqueue_asi (September 2025 patch 18): the ALLOC_NOBLOCK test is left out, so a GFP_ATOMIC caller holding a lock with IRQs off flips pageblocks, whose shootdown needs IRQs on",
    // __rmqueue_asi's own lockdep_assert(!irqs_disabled()) sees it first.
    expect: 'NO-WARN',
    profile: 'asi25-dm-fixed',
  },
} as const;

export type MutantName = keyof typeof MUTANTS;

export interface MutantInfo {
  readonly where: string;
  /** The invariant expected to kill it. */
  readonly expect: string;
  /** Design options the mutated code path needs (on top of its profile). */
  readonly options?: Partial<DesignOptions>;
  /** The profile whose code it mutates: `fixed` when absent. */
  readonly profile?: ProfileName;
  /** The mutated code is KVM's: a search for it needs KVM's ops. */
  readonly kvm?: true;
}

export const MUTANT_INFO: Readonly<Record<MutantName, MutantInfo>> = MUTANTS;

export function isMutantName(x: unknown): x is MutantName {
  return typeof x === 'string' && Object.hasOwn(MUTANTS, x);
}
