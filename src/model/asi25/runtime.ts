// The ASI runtime of the 2025 design ("[PATCH RFC v2 NN/29] Address Space Isolation (ASI)", Brendan
// Jackman, 10 Jan 2025), statement by statement: ASI classes and their taint policies, a domain per
// mm and class (asi_init, asi_destroy), per-CPU curr_asi and asi_taints, per-task asi_state (target,
// intr_nest_depth), asi_enter, __asi_enter, asi_relax, asi_exit and the idtentry hooks
// asi_intr_enter and asi_intr_exit. Paths are generators as in asi/session.ts: each yield is a point
// where an interrupt, exception or NMI may land. The posted code's WARN_ONs are NO-WARN ghost
// events; a VM_BUG_ON or BUG_ON that fires is one too, and stops the CPU, as the oops would.
//
// What a domain maps is in ./map.ts (asi_map, asi_unmap, the global nonsensitive pgd, patches 09,
// 11, 12, 16) and ./alloc.ts (the page allocator's hooks, patches 14, 15); vmalloc's (patch 17) is
// in mm/vmalloc.ts; KVM's class and run loop (patches 07, 21) in ./kvm.ts; what the ops mean here
// in ./ops.ts. The userspace class (patch 25) is at the end of this file. Not modelled yet (issue
// 22): percpu-vm chunks (patch 18), switch_mm_irqs_off (patch 19; the model's tasks share the
// kernel's page tables, so a domain's user half, patch 24, is empty) and the taint flushes'
// mitigations (patches 26, 27). CR3 reads and writes under ASI (patches 20, 22) are in ./tlb.ts.

import { type AccessKind, type Cpu, KERNEL_PCID, accessOk, buildCr3, kernelCr3, writeCr3 } from '../x86/cpu.ts';
import { type Exec, type Path } from '../asi/session.ts';
import { drive } from '../x86/entry.ts';
import { KERNEL, allocFrames, freeAllocation, allocationOfFrame, tableChanged } from '../mm/memory.ts';
import { EEXIST, EINVAL, ENOMEM } from '../mm/kernel.ts';
import { entriesPerTable, formatVa } from '../mm/geometry.ts';
import { leaves } from '../mm/pagetable.ts';
import { _PAGE_GLOBAL, entryFlags, entryFrame, mkEntry } from '../mm/pte.ts';
import { type Log, log } from '../trace.ts';
import { type System, mutant } from '../system.ts';
import { ASI_GLOBAL_NONSENSITIVE, asiGlobalInit, asiGlobalMapKernel, copyGlobalNonsensitive } from './map.ts';
import { asiMapBootAllocations } from './alloc.ts';
import { pageblockNrPages } from './pageblock.ts';
import { type PcpLists, clonePcpLists, newPcpLists } from '../mm/pcp.ts';

// ---- include/asm-generic/asi.h (patch 03) ----------------------------------------------------

/**
 * enum asi_class_id (patches 03, 25), with the test class arch/x86/mm/asi_test.c registers in the
 * series' branch. Three classes fill the two PCID bits asi_pcid() gives them (class_id + 1).
 */
export const ASI_CLASS_KVM = 0;
export const ASI_CLASS_USERSPACE = 1;
export const ASI_CLASS_TEST = 2;
export const ASI_MAX_NUM_CLASSES = 3;
const ASI_CLASS_NAMES = ['KVM', 'userspace', 'TEST'];

// ---- arch/x86/include/asm/asi.h (patch 03) ---------------------------------------------------

export const ASI_TAINT_KERNEL_DATA = 1 << 0;
export const ASI_TAINT_USER_DATA = 1 << 1;
export const ASI_TAINT_GUEST_DATA = 1 << 2;
export const ASI_TAINT_OTHER_MM_DATA = 1 << 3;
export const ASI_TAINT_USER_CONTROL = 1 << 4;
export const ASI_TAINT_GUEST_CONTROL = 1 << 5;
export const ASI_TAINT_OTHER_MM_CONTROL = 1 << 6;
export const ASI_TAINTS_CONTROL_MASK = ASI_TAINT_USER_CONTROL | ASI_TAINT_GUEST_CONTROL | ASI_TAINT_OTHER_MM_CONTROL;
// As posted: ASI_TAINT_GUEST_DATA is in no mask but ASI_TAINTS_GUEST_MASK.
export const ASI_TAINTS_DATA_MASK = ASI_TAINT_KERNEL_DATA | ASI_TAINT_USER_DATA | ASI_TAINT_OTHER_MM_DATA;
export const ASI_TAINTS_GUEST_MASK = ASI_TAINT_GUEST_DATA | ASI_TAINT_GUEST_CONTROL;
export const ASI_TAINTS_USER_MASK = ASI_TAINT_USER_DATA | ASI_TAINT_USER_CONTROL;

