// Design options: every way the `fixed` profile differs from the posted RFC v2 code. Each option is
// named after the finding that justified it (FINDINGS.md gives the counterexample); `rfc-v2` turns
// them all off, `fixed` turns them all on, and a configuration may set any subset to replay the
// order in which the findings were made.

export const OVERLAP_POLICIES = ['count-ranges', 'refcount-entries', 'refuse'] as const;
export type OverlapPolicy = (typeof OVERLAP_POLICIES)[number];

export interface DesignOptions {
  /**
   * A PTE-level request that meets a kernel large page builds the ASI's own lower tables with 4K
   * entries for the requested pages, instead of copying the large page whole (RFC v2 patch 08,
   * asi_copy_pmd_range/asi_copy_pud_range copy pmd_trans_huge/pud_trans_huge entries verbatim).
   */
  splitLargePages: boolean;
  /**
   * asi_map_range maps no more than [ptr, ptr+size) rounded to pages: an entry of the requested
   * level is copied only where the request covers all of it, finer entries elsewhere. The RFC
   * rounds the range out to the level (patch 14 logs the difference as "MAP LEAK" and maps it).
   */
  exactExtent: boolean;
  /**
   * asi_pXX_offset also refuses a large-page entry and a backend page of another level. Patch 05
   * checks only that the page is a backend page, so a large entry whose first frame happens to be
   * one of the ASI's own tables is walked into as if it were the lower table.
   */
  offsetChecksLevel: boolean;
  /**
   * asi_clear_pmd_range (RFC v2 patch 11) skips entries that are `pmd_none || pmd_present`, i.e.
   * every populated entry; the fix skips only pmd_none.
   */
  clearPresentPmd: boolean;
  /** asi_clear_pte_range steps from an unaligned addr and misses the last page; the fix aligns it. */
  clearAlignedStart: boolean;
  /**
   * How overlapping ranges are handled: the RFC counts overlapping ranges (patch 14); `refcount-entries`
   * counts references per page-table entry the ASI set; `refuse` fails an overlapping map with -EBUSY.
   */
  overlapPolicy: OverlapPolicy;
  /** A failed asi_map_range undoes what it mapped (patch 14 leaves partial, untracked mappings). */
  rollbackOnError: boolean;
  /** Freeing memory (vfree/kfree/task exit/module unload) unmaps it from every ASI tracking it. */
  freeUnmapsAsi: boolean;
  /** Sensitive percpu variables live on their own page, never beside a variable an ASI maps. */
  percpuSecretsOwnPage: boolean;
  /**
   * ASI code never sleeps in atomic context: asi_map_range allocates page-table pages and its
   * range_mapping with GFP_KERNEL under spin_lock_irqsave(&asi->lock) (patches 06, 10, 14), and
   * asi_enter maps the stack after get_cpu_var() (patch 15). The fix allocates with GFP_ATOMIC.
   */
  atomicAllocs: boolean;
  /** asi_enter, asi_exit and asi_fault pair get_cpu_var() with put_cpu_var(); the RFC never puts. */
  putCpuVar: boolean;
  /**
   * asi_enter also flushes Global TLB entries. The kernel maps itself Global, and a CR3 write keeps
   * Global entries, so whatever the kernel touched stays reachable while isolated.
   */
  flushGlobalOnEnter: boolean;
  /**
   * asi_unmap shoots down the unmapped range: on its own CPU, and by IPI on every other CPU whose
   * session is on the ASI. The RFC clears entries without a flush.
   */
  asiUnmapFlushesTlb: boolean;
  /**
   * An ASI is entered on one CPU at a time: asi_enter claims it (a cmpxchg of its owner) where it
   * sets asi_session->asi, the end of asi_exit (the stack unmapped) releases it, and another CPU's
   * asi_enter meanwhile returns -EBUSY. asi_exit unmaps the stack from interrupt handlers and
   * prepare_task_switch, with IRQs off, and patch 26 remaps with IRQs off: there asi_unmap can
   * flush its own CPU only, since waiting for another CPU's IPI with IRQs off can deadlock (5.2
   * WARNs). With no other CPU in the ASI, none needs it; a CPU that enters later flushes the ASI
   * PCID (flushGlobalOnEnter). A check of the other CPUs' session states instead would race: a
   * session is INACTIVE between its claim and `state = ACTIVE`.
   */
  asiEnterExclusive: boolean;
  /**
   * asi_fault handles a fault only when it hit isolated code (abort depth 1 and an ASI CR3 at the
   * fault); the RFC also swallows faults taken by handlers that run after the abort, which retry forever.
   */
  faultChecksDepth: boolean;
  /**
   * asi_barrier_end checks for an abort before it clears retry_abort. The RFC clears it first, so an
   * interrupt between the two finds the session ABORTED, skips the CR3 restore and runs on the ASI.
   */
  barrierEndChecksFirst: boolean;
  /** asi_destroy refuses (-EBUSY) an ASI that a CPU's session still uses; the RFC frees it under the CPU. */
  destroyChecksSessions: boolean;
  /**
   * struct asi counts its users: asi_enter takes a reference at its first statement, and the end of
   * asi_exit (or of a failed asi_enter, or of the unmap an NMI deferred) drops it; asi_destroy
   * refuses (-EBUSY) while one is held. destroyChecksSessions looks at the sessions only: another
   * CPU's asi_enter before it sets asi_session->asi, or its asi_exit after it cleared it, still
   * uses the struct asi and the page tables asi_destroy frees.
   */
  asiUsersRefcount: boolean;
  /**
   * asi_start_abort increments abort_depth before it changes the state. The RFC increments last, so
   * an NMI inside the abort exits the session and the interrupted handler then leaves abort_depth 1.
   */
  startAbortCountsFirst: boolean;
  /**
   * asi_unmap (and asi_unmap_percpu) only find ranges a caller mapped: the core mappings of
   * asi_init_mapping and the stack/task asi_enter maps cannot be unmapped from under the entry code.
   */
  protectInternalRanges: boolean;
  /**
   * asi_init_mapping maps cpu_entry_area from CPU_ENTRY_AREA_BASE, so the read-only IDT one page
   * below CPU_ENTRY_AREA_PER_CPU is mapped. The RFC maps from the per-CPU part and gets the IDT
   * only because the range is rounded out to a P4D; with exactExtent the IDT is gone.
   */
  initMapsIdt: boolean;
  /**
   * asi_exit(asi) refuses (-EINVAL) an asi other than the session's. The RFC exits the session and
   * unmaps the current stack from the asi it was given, so the session's ASI keeps the stack.
   */
  exitChecksAsi: boolean;
  /**
   * The v3 design: an interrupt interrupts isolation instead of aborting it. ASI_INTERRUPT counts the
   * interrupt depth (idepth) and switches to the kernel CR3; ASI_RESUME at depth 0 reloads the
   * isolation CR3 with NOFLUSH, the ASI running on its own PCID (prefix << 4 | kernel PCID). Only a
   * fault asi_fault handles, or a context switch, ends the session.
   */
  interruptResumes: boolean;
  /**
   * v3: ASI_RESUME flushes Global TLB entries too. What the handler touched on the kernel page table
   * was cached Global and survives the NOFLUSH reload of the isolation CR3.
   */
  resumeFlushesGlobal: boolean;
  /**
   * v3: asi_exit leaves ACTIVE before it restores CR3. Restoring first lets an interrupt in between
   * resume isolation at its ASI_RESUME, and the exit then leaves the CPU on the ASI page table.
   */
  exitDeactivatesFirst: boolean;
  /**
   * asi_map_range never copies a kernel entry that points to a lower table: it builds the ASI's own
   * tables down to the leaves. The RFC copies such an entry whole when the request covers it (the
   * requested level, patch 08), so the ASI shares the kernel's lower table and whatever the kernel
   * maps under it later (a new task's stack in the vmalloc area) appears in the ASI.
   */
  privateLowerTables: boolean;
  /**
   * asi_map_range refuses (-EINVAL) a request that reaches a free frame. The RFC maps it, and the
   * next allocation of that frame (another task's data) is exposed through a range nobody owns.
   */
  mapRequiresLiveMemory: boolean;
  /**
   * asi_unmap by a caller finds only a range that caller mapped. The RFC finds a range by its start
   * alone, so one subsystem's unmap removes what another mapped at the same address.
   */
  unmapMatchesCaller: boolean;
  /**
   * asi_map_percpu's error path undoes only the ranges the call itself made. The RFC calls
   * asi_unmap_percpu(), which removes every CPU's range for that variable, other callers' too.
   */
  percpuUndoesOwn: boolean;
  /**
   * asi_remap returns early only when the caller's range for the pointer already has the asked size.
   * Patch 13 returns 0 whenever the pointer has not changed, so a buffer that grew keeps its old,
   * smaller mapping (or none at all, if the caller's pointer was never mapped).
   */
  remapChecksSize: boolean;
  /**
   * asi_clear_pgd_range clears a PGT_LEVEL_PGD range with p4d_clear(). Patch 11 calls pgd_clear(),
   * which is a no-op with 4-level paging (the P4D is folded into the PGD: pgtable-nop4d.h, or
   * pgtable_l5_enabled() false), so a PGD-level range stays mapped after asi_unmap.
   */
  clearPgdAsP4d: boolean;
  /**
   * asi_map_range copies from the kernel's reference page table, init_mm.pgd (as asi_fault's comment
   * in patch 03 calls it). Patches 08, 10 and 14 copy from current->mm->pgd: from a kernel thread
   * (current->mm == NULL) that is a NULL pointer dereference under asi->lock.
   */
  copyFromInitMm: boolean;
  /**
   * The copy and clear loops test pmd_large()/pud_large() (the PSE bit) for a kernel large page.
   * Patches 08 and 11 test pmd_trans_huge()/pud_trans_huge(), which are 0 without
   * CONFIG_TRANSPARENT_HUGEPAGE: the copy then walks into a large page and reads its first frame,
   * a data page, as a lower page table.
   */
  pmdLargeNotTransHuge: boolean;
  /**
   * asi_exit in NMI context (asi_finish_abort at the end of an NMI that aborted isolation, patch 02)
   * restores CR3 and ends the session, and leaves the stack and task unmap to an irq_work, which
   * runs as soon as the CPU has IRQs enabled again. The posted asi_exit unmaps them at once:
   * spin_lock_irqsave(&asi->lock) and kfree(range_mapping) in NMI context (patches 11, 14, 15).
   */
  nmiDefersExit: boolean;
  /**
   * vmx_isolation_init destroys the ASI when vmx_isolation_init_mapping fails. Patch 23 sets
   * vcpu->asi = NULL and returns the error: the ASI, its page-table pages and ranges leak.
   */
  kvmInitDestroysAsi: boolean;
  /**
   * vcpu_isolation_enter unmaps a bus that kvm_io_bus_unregister_dev removed (kvm->buses[i] ==
   * NULL). Patch 26 computes the new size from bus->dev_count first: a NULL dereference.
   */
  kvmRemapChecksNullBus: boolean;
  /**
   * vmx_vcpu_run begins the isolation barrier before it reads __get_current_cr3_fast() for
   * HOST_CR3. Patch 25 begins it after: an NMI in between ends the session (no barrier yet) and
   * VM-exit then loads the cached isolation CR3 with the session INACTIVE and the stack unmapped.
   */
  kvmBarrierBeforeHostCr3: boolean;
  /**
   * The objects patches 24 and 26 map that Linux allocates from kmalloc caches smaller than a page
   * (the kvm_lapic, kmalloc-512; each kvm_io_bus, kmalloc-8 and up) get a page of their own. As
   * posted, asi_map maps their whole slab page: the neighbours on it (another VM's lapic or bus,
   * any host object of that size) enter the vCPU's ASI.
   */
  kvmMapsOwnPages: boolean;
  /**
   * kvm->srcu's percpu srcu_data, which patch 24 maps with asi_map_percpu, takes a page of its own
   * in every unit. As posted, init_srcu_struct's alloc_percpu puts it in the first chunk's dynamic
   * area beside other percpu data, and asi_map_percpu maps the whole page in every unit: another
   * VM's srcu_data (and whatever alloc_percpu puts there later) enters the vCPU's ASI.
   */
  kvmSrcuOwnPage: boolean;
  /**
   * When KVM frees a memslots array or an IO bus, it clears every vCPU's vcpu->asi_memslots[] or
   * asi_buses[] entry that names it (unmapping it), so the next vcpu_isolation_enter maps whatever
   * is installed. Patch 26 compares pointers only: vmalloc and kmalloc hand a freed address to the
   * next array or bus, which is then taken for the one already mapped and never mapped itself.
   */
  kvmFreeResetsRemap: boolean;
  /**
   * The task_struct kmem_cache aligns its objects to pages (SLAB_HWCACHE_ALIGN is not enough). As
   * posted, patch 16's asi_map(asi, current, sizeof(struct task_struct)) maps the pages the task
   * straddles: the neighbouring task_structs on them enter the ASI (slab caches, 5.2's default).
   */
  taskStructOwnPages: boolean;
  /**
   * asi_map_range refuses (-EINVAL) a request whose pages, on a slab page, hold a free slot or an
   * object the request's bytes do not reach: asi_map maps whole pages, and kmem_cache_alloc puts
   * the next object of the cache (another task's, another VM's, a secret) in the free slot, inside
   * the ASI. The caller maps only objects on pages of their own (kvmMapsOwnPages and
   * taskStructOwnPages make KVM's and asi_enter's maps so). As posted, any asi_map of a kmalloc'd
   * object brings its slab neighbours, present and future (slab caches, 5.2's default).
   */
  mapRefusesSharedSlabPages: boolean;
  /**
   * vcpu_enter_guest calls vcpu_isolation_enter before srcu_read_unlock(&kvm->srcu), so its reads of
   * kvm->memslots[i] and kvm->buses[i] are SRCU readers that synchronize_srcu waits for. Patch 25
   * calls it after the unlock: another CPU's KVM_SET_USER_MEMORY_REGION or
   * kvm_io_bus_unregister_dev frees the old array or bus without waiting, and patch 26 maps it or
   * reads bus->dev_count from it after the free.
   */
  kvmIsolationEnterInSrcu: boolean;
  /**
   * KVM_RUN tells user space when the guest ran without isolation: vmx_vcpu_run notes whether the
   * session was ACTIVE on the vCPU's ASI at vmx_isolation_barrier_begin and whether it still is
   * after VM-exit, before asi_barrier_end; if not, it sets a KVM_RUN_X86_UNISOLATED flag in
   * kvm_run->flags. Patch 25 only pr_debug()s a failed asi_enter and enters the guest on the
   * kernel page table after a failure or an abort, unannounced. (Refusing the entry instead cannot
   * be complete: an NMI can land between the last check and VMLAUNCH.)
   */
  kvmReportsUnisolatedEntry: boolean;
  /**
   * An ASI API call made on a CPU that is isolated (patch 26's remaps in vcpu_isolation_enter, or
   * any caller inside its session) leaves isolation first, with asi_exit. The RFC runs the call on
   * the ASI page table: its first access to data the ASI does not map faults, and when struct asi
   * is mapped (it shares a slab page) that fault comes under asi->lock, whose abort runs asi_exit,
   * which unmaps the stack under asi->lock again.
   */
  apiLeavesIsolation: boolean;
  /**
   * kvm_intel's address_space_isolation module parameter (patch 22, 0444, read at vCPU creation). A
   * choice, not a fix: on in every profile, since off there is no ASI to check.
   */
  kvmAddressSpaceIsolation: boolean;
  // The 2025 design (src/model/asi25), the asi25 profiles' only differences; the 2019 profiles run no code that reads them.
  /**
   * __alloc_pages zeroes pages that become nonsensitive with ASI on. Patch 14 zeroes them with ASI
   * off only: `if (!static_asi_enabled() && !(gfp & __GFP_SENSITIVE)) gfp |= __GFP_ZERO;`.
   */
  zeroesNonsensitive: boolean;
  /** vmalloc maps an area nonsensitive only when its pages were not allocated __GFP_SENSITIVE (patch 17 maps every area). */
  vmallocKeepsSensitive: boolean;
  /** asi_global_init maps the first percpu chunk's dynamic area too (patch 16 maps its static part only). */
  mapsFirstChunkDynamic: boolean;
  /**
   * __get_current_cr3_fast (patch 07) WARNs when it returns a restricted CR3 outside the critical
   * section, where its comment says that CR3 is unstable. As posted it WARNs inside it
   * (`VM_WARN_ON_ONCE(asi && asi_in_critical_section())`): on every VM entry, where patch 21
   * calls it right after asi_enter().
   */
  currentCr3WarnsOutside: boolean;
  /**
   * The direct map of the September 2025 series ("mm: ASI direct map management"): the global
   * nonsensitive pgd mirrors the physmap with 2M leaves, non-present at boot (its patch 04); each
   * pageblock's PB_nonsensitive bit says whether its leaf is present (patch 12); the allocator
   * keeps sensitive and nonsensitive free pages apart and flips whole free pageblocks when one kind
   * runs out (__rmqueue_asi, patch 18). Off, patch 14 of January asi_map()s each allocation made
   * without __GFP_SENSITIVE. A choice, not a fix: the two posted designs of one job.
   */
  pageblockDirectMap: boolean;
  /**
   * set_direct_map_sensitive flushes the TLB over the pageblocks it unmaps (flush_tlb_kernel_range).
   * As posted (September patch 18) it calls __change_page_attr_set_clr(), which only sets
   * CPA_FLUSHTLB for its caller to act on, and __rmqueue_asi hands the pages to a __GFP_SENSITIVE
   * caller with the restricted translations still cached.
   */
  sensitiveFlipFlushesTlb: boolean;
  /**
   * mirror_asi_direct_map changes `asi_cpa`, the copy it made for asi_nonsensitive_pgd. As posted
   * (September patch 05) it calls `__change_page_attr(cpa, primary)` with the original: a
   * set_memory_*() of the direct map never reaches the restricted direct map.
   */
  mirrorTargetsAsiPgd: boolean;
  /**
   * The mirror sets _PAGE_PRESENT only in a nonsensitive pageblock (clearing it always follows):
   * whether the restricted direct map maps a page is its pageblock's sensitivity. As posted (patch
   * 05, with F48 fixed), a set_memory_p() or set_direct_map_default_noflush() of a page in a
   * sensitive pageblock maps it there (Dave Hansen's review of patch 05, 2 Oct 2025).
   */
  mirrorMapsNonsensitiveOnly: boolean;
  /**
   * change_page_attr also changes the global nonsensitive pgd's own copy of a mapping it changes
   * (the leaves asi_map() copied: vmalloc and module areas, and on the January direct map the
   * direct map). As posted, neither 2025 series does: a set_memory_ro() leaves the restricted copy
   * writable (the series' branch skips its KUnit test_change_page_attr, "Not yet supported").
   */
  setMemoryReachesAsiCopies: boolean;
  /**
   * mirror_asi_direct_map's VM_WARN_ON_ONCE tests the last byte of the range it mirrors. As posted
   * (September patch 05) it tests `*cpa->vaddr + (cpa->numpages * PAGE_SIZE)`, the byte after:
   * a change that ends at the end of the direct map (the last page of memory, or a large page kept
   * whole there) WARNs.
   */
  mirrorWarnsOnLastByte: boolean;
  /**
   * The mirror splits the restricted direct map's leaves before the unrestricted page table is
   * changed, so a failed split (-ENOMEM) leaves both as they were. As posted (September patch 05)
   * it runs after the unrestricted change stands, and its split_large_page() allocates: on failure
   * __change_page_attr_set_clr() returns -ENOMEM with the unrestricted change made, and a caller
   * that takes the error for "nothing changed" (secretmem_fault frees the page) hands out a page
   * the direct map no longer maps.
   */
  mirrorSplitsFirst: boolean;
  /**
   * Each CPU's asi_taints starts with ASI_TAINT_KERNEL_DATA: the kernel has run unrestricted since
   * boot. As posted (January patch 03) it is a zero-initialised per-CPU variable, and asi_exit()
   * taints only a CPU that was restricted, so the first critical section on each CPU is entered
   * with no data flush.
   */
  bootTaintsKernelData: boolean;
}

