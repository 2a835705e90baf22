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

export const PAGE_SHIFT = 12;
export const PAGE_SIZE = 1 << PAGE_SHIFT;

/**
 * Every figure below is derived once per geometry, so the page walk and the range code index
 * tables instead of computing `2 ** shift` per call.
 *
 * Exactness: addresses are below 2^vaBits <= 2^48 and sizes are powers of two, so `va / size` is an
 * exact double (a power-of-two divisor only moves the exponent) and Math.floor of it is exact. An
 * address does not fit 32-bit bit operations, but an index does: `x & mask` applies ToInt32, which
 * takes the integer part modulo 2^32 exactly for any |x| < 2^53, and 2^32 is a multiple of
 * `entries`, so `(va / size) & entriesMask` is pgd_index()...pte_index() with no float `%`.
 */
export interface Geometry {
  readonly name: 'small' | 'real';
  /** Index bits at each table level (9 on x86-64). */
  readonly bitsPerLevel: number;
  /** levelShift by PgtLevel: PAGE_SHIFT, PMD_SHIFT, PUD_SHIFT, P4D_SHIFT (= PGDIR_SHIFT), PGDIR_SHIFT. */
  readonly shift: readonly number[];
  /** levelSize by PgtLevel. */
  readonly size: readonly number[];
  /** PTRS_PER_PTE (= PTRS_PER_PMD = PTRS_PER_PUD = PTRS_PER_PGD). */
  readonly entries: number;
  readonly entriesMask: number;
  readonly vaBits: number;
  readonly vaLimit: number;
  /** 2^64 - 2^vaBits, the sign extension formatVa adds, as high and low 32-bit words. */
  readonly signHigh: number;
  readonly signLow: number;
}

const WORD = 2 ** 32;

function geometry(name: Geometry['name'], bitsPerLevel: number): Geometry {
  const shift = [0, 1, 2, 3, 4].map((level) => PAGE_SHIFT + bitsPerLevel * Math.min(tableLevel(level as PgtLevel), 3));
  const vaBits = PAGE_SHIFT + 4 * bitsPerLevel;
  return {
    name,
    bitsPerLevel,
    shift,
    size: shift.map((s) => 2 ** s),
    entries: 1 << bitsPerLevel,
    entriesMask: (1 << bitsPerLevel) - 1,
    vaBits,
    vaLimit: 2 ** vaBits,
    signHigh: vaBits >= 32 ? WORD - 2 ** (vaBits - 32) : WORD - 1,
    signLow: vaBits >= 32 ? 0 : WORD - 2 ** vaBits,
  };
}

export const GEOMETRIES: Record<Geometry['name'], Geometry> = {
  real: geometry('real', 9),
  small: geometry('small', 3),
};

/** The in-memory table level of a PGT level: P4D folds into PGD. */
export function tableLevel(level: PgtLevel): PgtLevel {
  return level === PGT_LEVEL_P4D ? PGT_LEVEL_PGD : level;
}

/** Bits of address left below an entry of this level (PAGE_SHIFT, PMD_SHIFT, PUD_SHIFT, PGDIR_SHIFT). */
export function levelShift(g: Geometry, level: PgtLevel): number {
  return g.shift[level];
}

/** Bytes covered by one entry at this level: page_directory_size[] of RFC v2 patch 14. */
export function levelSize(g: Geometry, level: PgtLevel): number {
  return g.size[level];
}

export function entriesPerTable(g: Geometry): number {
  return g.entries;
}

export function vaBits(g: Geometry): number {
  return g.vaBits;
}

export function vaLimit(g: Geometry): number {
  return g.vaLimit;
}

/** pgd_index/pud_index/pmd_index/pte_index. */
export function indexAt(g: Geometry, level: PgtLevel, va: number): number {
  return (va / g.size[level]) & g.entriesMask;
}

/** x rounded down to a multiple of size: x >= 0 and size a power of two (PAGE_SIZE or a levelSize). */
export function roundDown(x: number, size: number): number {
  return Math.floor(x / size) * size;
}

export function roundUp(x: number, size: number): number {
  return roundDown(x + size - 1, size);
}

/** fls(): the position of the highest bit set, 1-based (0 for 0). */
export function fls(x: number): number {
  return 32 - Math.clz32(x);
}

/** pXX_addr_end(addr, end): the next boundary of this level, or end if sooner. */
export function addrEnd(g: Geometry, level: PgtLevel, addr: number, end: number): number {
  const size = g.size[level];
  const boundary = roundDown(addr, size) + size;
  return boundary < end ? boundary : end;
}

/**
 * The kernel prints addresses sign-extended to 64 bits: 2^64 - 2^vaBits + va, added in two 32-bit
 * words because the sum is past 2^53.
 */
export function formatVa(g: Geometry, va: number): string {
  const vaHigh = Math.floor(va / WORD);
  const low = va - vaHigh * WORD + g.signLow;
  const carry = low >= WORD ? 1 : 0;
  return '0x' + (g.signHigh + vaHigh + carry).toString(16) + (low - carry * WORD).toString(16).padStart(8, '0');
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
