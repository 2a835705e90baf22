// Mutants: small, deliberate mistakes an implementation of the `fixed` design could make. Each is
// injected at one line of the model (grep for its name) and must be killed by some invariant.

import type { DesignOptions } from './options.ts';

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
  },
  'fini-backend-skipped': {
    where: 'asi_destroy (patch 04): asi_fini_backend() is not called, backend pages stay allocated',
    expect: 'RANGE-NO-LEAK',
  },
  'fini-frees-kernel-tables': {
    where: 'asi_fini_backend: frees every table reachable from the ASI pgd, kernel tables included',
    expect: 'PT-WF',
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
} as const;

export type MutantName = keyof typeof MUTANTS;

export interface MutantInfo {
  readonly where: string;
  /** The invariant expected to kill it. */
  readonly expect: string;
  /** Design options the mutated code path needs (on top of the `fixed` profile). */
  readonly options?: Partial<DesignOptions>;
}

export const MUTANT_INFO: Readonly<Record<MutantName, MutantInfo>> = MUTANTS;

export function isMutantName(x: unknown): x is MutantName {
  return typeof x === 'string' && Object.hasOwn(MUTANTS, x);
}