/** struct asi_taint_policy. */
export interface TaintPolicy {
  /** Taints that need a flush when entering the domain, to protect it from prior domains. */
  readonly preventControl: number;
  /** Taints that need a flush when entering the domain, to protect former domains from it. */
  readonly protectData: number;
  /** Taints set when entering the domain. */
  readonly set: number;
}

/** struct asi: mm->asi[class_id], zeroed by asi_init_mm_state and again when its last reference goes. */
export interface Domain {
  /** asi->pgd: the frame of its first page (PGD_ALLOCATION_ORDER 1: two pages), or null. */
  pgd: number | null;
  mm: number;
  refCount: number;
  classId: number;
}

/** thread.asi_state (patches 03, 05). */
export interface TaskAsiState {
  /** The domain to enter when returning to process context: a domain key, or null (relaxed). */
  target: string | null;
  /** Interrupts and exceptions interrupting the critical section (patch 05). */
  intrNestDepth: number;
  /** current->mm: a process's mm, or the one a kernel thread uses (kthread_use_mm); 0 for none. */
  mm: number;
  /** A user process: it returns to user space, into its mm's userspace domain (patch 25); a kernel thread never does. */
  user: boolean;
}

/** What the 2025 runtime adds to the machine: plain data, copied with the System. */
export interface Asi25State {
  /** taint_policies[class_id]: null while the class is not initialised. */
  readonly policies: (TaintPolicy | null)[];
  /** Every mm's asi[] array, by domainKey(mm, class). */
  readonly domains: Map<string, Domain>;
  /** Per CPU: curr_asi (a domain key, or null on the unrestricted address space). */
  readonly currAsi: (string | null)[];
  /** Per CPU: asi_taints. */
  readonly taints: number[];
  /**
   * Ghost, per CPU: what has run there since its last data flush and since its last control flush,
   * whatever asi_taints says: 'kernel' (the kernel, unrestricted), 'user:M' (user space of mm M),
   * 'guest:M' (a guest of mm M's VMM). ASI-TAINT judges against it.
   */
  readonly exposed: { readonly data: readonly string[]; readonly control: readonly string[] }[];
  /**
   * Ghost, per CPU: inside one of the two windows the code documents, where curr_asi and CR3 may
   * disagree: __asi_enter between its curr_asi write and its CR3 write, asi_exit between its CR3
   * write and its curr_asi write. A nested path may close it early, and leaves them agreeing.
   */
  readonly cr3Window: ('asi_enter' | 'asi_exit' | null)[];
  /**
   * Ghost, per CPU: how many of asi_enter (from asi_set_target()) and __asi_enter (from its
   * curr_asi write to its data flush) are in progress, an interrupt's re-entry nested in the
   * first: a task there is tense and not yet on its target, flushed.
   */
  readonly enterWindow: number[];
  /** Per task, by task id. */
  readonly tasks: Map<number, TaskAsiState>;
  /** The number the next mm_alloc() gives its mm (0 is no mm, init_mm). */
  nextMm: number;
  /** The VMM processes' mms, by memcg (./kvm.ts): VMs made in one memcg share a VMM. */
  readonly vmms: Map<number, number>;
  /** The mms whose KVM domain an asi_create op made (./ops.ts): the ops name only those, as KVM's are KVM's. */
  readonly callerMms: Set<number>;
  /** mm_users of each process's mm: the tasks using it. Its last one gone, __mmdrop destroys its userspace domain. */
  readonly mmUsers: Map<number, number>;
  /** PageGlobalNonSensitive (patch 14), by allocation: true where it was mapped as one block, false page by page. */
  readonly globalNonsensitive: Map<number, boolean>;
  /** asi_async_free_cpu_state.to_free (patch 14): allocations freed, not yet unmapped and given back. */
  readonly asyncFree: number[];
  /** Ghost: frames still holding the data of a sensitive allocation that freed them, by that allocation's name. */
  readonly staleData: Map<number, string>;
  /** PB_nonsensitive of each pageblock (the September direct map, ./pageblock.ts): 0 at boot, sensitive. */
  readonly pbNonsensitive: Uint8Array;
  /** The September allocator's per-CPU page lists (../mm/pcp.ts): empty at boot. */
  readonly pcp: PcpLists;
}

