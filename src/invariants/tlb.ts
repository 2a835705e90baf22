// TLB-COHERENT: what a CPU's TLB caches may run ahead of the page tables only as far as the
// kernel's flushing rules allow. A translation may go stale (a PTE cleared, its flush still owed),
// but before the frame behind it is handed to a new owner the flush must have happened: a usable
// entry that neither the page table it was filled from nor the one the CPU runs on gives any more,
// to a frame reused since the entry was filled (fill-time owners are ghost state), reads or writes
// someone else's memory. (A Global entry that the kernel still gives but the ASI does not is
// ISOLATION's business: the kernel maps itself Global on purpose.)

import { formatVa, PAGE_SIZE } from '../model/mm/geometry.ts';
import { type Cpu, type TlbEntry, cr3Root, formatCr3, formatRoot, usableTlbEntries } from '../model/x86/cpu.ts';
import { walk } from '../model/mm/pagetable.ts';
import type { System } from '../model/system.ts';
import type { Invariant } from './types.ts';

function allocName(sys: System, id: number): string {
  return id < 0 ? 'free' : `#${id} ${sys.mem.allocs.get(id)?.name ?? '(since freed)'}`;
}

/** The page table under `root` maps va to `frame` now. */
function gives(sys: System, root: number, va: number, frame: number): boolean {
  const w = walk(sys.g, sys.tables, root, va);
  return w.ok && w.leaf.frame + Math.floor((va - w.leaf.va) / PAGE_SIZE) === frame;
}

function stillGiven(sys: System, cpu: Cpu, va: number, e: TlbEntry): boolean {
  const fillRootLive = sys.mem.frameAlloc[e.root] === e.rootAlloc;
  return (fillRootLive && gives(sys, e.root, va, e.frame)) || gives(sys, cr3Root(cpu.cr3), va, e.frame);
}

/**
 * A kernel address in a vmap area vfree'd lazily and not purged yet: 5.2 frees the pages before the
 * flush, which the purge owes, and hands the VA to no one until then.
 */
function lazilyFreed(sys: System, va: number): boolean {
  return sys.kernel.vmapPurge.some((a) => va >= a.va && va < a.va + a.span * PAGE_SIZE);
}

/** An entry whose frame was handed to a new owner since it was filled: the only kind that can be incoherent. */
function reused(sys: System, e: TlbEntry): boolean {
  const now = sys.mem.frameAlloc[e.frame];
  return now !== e.alloc && now >= 0;
}

function incoherent(sys: System, cpu: Cpu): string | undefined {
  // Checked at every micro-step, and almost never is any frame reused under a TLB: ask that first.
  let any = false;
  for (const e of cpu.tlb.values()) {
    if (!reused(sys, e)) continue;
    any = true;
    break;
  }
  if (!any) return undefined;
  for (const { vpn, entry } of usableTlbEntries(cpu)) {
    if (!reused(sys, entry)) continue;
    const now = sys.mem.frameAlloc[entry.frame];
    const va = vpn * PAGE_SIZE;
    if (stillGiven(sys, cpu, va, entry) || lazilyFreed(sys, va) || sys.ghost.noflushPending.has(va)) continue;
    return `cpu${cpu.id} caches ${formatVa(sys.g, va)} -> pfn ${entry.frame}, filled from ${formatRoot(sys, entry.root)} when the frame was ${allocName(sys, entry.alloc)}; neither that page table nor cr3 ${formatCr3(sys, cpu.cr3)} maps it so now, and the frame holds ${allocName(sys, now)}: its flush was owed before the frame was reused`;
  }
  return undefined;
}

export const TLB_COHERENT: Invariant = {
  id: 'TLB-COHERENT',
  statement:
    "Every usable TLB entry of every CPU is a translation that the page table it was filled from, or the one the CPU runs on, gives now, or a stale one whose frame has not been reused since the entry was filled (its flush may still be pending), or one in a vmap area vfree'd lazily and not purged yet (5.2 frees the pages before the purge's flush, and reuses the VA only after it), or a direct-map page a set_direct_map_*_noflush() changed whose caller has not yet done the flush it owes.",
  source: 'x86 TLB rules (Intel SDM 4.10.4); kernel: flush_tlb_kernel_range before memory is reused, except vfree (mm/vmalloc.c, the lazy purge); RFC v2 patches 11, 14 (asi_unmap)',
  // A CPU whose session code has just loaded an ASI CR3 and not yet done the Global flush that
  // follows is inside the kernel's own rule: the flush is owed, and only that code runs meanwhile.
  check: (sys) => sys.cpus.filter((c) => !c.dead && !c.flushOwed).map((c) => incoherent(sys, c)).find((m) => m !== undefined),
};
