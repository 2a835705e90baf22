// Per-CPU machine state: CR3 (root + PCID), the percpu asi_session (RFC v2 patches 01, 02, 21), the
// execution context the kernel tracks (preempt_count, IRQs, handler nesting, spinlocks held) and a
// TLB tagged by PCID with Global entries. Hardware effects are explicit operations: write_cr3,
// tlb_fill on a walk, invlpg, and the flushes a design performs.

import { PAGE_SIZE } from '../mm/geometry.ts';
import { walk } from '../mm/pagetable.ts';
import { _PAGE_GLOBAL, _PAGE_NX, _PAGE_RW } from '../mm/pte.ts';
import type { System } from '../system.ts';

export const ASI_SESSION_STATE_INACTIVE = 0;
export const ASI_SESSION_STATE_ACTIVE = 1;
export const ASI_SESSION_STATE_ABORTED = 2;
export type SessionState = typeof ASI_SESSION_STATE_INACTIVE | typeof ASI_SESSION_STATE_ACTIVE | typeof ASI_SESSION_STATE_ABORTED;
export const SESSION_STATE_NAMES = ['INACTIVE', 'ACTIVE', 'ABORTED'] as const;

/** struct asi_session (patches 01, 02, 21): one per CPU, page-aligned percpu data. */
export interface AsiSession {
  asi: number | null;
  state: SessionState;
  retryAbort: boolean;
  /** unsigned int: this_cpu_dec_return() below zero wraps. */
  abortDepth: number;
  isolationCr3: number;
  originalCr3: number;
  originalCr4: number;
  task: number | null;
  /** fixed: nmiDefersExit. The unmap an asi_exit in NMI context left to irq_work (replaced, never mutated). */
  deferredUnmap: { readonly asi: number; readonly task: number } | null;
}

export type HandlerKind = 'irq' | 'exception' | 'page-fault' | 'nmi';

export interface LockHeld {
  /** "asi#1->lock". */
  readonly name: string;
  /** spin_lock_irqsave's saved flags: whether IRQs were already off. */
  readonly savedIrqsDisabled?: boolean;
}

export interface TlbEntry {
  readonly frame: number;
  readonly flags: number;
  /** Ghost: the allocation that owned the frame when the entry was filled (-1: free), for TLB-COHERENT. */
  readonly alloc: number;
  /** Ghost: the root of the page table the entry was filled from, and the allocation that root was then. */
  readonly root: number;
  readonly rootAlloc: number;
}

export interface Cpu {
  readonly id: number;
  /** CR3 as loaded: root frame * 4096 + PCID (the NOFLUSH bit is an argument of the write, not state). */
  cr3: number;
  cr4: number;
  readonly session: AsiSession;
  preemptCount: number;
  irqsDisabled: boolean;
  /** Handlers running on this CPU, outermost first. */
  readonly handlers: HandlerKind[];
  /** Spinlocks held, innermost last. */
  readonly locks: LockHeld[];
  /** Keys "pcid:vpn" for non-global entries and "G:vpn" for global ones. */
  readonly tlb: Map<string, TlbEntry>;
  /**
   * Ghost: the session code has loaded an ASI CR3 and owes the Global TLB flush that follows it
   * (flushGlobalOnEnter, resumeFlushesGlobal): until then stale Global entries are the kernel's
   * rule, not a defect (TLB-COHERENT).
   */
  flushOwed?: boolean;
  /** Set once the CPU has taken a double fault or hung: it runs nothing more. */
  dead?: string;
}

export const X86_CR4_PGE = 1 << 7;
export const X86_CR4_PCIDE = 1 << 17;
const CR3_PCID_MASK = 0xfff;

/** The kernel runs on kern_pcid(asid 0) = 1 with PCID enabled; PCID 0 is what a bare __sme_pa(pgd) loads. */
export const KERNEL_PCID = 1;

export function buildCr3(root: number, pcid: number): number {
  return root * PAGE_SIZE + pcid;
}

export function cr3Root(cr3: number): number {
  return Math.floor(cr3 / PAGE_SIZE);
}

export function cr3Pcid(cr3: number): number {
  return cr3 & CR3_PCID_MASK;
}

/** v3: the ASI's PCID is ASI_PCID_PREFIX << 4 | the kernel's PCID. */
const ASI_PCID_PREFIX = 1;

/**
 * load_cr3(asi->pgd) writes __sme_pa(pgd): PCID 0, a PCID the kernel itself never uses (patch 01).
 * v3 tags the ASI with a PCID of its own so that resuming can keep its TLB entries (NOFLUSH).
 */
export function asiPcid(sys: System): number {
  return sys.options.interruptResumes ? (ASI_PCID_PREFIX << 4) | KERNEL_PCID : 0;
}

export function kernelCr3(sys: System): number {
  return buildCr3(sys.kernel.pgd, KERNEL_PCID);
}

/** Whose page table a root frame is: the kernel's, an ASI's (or a 2025 domain's), or a bare pfn. */
export function formatRoot(sys: System, root: number): string {
  const asi = [...sys.asis.values()].find((a) => a.pgd === root);
  const domain = [...(sys.asi25?.domains ?? [])].find(([, d]) => d.pgd === root);
  return root === sys.kernel.pgd ? 'kernel' : asi ? `asi#${asi.id}` : domain ? domain[0] : `pfn ${root}`;
}