export function domainKey(mm: number, classId: number): string {
  return `mm${mm}/${ASI_CLASS_NAMES[classId] ?? classId}`;
}

/**
 * The runtime at boot: no class initialised, every CPU unrestricted, every task relaxed. The
 * kernel maps itself without _PAGE_GLOBAL (patch 03: "__default_kernel_pte_mask &= ~_PAGE_GLOBAL"
 * with CONFIG_MITIGATION_ADDRESS_SPACE_ISOLATION): the model attaches the runtime to a booted
 * system, so what boot mapped loses the bit here, and kernelMap masks it from then on. Then
 * asi_global_init (patches 12, 16) and what patches 14 and 17 map of what boot allocated.
 */
export function asi25Boot(sys: System): void {
  dropGlobal(sys);
  for (const cpu of sys.cpus) for (const key of [...cpu.tlb.keys()]) if (key.startsWith('G:')) cpu.tlb.delete(key);
  sys.asi25 = {
    policies: Array.from({ length: ASI_MAX_NUM_CLASSES }, () => null),
    domains: new Map([[ASI_GLOBAL_NONSENSITIVE, asiGlobalInit(sys)]]),
    currAsi: sys.cpus.map(() => null),
    taints: sys.cpus.map(() => (sys.options.bootTaintsKernelData ? ASI_TAINT_KERNEL_DATA : 0)),
    // Boot ran the kernel unrestricted on every CPU.
    exposed: sys.cpus.map(() => ({ data: ['kernel'], control: [] })),
    cr3Window: sys.cpus.map(() => null),
    enterWindow: sys.cpus.map(() => 0),
    tasks: new Map([...sys.kernel.tasks.keys()].map((t) => [t, asiInitThreadState()])),
    nextMm: 1,
    vmms: new Map(),
    callerMms: new Set(),
    mmUsers: new Map(),
    globalNonsensitive: new Map(),
    asyncFree: [],
    staleData: new Map(),
    pbNonsensitive: new Uint8Array(Math.ceil(sys.kernel.layout.physFrames / pageblockNrPages(sys))),
    pcp: newPcpLists(sys.cpus.length),
  };
  const k: Exec = { sys, cpu: sys.cpus[0], out: [] };
  asiGlobalMapKernel(k);
  asiMapBootAllocations(k);
  // start_kernel's asi_init_userspace_class; the tasks boot made are processes (init, and one per
  // CPU to run there), each with an mm; each CPU then returns to user space in its task.
  asiInitUserspaceClass(sys, k.out);
  for (const task of sys.kernel.tasks.keys()) asiNewProcessMm(k, task);
  for (const cpu of sys.cpus) {
    const c: Exec = { sys, cpu, out: [] };
    drive(c, 'exit_to_user_mode', returnToUserMode(c));
  }
}

function dropGlobal(sys: System): void {
  for (const l of leaves(sys.g, sys.tables, sys.kernel.pgd)) {
    const entries = sys.tables.get(l.table)!;
    const e = entries[l.index];
    if (!(entryFlags(e) & _PAGE_GLOBAL)) continue;
    entries[l.index] = mkEntry(entryFrame(e), entryFlags(e) & ~_PAGE_GLOBAL);
    tableChanged(sys.mem, l.table);
  }
}

export function cloneAsi25(a: Asi25State): Asi25State {
  return {
    policies: [...a.policies],
    domains: new Map([...a.domains].map(([k, d]) => [k, { ...d }])),
    currAsi: [...a.currAsi],
    taints: [...a.taints],
    exposed: a.exposed.map((e) => ({ data: [...e.data], control: [...e.control] })),
    cr3Window: [...a.cr3Window],
    enterWindow: [...a.enterWindow],
    tasks: new Map([...a.tasks].map(([t, s]) => [t, { ...s }])),
    nextMm: a.nextMm,
    vmms: new Map(a.vmms),
    callerMms: new Set(a.callerMms),
    mmUsers: new Map(a.mmUsers),
    globalNonsensitive: new Map(a.globalNonsensitive),
    asyncFree: [...a.asyncFree],
    staleData: new Map(a.staleData),
    pbNonsensitive: a.pbNonsensitive.slice(),
    pcp: clonePcpLists(a.pcp),
  };
}

