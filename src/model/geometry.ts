// x86-64 4-level paging geometry, real or scaled down.
//
// Levels are numbered as the RFC's enum page_table_level (RFC v2 patch 04): PTE=0, PMD=1, PUD=2,
// P4D=3, PGD=4. With 4-level paging the P4D is folded into the PGD, so both name the top table.
// Addresses are byte addresses inside the kernel half, kept below 2^vaBits so that they are exact
// JavaScript numbers; `formatVa` prints them sign-extended as the kernel does.

export const PGT_LEVEL_PTE = 0;
export const PGT_LEVEL_PMD = 1;
export const PGT_LEVEL_PUD = 2;
export const PGT_LEVEL_P4D = 3;
export const PGT_LEVEL_PGD = 4;
export type PgtLevel = 0 | 1 | 2 | 3 | 4;

export const LEVEL_NAMES = ['pte', 'pmd', 'pud', 'p4d', 'pgd'] as const;
export type LevelName = (typeof LEVEL_NAMES)[number];

/** The table levels that exist in memory: the P4D is folded into the PGD. */
export const TABLE_LEVELS = [PGT_LEVEL_PGD, PGT_LEVEL_PUD, PGT_LEVEL_PMD, PGT_LEVEL_PTE] as const;

export interface Geometry {
  readonly name: 'small' | 'real';
  /** Index bits at each table level (9 on x86-64). */
  readonly bitsPerLevel: number;
}

export const PAGE_SHIFT = 12;
export const PAGE_SIZE = 1 << PAGE_SHIFT;

export const GEOMETRIES: Record<Geometry['name'], Geometry> = {
  real: { name: 'real', bitsPerLevel: 9 },
  small: { name: 'small', bitsPerLevel: 3 },
};

/** The in-memory table level of a PGT level: P4D folds into PGD. */
export function tableLevel(level: PgtLevel): PgtLevel {
  return level === PGT_LEVEL_P4D ? PGT_LEVEL_PGD : level;
}

/** Bits of address left below an entry of this level (PAGE_SHIFT, PMD_SHIFT, PUD_SHIFT, PGDIR_SHIFT). */
export function levelShift(g: Geometry, level: PgtLevel): number {
  return PAGE_SHIFT + g.bitsPerLevel * Math.min(tableLevel(level), 3);
}

/** Bytes covered by one entry at this level: page_directory_size[] of RFC v2 patch 14. */
export function levelSize(g: Geometry, level: PgtLevel): number {
  return 2 ** levelShift(g, level);
}

export function entriesPerTable(g: Geometry): number {
  return 1 << g.bitsPerLevel;
}

export function vaBits(g: Geometry): number {
  return PAGE_SHIFT + 4 * g.bitsPerLevel;
}

export function vaLimit(g: Geometry): number {
  return 2 ** vaBits(g);
}

/** pgd_index/pud_index/pmd_index/pte_index. */
export function indexAt(g: Geometry, level: PgtLevel, va: number): number {
  return Math.floor(va / levelSize(g, level)) % entriesPerTable(g);
}

export function roundDown(x: number, size: number): number {
  return x - (x % size);
}

export function roundUp(x: number, size: number): number {
  return roundDown(x + size - 1, size);
}

/** pXX_addr_end(addr, end): the next boundary of this level, or end if sooner. */
export function addrEnd(g: Geometry, level: PgtLevel, addr: number, end: number): number {
  const boundary = roundDown(addr, levelSize(g, level)) + levelSize(g, level);
  return boundary < end ? boundary : end;
}

/** The kernel prints addresses sign-extended to 64 bits. */
export function formatVa(g: Geometry, va: number): string {
  const high = (1n << 64n) - (1n << BigInt(vaBits(g)));
  return '0x' + (high + BigInt(va)).toString(16);
}

/** Parse what formatVa prints (or a plain number) back to a model address. */
export function parseVa(g: Geometry, text: string): number | undefined {
  if (!/^(0x[0-9a-f]+|\d+)$/i.test(text)) return undefined;
  const v = BigInt(text);
  const limit = 1n << BigInt(vaBits(g));
  const low = v >= limit ? v - ((1n << 64n) - limit) : v;
  return low >= 0n && low < limit ? Number(low) : undefined;
}

export function formatSize(size: number): string {
  if (size % PAGE_SIZE === 0) return `+${size / PAGE_SIZE}p`;
  return `+0x${size.toString(16)}`;
}
