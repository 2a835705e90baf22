// CR3 and the TLB under the 2025 design: patch 22's CR3 helpers, which leave the restricted address
// space before they touch CR3, and patch 20's native_flush_tlb_local, which reads CR3 and writes it
// back. "Because asi_exit()s can be triggered by NMIs, CR3 is unstable when in the ASI restricted
// address space. [...] if code reads CR3 and then writes a derived value back, if concurrent
// asi_exit() occurred in between then the address space switch would be undone" (patch 22): the
// point between the read and the write is where an NMI that faults on sensitive data lands.
//
// Patch 20's other half, invalidate_other for kernel flushes, needs no model of its own: every ASI
// CR3 write flushes its PCID ("we currently never set the noflush bit in CR3 for ASI transitions"),
// so a restricted PCID's stale entries are gone before it runs again.

import type { Exec, Path } from '../asi/session.ts';
import { flushTlbAll, writeCr3 } from '../x86/cpu.ts';
import { localIrqEnable } from '../x86/entry.ts';
import { getCpuVar, putCpuVar } from '../x86/context.ts';
import { mutant } from '../system.ts';
import { asiExit, asiInCriticalSection, warnOn } from './runtime.ts';

/** The asi_exit() patch 22 puts before a CR3 access, and patch 20 before native_flush_tlb_local's. */
function* stabilizeCr3(k: Exec): Path {
  if (!mutant(k.sys, 'asi25-cr3-helpers-skip-exit')) yield* asiExit(k);
}

/** __native_read_cr3 (patch 22): asi_exit(), then the read, stable from then on. */
function* readCr3(k: Exec): Path<number> {
  yield* stabilizeCr3(k);
  return k.cpu.cr3;
}

/** native_write_cr3 (patch 22): asi_exit(), then the write. */
function* writeCr3Exiting(k: Exec, cr3: number): Path {
  yield* stabilizeCr3(k);
  writeCr3(k.cpu, cr3);
  yield 'native_write_cr3(val)';
}

/**
 * native_flush_tlb_local (patch 20): "Restricted ASI CR3 is unstable outside of critical section,
 * so we couldn't flush via a CR3 read/write. asi_exit() stabilizes it. We don't expect any flushes
 * in a critical section": `if (WARN_ON(asi_in_critical_section())) native_flush_tlb_global(); else
 * asi_exit();`, then `native_write_cr3(__native_read_cr3())`, which flushes the PCID's non-global
 * entries (and whose helpers leave even a critical section).
 */
function* nativeFlushTlbLocal(k: Exec): Path {
  if (warnOn(k, asiInCriticalSection(k), 'WARN_ON(asi_in_critical_section())')) flushTlbAll(k.cpu);
  else yield* stabilizeCr3(k);
  const cr3 = yield* readCr3(k);
  yield '__native_read_cr3()';
  yield* writeCr3Exiting(k, cr3);
}

/**
 * flush_tlb_mm_range() of the CPU's own mm past tlb_single_page_flush_ceiling (a full flush),
 * loaded on no other CPU (each model process has one task): get_cpu(), then flush_tlb_func() with
 * IRQs off, whose flush_tlb_local() is native_flush_tlb_local. Only an NMI or an exception can
 * land between its CR3 read and write.
 */
export function* flushTlbMmRange(k: Exec): Path {
  getCpuVar(k.sys);
  k.cpu.irqsDisabled = true;
  yield* nativeFlushTlbLocal(k);
  localIrqEnable(k, 'flush_tlb_mm_range');
  putCpuVar(k.sys);
}