/** asi_init_thread_state (patch 05), from arch_dup_task_struct: a kernel thread until it gets an mm. */
export function asiInitThreadState(): TaskAsiState {
  return { target: null, intrNestDepth: 0, mm: 0, user: false };
}

export function rt(sys: System): Asi25State {
  if (!sys.asi25) throw new Error('model bug: the 2025 ASI runtime runs on a system booted without it');
  return sys.asi25;
}

function taskState(k: Exec): TaskAsiState {
  const a = rt(k.sys);
  const task = k.sys.kernel.current[k.cpu.id];
  let s = a.tasks.get(task);
  if (!s) a.tasks.set(task, (s = asiInitThreadState()));
  return s;
}

/** WARN_ON and friends: the condition, recorded when it holds (with the CPU, on a path that runs on one). */
export function warnOn(k: { sys: System; out: Log; cpu?: Cpu }, cond: boolean, what: string): boolean {
  if (!cond) return false;
  k.sys.ghost.events.push({ invariant: 'NO-WARN', message: `${k.cpu ? `cpu${k.cpu.id}: ` : ''}${what} fired (RFC v2 2025)` });
  log(k.out, 'pr_err', `WARNING: ${what}`);
  return true;
}

/** VM_BUG_ON and BUG_ON: the oops ends everything the CPU was doing. */
export function bugOn(k: Exec, cond: boolean, what: string): boolean {
  if (!cond) return false;
  warnOn(k, true, what);
  k.cpu.dead = `kernel BUG: ${what}`;
  return true;
}

// ---- arch/x86/mm/asi.c (patch 03) -----------------------------------------------------------

function asiClassInitialized(k: { sys: System; out: Log }, classId: number): boolean {
  if (warnOn(k, !(classId >= 0 && classId < ASI_MAX_NUM_CLASSES), `WARN_ON(!asi_class_id_valid(${classId}))`)) return false;
  return rt(k.sys).policies[classId] !== null;
}

export function asiInitClass(sys: System, classId: number, policy: TaintPolicy, out: Log): number {
  const k = { sys, out };
  if (asiClassInitialized(k, classId)) return EEXIST;
  warnOn(k, !(policy.preventControl & ASI_TAINTS_CONTROL_MASK), 'WARN_ON(!(taint_policy->prevent_control & ASI_TAINTS_CONTROL_MASK))');
  warnOn(k, !(policy.protectData & ASI_TAINTS_DATA_MASK), 'WARN_ON(!(taint_policy->protect_data & ASI_TAINTS_DATA_MASK))');
  rt(sys).policies[classId] = policy;
  return 0;
}

export function asiUninitClass(sys: System, classId: number, out: Log): void {
  if (!asiClassInitialized({ sys, out }, classId)) return;
  rt(sys).policies[classId] = null;
}

function domainOf(a: Asi25State, mm: number, classId: number): Domain {
  const key = domainKey(mm, classId);
  let d = a.domains.get(key);
  // asi_init_mm_state: memset(mm->asi, 0, ...) when the mm was made.
  if (!d) a.domains.set(key, (d = { pgd: null, mm: 0, refCount: 0, classId: 0 }));
  return d;
}

/**
 * asi_init (patches 03, 04): a reference to mm's domain of the class, made on the first; `domain`
 * is its key (the RFC's *out_asi), undefined on error. mm->asi_init_lock is held throughout.
 */
export function asiInit(k: Exec, mm: number, classId: number): { readonly err: number; readonly domain?: string } {
  if (warnOn(k, !asiClassInitialized(k, classId), 'WARN_ON(!asi_class_initialized(class_id))')) return { err: EINVAL };
  const asi = domainOf(rt(k.sys), mm, classId);
  let err = 0;
  if (asi.refCount++ === 0) {
    if (bugOn(k, asi.pgd !== null, 'BUG_ON(asi->pgd != NULL)')) return { err: EINVAL };
    // __get_free_pages(GFP_KERNEL_ACCOUNT | __GFP_ZERO, PGD_ALLOCATION_ORDER): two pages, as KPTI's pgd.
    const pages = allocFrames(k.sys.mem, { kind: 'pgtable', owner: KERNEL, name: `pgd of ${domainKey(mm, classId)}`, pages: 2, contiguousAlign: 2, sensitive: false, level: 0 });
    if (!pages) err = ENOMEM;
    else {
      for (const f of pages.frames) {
        k.sys.tables.set(f, new Int32Array(entriesPerTable(k.sys.g)));
        tableChanged(k.sys.mem, f);
      }
      asi.pgd = pages.frames[0];
      asi.mm = mm;
      asi.classId = classId;
      copyGlobalNonsensitive(k.sys, asi.pgd);
    }
  }
  if (err) {
    __asiDestroy(k, asi);
    return { err };
  }
  return { err, domain: domainKey(mm, classId) };
}

