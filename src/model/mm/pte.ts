// Page-table entries: a frame number and the x86 flag bits the model cares about, packed into one
// number so that a table is an Int32Array. 0 is pte_none().
//
// An entry is frame << FLAG_SHIFT | flags. The model has at most a few thousand frames (PHYS_FRAMES in
// kernel.ts), far below 2^(31 - FLAG_SHIFT), so every entry is a non-negative int32: it survives the
// Int32Array unchanged and 32-bit shifts and masks split it exactly, without float division.

export const _PAGE_PRESENT = 0x01;
export const _PAGE_RW = 0x02;
export const _PAGE_USER = 0x04;
export const _PAGE_NX = 0x08;
export const _PAGE_GLOBAL = 0x10;
export const _PAGE_PSE = 0x20;
const FLAG_SHIFT = 6;
const FLAG_MASK = (1 << FLAG_SHIFT) - 1;

/** _KERNPG_TABLE: what a kernel table-pointer entry carries. */
export const _KERNPG_TABLE = _PAGE_PRESENT | _PAGE_RW;
export const PAGE_KERNEL = _PAGE_PRESENT | _PAGE_RW | _PAGE_NX | _PAGE_GLOBAL;
export const PAGE_KERNEL_RO = _PAGE_PRESENT | _PAGE_NX | _PAGE_GLOBAL;
export const PAGE_KERNEL_EXEC = _PAGE_PRESENT | _PAGE_GLOBAL;
export const PAGE_KERNEL_ROX = _PAGE_PRESENT | _PAGE_GLOBAL;

export function mkEntry(frame: number, flags: number): number {
  return (frame << FLAG_SHIFT) | flags;
}

export function entryFrame(e: number): number {
  return e >>> FLAG_SHIFT;
}

export function entryFlags(e: number): number {
  return e & FLAG_MASK;
}

export function isNone(e: number): boolean {
  return e === 0;
}

export function isPresent(e: number): boolean {
  return (e & _PAGE_PRESENT) !== 0;
}

/** pmd_trans_huge/pud_trans_huge/pmd_large: a leaf above PTE level. */
export function isLarge(e: number): boolean {
  return (e & _PAGE_PSE) !== 0;
}

export function formatFlags(flags: number): string {
  return (
    (flags & _PAGE_PRESENT ? 'P' : '-') +
    (flags & _PAGE_RW ? 'W' : 'r') +
    (flags & _PAGE_USER ? 'U' : 'k') +
    (flags & _PAGE_NX ? 'x' : 'X') +
    (flags & _PAGE_GLOBAL ? 'G' : '-') +
    (flags & _PAGE_PSE ? 'L' : '')
  );
}

export function formatEntry(e: number): string {
  return e === 0 ? 'none' : `pfn ${entryFrame(e)} ${formatFlags(entryFlags(e))}`;
}