export const OPTION_NAMES = [
  'splitLargePages',
  'exactExtent',
  'offsetChecksLevel',
  'clearPresentPmd',
  'clearAlignedStart',
  'overlapPolicy',
  'rollbackOnError',
  'freeUnmapsAsi',
  'percpuSecretsOwnPage',
  'atomicAllocs',
  'putCpuVar',
  'flushGlobalOnEnter',
  'asiUnmapFlushesTlb',
  'asiEnterExclusive',
  'faultChecksDepth',
  'barrierEndChecksFirst',
  'destroyChecksSessions',
  'asiUsersRefcount',
  'startAbortCountsFirst',
  'protectInternalRanges',
  'initMapsIdt',
  'exitChecksAsi',
  'interruptResumes',
  'resumeFlushesGlobal',
  'exitDeactivatesFirst',
  'privateLowerTables',
  'mapRequiresLiveMemory',
  'unmapMatchesCaller',
  'percpuUndoesOwn',
  'remapChecksSize',
  'clearPgdAsP4d',
  'copyFromInitMm',
  'pmdLargeNotTransHuge',
  'nmiDefersExit',
  'kvmInitDestroysAsi',
  'kvmRemapChecksNullBus',
  'kvmBarrierBeforeHostCr3',
  'kvmMapsOwnPages',
  'kvmSrcuOwnPage',
  'kvmFreeResetsRemap',
  'taskStructOwnPages',
  'mapRefusesSharedSlabPages',
  'kvmIsolationEnterInSrcu',
  'kvmReportsUnisolatedEntry',
  'apiLeavesIsolation',
  'kvmAddressSpaceIsolation',
  'zeroesNonsensitive',
  'vmallocKeepsSensitive',
  'mapsFirstChunkDynamic',
  'currentCr3WarnsOutside',
  'pageblockDirectMap',
  'sensitiveFlipFlushesTlb',
  'mirrorTargetsAsiPgd',
  'mirrorMapsNonsensitiveOnly',
  'setMemoryReachesAsiCopies',
  'mirrorWarnsOnLastByte',
  'mirrorSplitsFirst',
  'bootTaintsKernelData',
] as const satisfies readonly (keyof DesignOptions)[];