/** __asi_destroy (patch 04): drops a reference; the last frees the pgd and zeroes struct asi. */
function __asiDestroy(k: Exec, asi: Domain): void {
  warnOn(k, asi.refCount <= 0, 'WARN_ON_ONCE(asi->ref_count <= 0)');
  if (--asi.refCount > 0) return;
  // free_pages((ulong)asi->pgd, PGD_ALLOCATION_ORDER): nothing for a NULL pgd (asi_init's error path).
  const pages = asi.pgd === null ? undefined : allocationOfFrame(k.sys.mem, asi.pgd);
  for (const f of pages?.frames ?? []) {
    k.sys.tables.delete(f);
    tableChanged(k.sys.mem, f);
  }
  if (pages) freeAllocation(k.sys.mem, pages.id);
  Object.assign(asi, { pgd: null, mm: 0, refCount: 0, classId: 0 });
}

/** asi_destroy (patches 03, 04): under mm->asi_init_lock. */
export function asiDestroy(k: Exec, key: string): void {
  const asi = rt(k.sys).domains.get(key);
  if (!asi) return;
  if (warnOn(k, !asiClassInitialized(k, asi.classId), 'WARN_ON(!asi_class_initialized(asi->class_id))')) return;
  __asiDestroy(k, asi);
}

/** maybe_flush_control: on entering `next` (null: the unrestricted address space). */
function maybeFlushControl(a: Asi25State, cpu: number, next: Domain | null): void {
  let taints = a.taints[cpu];
  taints &= next ? a.policies[next.classId]!.preventControl : ASI_TAINTS_CONTROL_MASK;
  if (!taints) return;
  // "For now we just pretend, clear the taints."
  a.taints[cpu] &= ~ASI_TAINTS_CONTROL_MASK;
  a.exposed[cpu] = { ...a.exposed[cpu], control: [] };
}

/** maybe_flush_data: on entering `next`. */
function maybeFlushData(a: Asi25State, cpu: number, next: Domain): void {
  const taints = a.taints[cpu] & a.policies[next.classId]!.protectData;
  if (!taints) return;
  a.taints[cpu] &= ~ASI_TAINTS_DATA_MASK;
  a.exposed[cpu] = { ...a.exposed[cpu], data: [] };
}

/** Ghost: `what` ran on the CPU (see Asi25State.exposed); user space and guests reach both kinds of state, the kernel data. */
export function exposed(a: Asi25State, cpu: number, what: string): void {
  const e = a.exposed[cpu];
  const add = (l: readonly string[]) => (l.includes(what) ? l : [...l, what].sort());
  a.exposed[cpu] = { data: add(e.data), control: what === 'kernel' ? e.control : add(e.control) };
}

/**
 * asi_handle_switch_mm (patch 03), from switch_mm_irqs_off when the CPU goes to another mm: "here
 * we squash the per-domain (guest/userspace) taints into a general "other MM" taint".
 */
function asiHandleSwitchMm(k: Exec): void {
  const a = rt(k.sys);
  const cpu = k.cpu.id;
  const taints = a.taints[cpu];
  let newTaints = 0;
  if (taints & ASI_TAINTS_CONTROL_MASK) newTaints |= ASI_TAINT_OTHER_MM_CONTROL;
  if (taints & ASI_TAINTS_DATA_MASK) newTaints |= ASI_TAINT_OTHER_MM_DATA;
  a.taints[cpu] |= newTaints;
  a.taints[cpu] &= ~(ASI_TAINTS_GUEST_MASK | ASI_TAINTS_USER_MASK);
}

