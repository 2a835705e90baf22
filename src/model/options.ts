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
};

export type ProfileName = 'rfc-v2' | 'fixed';

export const PROFILES: Record<ProfileName, { readonly description: string; readonly options: DesignOptions }> = {
  'rfc-v2': { description: 'the posted RFC v2 code, exactly, including its mistakes', options: RFC_V2_OPTIONS },
  fixed: { description: 'RFC v2 with every design option of FINDINGS.md turned on', options: FIXED_OPTIONS },
};

export function isProfileName(x: unknown): x is ProfileName {
  return typeof x === 'string' && Object.hasOwn(PROFILES, x);
}
