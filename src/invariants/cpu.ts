// Invariants of the CPUs (SPEC §3): what CR3 a CPU runs on, the session's consistency, the stack
// while isolated, the entry path, progress and the kernel's own rules. Events the paths record
// mid-step (a handler body on the wrong CR3, a double fault, a fault loop) are read from the ghost;
// the rest is checked on the state between ops.

import { type Cpu, ASI_SESSION_STATE_ACTIVE, ASI_SESSION_STATE_INACTIVE, SESSION_STATE_NAMES, cr3Root, formatCr3 } from '../model/x86/cpu.ts';
import { PAGE_SIZE, formatVa } from '../model/mm/geometry.ts';
import { THREAD_PAGES, taskStackVa } from '../model/mm/kernel.ts';
import { ASI_MAP_CURRENT_TASK } from '../model/asi/asi.ts';
import { entryCode } from '../model/x86/entry.ts';
import { walk } from '../model/mm/pagetable.ts';
import { asiCr3 } from '../model/asi/session.ts';
import type { Asi, System } from '../model/system.ts';
import { type Invariant, ghostEvent } from './types.ts';
import { firstAsi, perAsi, sinceVersion } from './views.ts';

function live(sys: System): Cpu[] {
  return sys.cpus.filter((c) => !c.dead);
}

export function isolatedIn(sys: System, cpu: Cpu): Asi | undefined {
  if (cpu.session.state !== ASI_SESSION_STATE_ACTIVE) return undefined;
  const root = cr3Root(cpu.cr3);
  for (const a of sys.asis.values()) if (a.pgd === root) return a;
  return undefined;
}

/** A CPU that is not isolated runs on the kernel CR3. */
function offKernelCr3(sys: System): string | undefined {
  for (const c of live(sys)) {
    if (c.session.state !== ASI_SESSION_STATE_ACTIVE && cr3Root(c.cr3) !== sys.kernel.pgd) return `cpu${c.id} is not isolated (session ${SESSION_STATE_NAMES[c.session.state]}) but runs on cr3 ${formatCr3(sys, c.cr3)}`;
  }
  return undefined;
}

export const CR3_RESTORED: Invariant = {
  id: 'CR3-RESTORED',
  statement: 'Every handler body, at any nesting and any micro-step, runs on the kernel CR3; a CPU that is not isolated runs on the kernel CR3.',
  source: 'RFC v2 patch 02 (ASI_START_ABORT in interrupt_entry, error_entry, paranoid_entry)',
  // The 2025 design runs handlers on the restricted address space by design (its patch 05).
  design: 'asi-2019',
  // Inside an op CR3 and the session change one statement apart (asi_enter sets ACTIVE before
  // load_cr3); handler bodies, where it matters, are judged at their first micro-step (the ghost).
  check: (sys, phase = 'between-ops') => ghostEvent(sys, 'CR3-RESTORED') ?? (phase === 'between-ops' ? offKernelCr3(sys) : undefined),
};

/** What a session may look like between ops, when no handler runs. */
function sessionBetweenOps(sys: System, c: Cpu): string | undefined {
  const s = c.session;
  const at = `cpu${c.id}`;
  if (s.retryAbort) return `${at}: retry_abort is still set after the op`;
  if (s.abortDepth !== 0) return `${at}: abort_depth is ${s.abortDepth} with no handler running`;
  if (s.state === ASI_SESSION_STATE_INACTIVE) return s.asi !== null || s.task !== null ? `${at}: INACTIVE session still names asi#${s.asi}, task#${s.task}` : undefined;
  if (s.state !== ASI_SESSION_STATE_ACTIVE) return `${at}: session left ${SESSION_STATE_NAMES[s.state]} after every handler returned`;
  const asi = s.asi === null ? undefined : sys.asis.get(s.asi);
  if (!asi) return `${at}: ACTIVE session on asi#${s.asi}, which does not exist (asi_destroy freed it under the CPU)`;
  if (s.task !== sys.kernel.current[c.id]) return `${at}: ACTIVE session of task#${s.task} while task#${sys.kernel.current[c.id]} runs`;
  if (c.cr3 !== asiCr3(sys, asi)) return `${at}: ACTIVE session on asi#${asi.id} but cr3 is ${formatCr3(sys, c.cr3)}`;
  return undefined;
}

export const SESSION: Invariant = {
  id: 'SESSION',
  statement: 'Between ops a session is INACTIVE with nothing cached, or ACTIVE on its own live ASI and task with CR3 on that ASI; an ASI page table is only loaded while ACTIVE or inside the barrier window.',
  source: 'RFC v2 patches 01, 02 (asi_session, asi_barrier_begin/end), 21 (isolation_cr3)',
  // The session's fields change one statement at a time inside enter, exit and abort: only their
  // resting state is judged; what a path does wrong on the way is recorded as it happens (the ghost).
  design: 'asi-2019',
  check: (sys, phase = 'between-ops') => ghostEvent(sys, 'SESSION') ?? (phase === 'between-ops' ? live(sys).map((c) => sessionBetweenOps(sys, c)).find((m) => m !== undefined) : undefined),
};

function maps(sys: System, asi: Asi, va: number): boolean {
  return walk(sys.g, sys.tables, asi.pgd, va).ok;
}