export function formatCr3(sys: System, cr3: number): string {
  if (cr3 === 0) return '0';
  return `${formatRoot(sys, cr3Root(cr3))}/pcid${cr3Pcid(cr3)}`;
}

function newSession(): AsiSession {
  return { asi: null, state: ASI_SESSION_STATE_INACTIVE, retryAbort: false, abortDepth: 0, isolationCr3: 0, originalCr3: 0, originalCr4: 0, task: null, deferredUnmap: null };
}

export function bootCpus(sys: System): Cpu[] {
  return Array.from({ length: sys.config.cpus }, (_, id) => ({
    id,
    cr3: kernelCr3(sys),
    cr4: X86_CR4_PGE | X86_CR4_PCIDE,
    session: newSession(),
    preemptCount: 0,
    irqsDisabled: false,
    handlers: [],
    locks: [],
    tlb: new Map(),
  }));
}

export function cloneCpu(c: Cpu): Cpu {
  return { ...c, session: { ...c.session }, handlers: [...c.handlers], locks: [...c.locks], tlb: new Map(c.tlb) };
}

// ---- CR3 and the TLB ------------------------------------------------------------------------

/**
 * MOV to CR3 with CR4.PCIDE set: without NOFLUSH it invalidates the non-global entries of the new
 * PCID; Global entries survive every CR3 write (Intel SDM 4.10.4.1).
 */
export function writeCr3(cpu: Cpu, cr3: number, noflush = false): void {
  cpu.cr3 = cr3;
  if (noflush) return;
  const prefix = `${cr3Pcid(cr3)}:`;
  for (const k of [...cpu.tlb.keys()]) if (k.startsWith(prefix)) cpu.tlb.delete(k);
}


/** A CR4.PGE toggle (__flush_tlb_global): every entry, Global ones included. */
export function flushTlbAll(cpu: Cpu): void {
  cpu.tlb.clear();
  cpu.flushOwed = false;
}

/** Invalidates [lo, hi) in one PCID (INVPCID single-address) and the Global entries there. */
export function flushTlbRange(cpu: Cpu, pcid: number, lo: number, hi: number): void {
  for (let va = lo; va < hi; va += PAGE_SIZE) {
    const vpn = Math.floor(va / PAGE_SIZE);
    cpu.tlb.delete(`${pcid}:${vpn}`);
    cpu.tlb.delete(`G:${vpn}`);
  }
}

/** INVLPG over [lo, hi): the pages in the current PCID and any Global entry for them. */
export function invlpg(cpu: Cpu, lo: number, hi = lo + PAGE_SIZE): void {
  flushTlbRange(cpu, cr3Pcid(cpu.cr3), lo, hi);
}

export type AccessKind = 'read' | 'write' | 'exec';

export function permits(flags: number, kind: AccessKind): boolean {
  return (kind !== 'write' || (flags & _PAGE_RW) !== 0) && (kind !== 'exec' || (flags & _PAGE_NX) === 0);
}

/** The page table under `root` allows the access now: the walk of spurious_kernel_fault / kernel_access_ok. */
export function accessOk(sys: System, root: number, va: number, kind: AccessKind): boolean {
  const w = walk(sys.g, sys.tables, root, va);
  return w.ok && permits(w.leaf.flags, kind);
}

/**
 * The MMU: the TLB first (current PCID, then Global), else a walk of CR3 that fills the TLB. False
 * is a page fault.
 */
export function translate(sys: System, cpu: Cpu, va: number, kind: AccessKind): boolean {
  const vpn = Math.floor(va / PAGE_SIZE);
  const hit = cpu.tlb.get(`${cr3Pcid(cpu.cr3)}:${vpn}`) ?? cpu.tlb.get(`G:${vpn}`);
  if (hit && permits(hit.flags, kind)) return true;
  const w = walk(sys.g, sys.tables, cr3Root(cpu.cr3), va);
  if (!w.ok || !permits(w.leaf.flags, kind)) return false;
  const frame = w.leaf.frame + Math.floor((va - w.leaf.va) / PAGE_SIZE);
  const root = cr3Root(cpu.cr3);
  const fill: TlbEntry = { frame, flags: w.leaf.flags, alloc: sys.mem.frameAlloc[frame] ?? -1, root, rootAlloc: sys.mem.frameAlloc[root] };
  cpu.tlb.set(w.leaf.flags & _PAGE_GLOBAL ? `G:${vpn}` : `${cr3Pcid(cpu.cr3)}:${vpn}`, fill);
  return true;
}

/** The TLB entries a CPU can use now: those of its current PCID and the Global ones. */
export function usableTlbEntries(cpu: Cpu): { vpn: number; entry: TlbEntry }[] {
  const prefix = `${cr3Pcid(cpu.cr3)}:`;
  const out: { vpn: number; entry: TlbEntry }[] = [];
  for (const [k, entry] of cpu.tlb) if (k.startsWith(prefix) || k.startsWith('G:')) out.push({ vpn: Number(k.slice(k.indexOf(':') + 1)), entry });
  return out;
}