/**
 * switch_mm_irqs_off (patches 03, 19) when `next` runs in another mm than `prev`: asi_exit() "to
 * stabilize CR3" (context_switch's own has run already), then asi_handle_switch_mm(), which, as
 * its comment says, is "pointless in practice": that asi_exit() flushed every control taint, and
 * tainted the kernel's data. The model's mms share the kernel's page tables, so CR3 stays.
 */
export function* switchMmIrqsOff(k: Exec, prev: number, next: number): Path {
  const a = rt(k.sys);
  if (a.tasks.get(prev)?.mm === a.tasks.get(next)?.mm) return;
  yield* asiExit(k);
  asiHandleSwitchMm(k);
}

/**
 * X86_CR3_ASI_PCID_BITS_SHIFT (patch 06): the two PCID bits below X86_CR3_PTI_PCID_USER_BIT, or the
 * top two with PTI off, as ASI turns it off ("x86/pti: Disable PTI when ASI is on").
 */
const X86_CR3_ASI_PCID_BITS_SHIFT = 10;

/** asi_pcid (patch 06): kern_pcid(asid) | ((asi->class_id + 1) << X86_CR3_ASI_PCID_BITS_SHIFT). */
export function asiPcid(d: Domain): number {
  return KERNEL_PCID | ((d.classId + 1) << X86_CR3_ASI_PCID_BITS_SHIFT);
}

/** A PCID of a restricted address space: one with class bits (asi_pcid), which the unrestricted one never has. */
export function isRestrictedPcid(pcid: number): boolean {
  return pcid >> X86_CR3_ASI_PCID_BITS_SHIFT !== 0;
}

/** The CR3 curr_asi names on a CPU: its domain's restricted one, or the unrestricted kernel CR3. */
export function currAsiCr3(sys: System, cpu: number): number {
  const key = rt(sys).currAsi[cpu];
  const d = key === null ? undefined : rt(sys).domains.get(key);
  return d ? domainCr3(d) : kernelCr3(sys);
}

/** The CR3 __asi_enter writes: build_cr3_pcid_noinstr(target->pgd, asi_pcid(), lam, false) (patch 06). */
export function domainCr3(d: Domain): number {
  return buildCr3(d.pgd ?? 0, asiPcid(d));
}

/** __asi_enter (patches 03, 05): the CPU onto the current task's target, if it is not there yet. */
export function* __asiEnter(k: Exec): Path {
  const a = rt(k.sys);
  const cpu = k.cpu.id;
  const s = taskState(k);
  if (bugOn(k, k.cpu.preemptCount === 0 && !k.cpu.irqsDisabled, 'VM_BUG_ON(preemptible())')) return;
  if (bugOn(k, s.intrNestDepth !== 0, 'VM_BUG_ON(current->thread.asi_state.intr_nest_depth != 0)')) return;
  if (!s.target || s.target === a.currAsi[cpu]) return;
  const target = a.domains.get(s.target)!;
  a.enterWindow[cpu]++;
  // "Must update curr_asi before writing CR3 to ensure an interrupting asi_exit sees that it may
  // need to switch address spaces."
  const cr3First = mutant(k.sys, 'asi25-cr3-before-curr-asi');
  if (!cr3First) {
    a.currAsi[cpu] = s.target;
    a.cr3Window[cpu] = 'asi_enter';
    yield 'this_cpu_write(curr_asi, target)';
  }
  maybeFlushControl(a, cpu, target);
  writeCr3(k.cpu, domainCr3(target));
  a.cr3Window[cpu] = null;
  yield 'write_cr3(asi_cr3)';
  if (cr3First) a.currAsi[cpu] = s.target;
  if (!mutant(k.sys, 'asi25-enter-skips-data-flush')) maybeFlushData(a, cpu, target);
  a.taints[cpu] |= a.policies[target.classId]!.set;
  a.enterWindow[cpu]--;
}

/** asi_enter (patches 03, 05): set the target and enter it; the critical section begins. */
export function* asiEnter(k: Exec, key: string): Path {
  const s = taskState(k);
  warnOn(k, s.intrNestDepth !== 0, 'VM_WARN_ON_ONCE(asi_intr_nest_depth())');
  // "Should not have an asi_enter() without a prior asi_relax()."
  warnOn(k, s.target !== null, 'VM_WARN_ON_ONCE(asi_get_target(current))');
  s.target = key;
  const a = rt(k.sys);
  const cpu = k.cpu.id;
  a.enterWindow[cpu]++;
  yield 'asi_set_target(current, asi)';
  yield* __asiEnter(k);
  a.enterWindow[cpu]--;
}