export const RFC_V2_OPTIONS: DesignOptions = {
  splitLargePages: false,
  exactExtent: false,
  offsetChecksLevel: false,
  clearPresentPmd: false,
  clearAlignedStart: false,
  overlapPolicy: 'count-ranges',
  rollbackOnError: false,
  freeUnmapsAsi: false,
  percpuSecretsOwnPage: false,
  atomicAllocs: false,
  putCpuVar: false,
  flushGlobalOnEnter: false,
  asiUnmapFlushesTlb: false,
  asiEnterExclusive: false,
  faultChecksDepth: false,
  barrierEndChecksFirst: false,
  destroyChecksSessions: false,
  asiUsersRefcount: false,
  startAbortCountsFirst: false,
  protectInternalRanges: false,
  initMapsIdt: false,
  exitChecksAsi: false,
  interruptResumes: false,
  resumeFlushesGlobal: false,
  exitDeactivatesFirst: false,
  privateLowerTables: false,
  mapRequiresLiveMemory: false,
  unmapMatchesCaller: false,
  percpuUndoesOwn: false,
  remapChecksSize: false,
  clearPgdAsP4d: false,
  copyFromInitMm: false,
  pmdLargeNotTransHuge: false,
  nmiDefersExit: false,
  kvmInitDestroysAsi: false,
  kvmRemapChecksNullBus: false,
  kvmBarrierBeforeHostCr3: false,
  kvmMapsOwnPages: false,
  kvmSrcuOwnPage: false,
  kvmFreeResetsRemap: false,
  taskStructOwnPages: false,
  mapRefusesSharedSlabPages: false,
  kvmIsolationEnterInSrcu: false,
  kvmReportsUnisolatedEntry: false,
  apiLeavesIsolation: false,
  kvmAddressSpaceIsolation: true,
  zeroesNonsensitive: false,
  vmallocKeepsSensitive: false,
  mapsFirstChunkDynamic: false,
  currentCr3WarnsOutside: false,
  pageblockDirectMap: false,
  sensitiveFlipFlushesTlb: false,
  mirrorTargetsAsiPgd: false,
  mirrorMapsNonsensitiveOnly: false,
  setMemoryReachesAsiCopies: false,
  mirrorWarnsOnLastByte: false,
  mirrorSplitsFirst: false,
  bootTaintsKernelData: false,
};