export const STACK: Invariant = {
  id: 'STACK',
  statement: "While a CPU is isolated its current stack (and task, with ASI_MAP_CURRENT_TASK) is mapped in the ASI; no task's stack stays mapped by asi_enter once that task has left the session.",
  source: 'RFC v2 patches 15, 16 (asi_enter/asi_exit map and unmap current->stack and current)',
  design: 'asi-2019',
  check(sys, phase = 'between-ops') {
    // An interrupt may arrive at any micro-step and push its frame on the current stack: the stack
    // must be mapped wherever the CPU is isolated, inside an op too.
    for (const c of live(sys)) {
      const asi = isolatedIn(sys, c);
      if (!asi) continue;
      const t = sys.kernel.tasks.get(sys.kernel.current[c.id])!;
      for (let p = 0; p < THREAD_PAGES; p++) {
        const va = taskStackVa(sys, t) + p * PAGE_SIZE;
        if (!maps(sys, asi, va)) return `cpu${c.id} runs isolated in asi#${asi.id} but its stack page ${formatVa(sys.g, va)} (task#${t.id}) is not mapped there`;
      }
      if (asi.mappingFlags & ASI_MAP_CURRENT_TASK && !maps(sys, asi, t.structVa)) return `cpu${c.id} runs isolated in asi#${asi.id} with ASI_MAP_CURRENT_TASK but task#${t.id} is not mapped there`;
    }
    // asi_exit ends the session before it unmaps the stack: a stale stack is judged between ops.
    if (phase === 'micro-step') return undefined;
    // A session (of any CPU, a dead one included: its state is frozen) that still names the task keeps it.
    const inSession = (asi: Asi, task: number) => sys.cpus.some((c) => c.session.asi === asi.id && c.session.task === task);
    for (const asi of sys.asis.values()) {
      for (const r of asi.ranges) {
        if (typeof r.madeBy !== 'number') continue;
        const owner = [...sys.kernel.tasks.values()].find((t) => taskStackVa(sys, t) === r.ptr || t.structVa === r.ptr);
        if (owner && !inSession(asi, owner.id)) return `asi#${asi.id} still maps ${r.ptr === owner.structVa ? 'the task_struct' : 'the stack'} of task#${owner.id} (mapped by asi_enter on cpu${r.madeBy}) after it left isolation`;
      }
    }
    return undefined;
  },
};

/** Every ASI maps the entry code of every CPU. */
function entryUnmapped(sys: System, asi: Asi): string | undefined {
  for (let cpu = 0; cpu < sys.config.cpus; cpu++) {
    for (const n of entryCode(sys, cpu)) if (!maps(sys, asi, n.va)) return `asi#${asi.id} does not map ${n.what} (${formatVa(sys.g, n.va)}): an interrupt while isolated in it double-faults`;
  }
  return undefined;
}

export const ENTRY_MAPPED: Invariant = {
  id: 'ENTRY-MAPPED',
  statement: 'Everything interrupt entry and the abort path touch before switching CR3 is mapped in every ASI: no double fault.',
  source: 'RFC v2 patch 15 (asi_init_mapping: kernel image, cpu_entry_area, cpu_asi_session)',
  check: (sys) => ghostEvent(sys, 'ENTRY-MAPPED') ?? firstAsi(sys, entryUnmapped),
  // The entry code's addresses are fixed at boot: an ASI's verdict changes only with its tree.
  incremental: (views) => {
    const unmapped = perAsi(entryUnmapped, (s, asi) => [views.tree(s, asi.pgd).gen], false);
    const tables = sinceVersion((sys) => firstAsi(sys, unmapped));
    return (sys) => ghostEvent(sys, 'ENTRY-MAPPED') ?? tables(sys);
  },
};

export const PROGRESS: Invariant = {
  id: 'PROGRESS',
  statement:
    'A fault taken while isolated, or in a handler that aborted isolation, makes progress: no fault loop, no hang. No CPU waits for a lock it holds itself, and no two CPUs wait for each other (an IPI sender spinning with IRQs off on a CPU that spins for its IPI in turn, a lock held by a CPU waiting for the taker); the report gives the wait-for chain.',
  source: 'RFC v2 patch 03 (asi_fault reports the fault handled and the access is retried); 5.2 kernel/smp.c (smp_call_function_many waits for every target), spinlocks',
  check: (sys) => ghostEvent(sys, 'PROGRESS'),
};

export const KERNEL_RULES: Invariant = {
  id: 'KERNEL-RULES',
  statement: 'No sleeping allocation in atomic context, no IPI sent and waited for with IRQs off, preempt_count balanced at schedule(); in NMI context no spinlock, allocation, free or IPI.',
  source: 'kernel rules (might_sleep, lockdep, preempt_count) applied to RFC v2 patches 01-03, 06, 10, 14, 15',
  check: (sys) => ghostEvent(sys, 'KERNEL-RULES'),
};

export const NO_UAF: Invariant = {
  id: 'NO-UAF',
  statement:
    'Kernel code uses only live memory: a pointer it read from shared data (kvm->memslots[i], kvm->buses[i]) is dereferenced or mapped only while the object it named then is still allocated, whatever another CPU did in between.',
  source: 'RFC v2 patch 26 (vcpu_isolation_enter) with 5.2 vcpu_enter_guest (srcu_read_unlock before it) and synchronize_srcu',
  check: (sys) => ghostEvent(sys, 'NO-UAF'),
};