/** asi_relax (patches 03, 05): the critical section ends; the address space stays. */
export function asiRelax(k: Exec): void {
  const s = taskState(k);
  warnOn(k, s.intrNestDepth !== 0, 'VM_WARN_ON_ONCE(asi_intr_nest_depth())');
  s.target = null;
}

/** asi_exit (patches 03, 05): onto the unrestricted address space now, if restricted. */
export function* asiExit(k: Exec): Path {
  const a = rt(k.sys);
  const cpu = k.cpu.id;
  k.cpu.preemptCount++;
  if (a.currAsi[cpu] !== null) {
    warnOn(k, asiInCriticalSection(k), 'WARN_ON_ONCE(asi_in_critical_section())');
    maybeFlushControl(a, cpu, null);
    // "Tainting first makes reentrancy easier to reason about."
    if (!mutant(k.sys, 'asi25-exit-skips-kernel-taint')) a.taints[cpu] |= ASI_TAINT_KERNEL_DATA;
    const currFirst = mutant(k.sys, 'asi25-exit-clears-curr-asi-first');
    if (currFirst) {
      a.currAsi[cpu] = null;
      yield 'this_cpu_write(curr_asi, NULL)';
    }
    writeCr3(k.cpu, kernelCr3(k.sys));
    exposed(a, cpu, 'kernel');
    if (!currFirst) a.cr3Window[cpu] = 'asi_exit';
    yield 'write_cr3(unrestricted_cr3)';
    // "Must not update curr_asi until after CR3 write, otherwise a re-entrant call might not enter
    // this branch."
    a.currAsi[cpu] = null;
    a.cr3Window[cpu] = null;
  }
  k.cpu.preemptCount--;
}

/** asi_intr_enter (patch 05): at every idtentry, before irqentry_enter. */
export function asiIntrEnter(k: Exec): void {
  const s = taskState(k);
  if (s.target !== null && !mutant(k.sys, 'asi25-intr-enter-skips-depth')) s.intrNestDepth++;
}

/** asi_intr_exit (patch 05): after irqentry_exit; the outermost return re-enters the target. */
export function* asiIntrExit(k: Exec): Path {
  const s = taskState(k);
  if (s.target === null) return;
  if (--s.intrNestDepth === 0 && !mutant(k.sys, 'asi25-intr-exit-skips-reenter')) yield* __asiEnter(k);
}

/**
 * warn_if_bad_asi_pf (patch 10): "It's a bug to access sensitive data from the critical section":
 * a fault at depth 1 (the #PF's own) in a tense task, on memory its target does not map.
 */
export function warnIfBadAsiPf(k: Exec, va: number, access: AccessKind): void {
  const s = taskState(k);
  const target = s.target === null ? undefined : rt(k.sys).domains.get(s.target);
  if (!target || s.intrNestDepth !== 1 || (target.pgd !== null && accessOk(k.sys, target.pgd, va, access))) return;
  warnOn(k, true, `VM_WARN_ONCE: ASI-sensitive data access from critical section, addr=${formatVa(k.sys.g, va)} class=${ASI_CLASS_NAMES[target.classId]}`);
}

// ---- the accessors the series and its tests use ----------------------------------------------

/** asi_is_restricted: this CPU is on a domain's page table. */
export function asiIsRestricted(sys: System, cpu: Cpu): boolean {
  return rt(sys).currAsi[cpu.id] !== null;
}

/** asi_is_relaxed: the current task has no target. */
export function asiIsRelaxed(k: Exec): boolean {
  return taskState(k).target === null;
}

export function asiIntrNestDepth(k: Exec): number {
  return taskState(k).intrNestDepth;
}

/** asi_in_critical_section: tense, and not inside an interrupt of the critical section. */
export function asiInCriticalSection(k: Exec): boolean {
  const s = taskState(k);
  return s.target !== null && s.intrNestDepth === 0;
}

// ---- the userspace class (patch 25) ----------------------------------------------------------

/** asi_init_userspace_class (patch 25), from start_kernel. */
export function asiInitUserspaceClass(sys: System, out: Log): void {
  const policy = {
    protectData: ASI_TAINT_KERNEL_DATA | ASI_TAINT_OTHER_MM_DATA,
    preventControl: ASI_TAINT_GUEST_CONTROL | ASI_TAINT_OTHER_MM_CONTROL,
    set: ASI_TAINT_USER_CONTROL | ASI_TAINT_USER_DATA,
  };
  warnOn({ sys, out }, asiInitClass(sys, ASI_CLASS_USERSPACE, policy, out) !== 0, 'WARN_ON(err) in asi_init_userspace_class');
}