export const FIXED_OPTIONS: DesignOptions = {
  splitLargePages: true,
  exactExtent: true,
  offsetChecksLevel: true,
  clearPresentPmd: true,
  clearAlignedStart: true,
  overlapPolicy: 'refcount-entries',
  rollbackOnError: true,
  freeUnmapsAsi: true,
  percpuSecretsOwnPage: true,
  atomicAllocs: true,
  putCpuVar: true,
  flushGlobalOnEnter: true,
  asiUnmapFlushesTlb: true,
  asiEnterExclusive: true,
  faultChecksDepth: true,
  barrierEndChecksFirst: true,
  destroyChecksSessions: true,
  asiUsersRefcount: true,
  startAbortCountsFirst: true,
  protectInternalRanges: true,
  initMapsIdt: true,
  exitChecksAsi: true,
  interruptResumes: false,
  resumeFlushesGlobal: true,
  exitDeactivatesFirst: true,
  privateLowerTables: true,
  mapRequiresLiveMemory: true,
  unmapMatchesCaller: true,
  percpuUndoesOwn: true,
  remapChecksSize: true,
  clearPgdAsP4d: true,
  copyFromInitMm: true,
  pmdLargeNotTransHuge: true,
  nmiDefersExit: true,
  kvmInitDestroysAsi: true,
  kvmRemapChecksNullBus: true,
  kvmBarrierBeforeHostCr3: true,
  kvmMapsOwnPages: true,
  kvmSrcuOwnPage: true,
  kvmFreeResetsRemap: true,
  taskStructOwnPages: true,
  mapRefusesSharedSlabPages: true,
  kvmIsolationEnterInSrcu: true,
  kvmReportsUnisolatedEntry: true,
  apiLeavesIsolation: true,
  kvmAddressSpaceIsolation: true,
  zeroesNonsensitive: true,
  vmallocKeepsSensitive: true,
  mapsFirstChunkDynamic: true,
  currentCr3WarnsOutside: true,
  pageblockDirectMap: false,
  sensitiveFlipFlushesTlb: true,
  mirrorTargetsAsiPgd: true,
  mirrorMapsNonsensitiveOnly: true,
  setMemoryReachesAsiCopies: true,
  mirrorWarnsOnLastByte: true,
  mirrorSplitsFirst: true,
  bootTaintsKernelData: true,
};