/** mm_alloc(): a new mm with the userspace domain mm_init gives it (patch 25's asi_init_mm_state): its number, or -errno. */
export function mmAlloc(k: Exec): number {
  const mm = rt(k.sys).nextMm++;
  return asiInit(k, mm, ASI_CLASS_USERSPACE).err || mm;
}

/** A process's new mm (mmAlloc) used by `task`: the mm's number, or -errno (the fork fails). */
export function asiNewProcessMm(k: Exec, task: number): number {
  const mm = mmAlloc(k);
  if (mm >= 0) asiUseMm(k.sys, task, mm);
  return mm;
}

/** A task (a new process, or a thread of one) runs in user space on `mm`. */
export function asiUseMm(sys: System, task: number, mm: number): void {
  const a = rt(sys);
  a.mmUsers.set(mm, (a.mmUsers.get(mm) ?? 0) + 1);
  a.tasks.set(task, { ...asiInitThreadState(), mm, user: true });
}

/** A task exits: mmput, and on the last user __mmdrop's asi_destroy_userspace (patch 25). */
export function asiTaskExit(k: Exec, task: number): void {
  const a = rt(k.sys);
  const s = a.tasks.get(task);
  a.tasks.delete(task);
  if (!s?.user) return;
  const users = (a.mmUsers.get(s.mm) ?? 1) - 1;
  a.mmUsers.set(s.mm, users);
  if (users > 0) return;
  a.mmUsers.delete(s.mm);
  asiDestroyUserspace(k, s.mm);
}

/** asi_destroy_userspace (patch 25). */
export function asiDestroyUserspace(k: Exec, mm: number): void {
  bugOn(k, !asiClassInitialized(k, ASI_CLASS_USERSPACE), 'VM_BUG_ON(!asi_class_initialized(ASI_CLASS_USERSPACE))');
  asiDestroy(k, domainKey(mm, ASI_CLASS_USERSPACE));
}

/** asi_enter_userspace (patch 25), at the end of syscall_exit_to_user_mode: the critical section of user space begins. */
export function* asiEnterUserspace(k: Exec): Path {
  yield* asiEnter(k, domainKey(taskState(k).mm, ASI_CLASS_USERSPACE));
}

/**
 * The kernel entry from user space that begins an op on a CPU: a system call, whose
 * syscall_enter_from_user_mode ends the critical section (patch 25's asi_relax); an interrupt's
 * entry is the idtentry frame's asi_intr_enter.
 */
export function syscallEnterFromUserMode(k: Exec): void {
  if (taskState(k).user) asiRelax(k);
}

/** The current task runs in user space: in its critical section, not inside an interrupt of it. */
export function inUserMode(k: Exec): boolean {
  const s = taskState(k);
  return !s.user || (s.target !== null && s.intrNestDepth === 0);
}

/**
 * The current task goes back to user space: through the returns of the interrupts it was preempted
 * in (each asi_intr_exit, the outermost re-entering its target), or, from a system call,
 * syscall_exit_to_user_mode's asi_enter_userspace.
 */
export function* returnToUserMode(k: Exec): Path {
  const s = taskState(k);
  if (!s.user) return;
  // exit_to_user_mode and the interrupt returns run with IRQs off; user space runs with them on.
  k.cpu.irqsDisabled = true;
  // (A depth without a target is no interrupt of a critical section: asi_relax WARNed as it made one.)
  while (s.intrNestDepth > 0 && s.target !== null && !k.cpu.dead) yield* asiIntrExit(k);
  if (s.target === null && !k.cpu.dead) yield* asiEnterUserspace(k);
  k.cpu.irqsDisabled = false;
  if (!k.cpu.dead) exposed(rt(k.sys), k.cpu.id, `user:${s.mm}`);
}

/**
 * A task running in user space taken off its CPU: only an interrupt can do that (the reschedule
 * IPI or the timer), so it is inside one, whose return re-enters its critical section.
 */
export function preemptFromUserMode(k: Exec): void {
  const s = taskState(k);
  if (s.user && s.target !== null && s.intrNestDepth === 0) s.intrNestDepth++;
}