/** v3 as designed: the fixed profile with interrupts resuming isolation, and neither v3 fix. */
export const V3_OPTIONS: DesignOptions = { ...FIXED_OPTIONS, interruptResumes: true, resumeFlushesGlobal: false, exitDeactivatesFirst: false };

/** The options only the 2025 design reads. */
export const ASI25_OPTION_NAMES = ['zeroesNonsensitive', 'vmallocKeepsSensitive', 'mapsFirstChunkDynamic', 'currentCr3WarnsOutside', 'pageblockDirectMap', 'sensitiveFlipFlushesTlb', 'mirrorTargetsAsiPgd', 'mirrorMapsNonsensitiveOnly', 'setMemoryReachesAsiCopies', 'mirrorWarnsOnLastByte', 'mirrorSplitsFirst', 'bootTaintsKernelData'] as const satisfies readonly (keyof DesignOptions)[];

/**
 * The 2025 design as posted: the kernel around it takes every 2019 fix (the 2025 series replaces
 * the 2019 code those fixes are in), the 2025 options are off.
 */
export const ASI25_OPTIONS: DesignOptions = { ...FIXED_OPTIONS, ...Object.fromEntries(ASI25_OPTION_NAMES.map((o) => [o, false])) };

export type ProfileName = 'rfc-v2' | 'fixed' | 'v3' | 'asi25' | 'asi25-fixed' | 'asi25-dm' | 'asi25-dm-fixed';

/** The two design families: the 2019 RFC (src/model/asi) and the 2025 series (src/model/asi25). */
export type Design = 'asi-2019' | 'asi-2025';

export const PROFILES: Record<ProfileName, { readonly description: string; readonly design: Design; readonly options: DesignOptions }> = {
  'rfc-v2': { description: 'the posted RFC v2 code, exactly, including its mistakes', design: 'asi-2019', options: RFC_V2_OPTIONS },
  fixed: { description: 'RFC v2 with every design option of FINDINGS.md turned on', design: 'asi-2019', options: FIXED_OPTIONS },
  v3: { description: 'fixed, with interrupts that interrupt and later resume isolation (idepth, ASI PCID, NOFLUSH), as designed: V1 and V2 open', design: 'asi-2019', options: V3_OPTIONS },
  asi25: { description: 'the 2025 design (RFC v2 of Jan 2025, Google) as posted, including its mistakes', design: 'asi-2025', options: ASI25_OPTIONS },
  'asi25-fixed': { description: 'the 2025 design with the fix of every 2025 finding (F43-) turned on', design: 'asi-2025', options: FIXED_OPTIONS },
  'asi25-dm': {
    description: 'the 2025 runtime with the direct map of the September 2025 series (pageblock sensitivity, __rmqueue_asi) as posted',
    design: 'asi-2025',
    options: { ...ASI25_OPTIONS, pageblockDirectMap: true },
  },
  'asi25-dm-fixed': { description: 'asi25-dm with the fix of every 2025 finding turned on', design: 'asi-2025', options: { ...FIXED_OPTIONS, pageblockDirectMap: true } },
};

/** Whether an option means something to a profile's design. */
export function optionOfDesign(name: keyof DesignOptions, design: Design): boolean {
  return (ASI25_OPTION_NAMES as readonly string[]).includes(name) === (design === 'asi-2025');
}

export function isProfileName(x: unknown): x is ProfileName {
  return typeof x === 'string' && Object.hasOwn(PROFILES, x);
}
