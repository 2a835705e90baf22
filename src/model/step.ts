// One operation applied to the system: the kernel call it names, its return value and what the
// modelled code logged. Bad arguments give the RFC's error codes; nothing here throws on user input.

import { type Allocation, KERNEL, stepBegins } from './mm/memory.ts';
import { type Log, log, onCpu } from './trace.ts';
import { type ApiCall, type Asi, type Config, type System, cloneSystem, designOf, newGhost } from './system.ts';
import { type Racing, RacerWaits, waitForTask } from './x86/smp.ts';
import { ASI_SESSION_STATE_INACTIVE, cr3Root } from './x86/cpu.ts';
import { KVM_MAX_SLOT_PAGES, kvmCreateVcpu, kvmCreateVm, kvmDestroyVm, kvmIoBusChange, kvmSetMemoryRegion } from './kvm/vm.ts';
import { kvmRun, kvmRunCalled, kvmRunReturned, vcpuThreadOn } from './kvm/run.ts';
import { checkSchedulable, processContext, spinLock, spinUnlock } from './x86/context.ts';
import { flushTlbMmRange } from './asi25/tlb.ts';
import { type Exec, type Observer, type Path, asiEnter, asiExit } from './asi/session.ts';
import { PathPoints, accessVa, arrive, contextSwitch, drive } from './x86/entry.ts';
import { ASI25_ONLY_OPS, type ApiOp, type Op, type Race, formatOffCpu, formatRace, isApiCall, raceCpu } from './ops.ts';
import {
  ASI_MAP_ALL,
  asiCreate,
  asiDestroy,
  asiMapPercpu,
  asiMapRange,
  asiRemap,
  asiUnmap,
  asiUnmapPercpu,
  freeObject,
  asCaller,
  percpuAsked,
  percpuRef,
  recordApiCall,
  unmapFromAsis,
} from './asi/asi.ts';
import { EBUSY, ECPUDEAD, EINVAL, ENOENT, ENOSYS, ERRNO_NAMES, ESRCH, boot, taskCreate, taskExit } from './mm/kernel.ts';
import { execOf } from './mm/page-alloc.ts';
import { asiAsyncFreeWork } from './asi25/alloc.ts';
import { kmalloc, objectMemory, runKmemcgWork } from './mm/slab.ts';
import { type FlushCtx, moduleLoad, moduleUnload, vfree, vmalloc } from './mm/vmalloc.ts';
import { secretmemFault, secretmemFree } from './mm/secretmem.ts';
import { PAGE_SIZE, vaLimit } from './mm/geometry.ts';
import { ASI25_OPS, asiCreate25, asiDestroy25, criticalSection, callerDomainOf } from './asi25/ops.ts';
import { kvmX86InitAsiClass } from './asi25/kvm.ts';
import { asi25Boot, asiExit as asiExit25, asiNewProcessMm, asiTaskExit, inUserMode, returnToUserMode, syscallEnterFromUserMode } from './asi25/runtime.ts';

export interface Outcome {
  /** 0, a new object's id (asi_create, task_create, allocations), or -errno. */
  readonly ret: number;
  readonly log: Log;
}

/**
 * Booted systems by configuration: a run starts from a copy (cloneSystem, as explore copies a
 * state), which costs a sixth of a boot; shrinking and searching start thousands of short runs.
 */
const booted = new Map<string, System>();
const BOOTED_KEPT = 64;

export function createSystem(config: Config): System {
  const key = JSON.stringify(config);
  let template = booted.get(key);
  if (!template) {
    if (booted.size >= BOOTED_KEPT) booted.clear();
    template = boot(config);
    if (designOf(config) === 'asi-2025') {
      asi25Boot(template);
      kvmX86InitAsiClass(template, []);
    }
    booted.set(key, template);
  }
  return { ...cloneSystem(template), config };
}

const MAX_PAGES = 64;

/** The lock a GFP_ATOMIC kmalloc's caller holds (spin_lock_irqsave): a driver's, which no modelled code takes. */
const CALLER_LOCK = 'caller->lock';

function withAsi(sys: System, id: number, out: Log, f: (asi: Asi) => number): number {
  const asi = sys.asis.get(id);
  if (!asi) {
    log(out, 'note', `asi#${id} does not exist`);
    return EINVAL;
  }
  // Only KVM holds a vCPU's ASI (vcpu->asi, patch 23): no other caller can name it.
  if (sys.kvm?.asis.has(id)) {
    log(out, 'note', `asi#${id} is a vCPU's, private to KVM`);
    return EINVAL;
  }
  return f(asi);
}

function allocationOf(sys: System, allocId: number | undefined): Allocation | undefined {
  return allocId === undefined ? undefined : sys.mem.allocs.get(allocId);
}

function created(x: { id: number } | number): number {
  return typeof x === 'number' ? x : x.id;
}

/**
 * Applies one operation. The system is changed in place; clone first to keep the old state.
 * `observe` is called at every micro-step of the paths the op runs (see Observer).
 */
export function step(sys: System, op: Op, observe?: Observer): Outcome {
  sys.ghost = newGhost();
  stepBegins(sys.mem);
  const out = sys.ghost.log;
  const ret = runOp(sys, op, out, observe);
  if (sys.asi25) returnToUser(sys, out, observe);
  sys.exec = processContext();
  // The work the op queued runs before the next op: a kworker creating memcg cache copies, and the
  // 2025 design's asi_async_free_work_fn (its patch 14).
  runKmemcgWork(sys);
  if (sys.asi25) asiAsyncFreeWork(execOf(sys, out));
  return { ret, log: out };
}

/** A task switched in during the last op first goes back to user space (returnToUserMode). */
function backToUserMode(k: Exec): void {
  if (!inUserMode(k)) drive(k, 'exit_to_user_mode', returnToUserMode(k));
}

/** The CPU's task, in user space, makes a system call: syscall_enter_from_user_mode (patch 25). */
function systemCall(k: Exec): void {
  backToUserMode(k);
  syscallEnterFromUserMode(k);
}

/**
 * The 2025 design with its userspace class (patch 25): between ops every CPU's task runs in user
 * space, so an op ends with each CPU whose task is not there yet going back.
 */
function returnToUser(sys: System, out: Log, observe?: Observer): void {
  for (const cpu of sys.cpus) {
    if (cpu.dead) continue;
    const k: Exec = { sys, cpu, out, ...(observe ? { observe } : {}) };
    const was = sys.onCpu;
    sys.exec = cpu;
    sys.onCpu = k;
    backToUserMode(k);
    sys.onCpu = was;
  }
}

/**
 * One op where it runs: a per-CPU op on its CPU; another on CPU `on` (a racing op's, or an ASI API
 * call's own), in the task that CPU runs and through its CR3, or in a process context on no CPU.
 */
function runOp(sys: System, op: Op, out: Log, observe?: Observer, on = 'on' in op ? (op.on ?? -1) : -1): number {
  if (sys.asi25 && !ASI25_OPS.has(op.op)) {
    log(out, 'note', `${op.op} is not part of the 2025 design`);
    return ENOSYS;
  }
  if (!sys.asi25 && ASI25_ONLY_OPS.has(op.op)) {
    log(out, 'note', `${op.op} is not in the 2019 design's kernel (5.2)`);
    return ENOSYS;
  }
  const cpu = 'cpu' in op ? sys.cpus[op.cpu] : on >= 0 ? sys.cpus[on] : undefined;
  if (!cpu) {
    if ('cpu' in op || on >= 0) return EINVAL;
    sys.exec = processContext();
    return apiCall(sys, op, out, observe);
  }
  if (cpu.dead) return ECPUDEAD;
  sys.exec = cpu;
  const k: Exec = { sys, cpu, out, ...(observe ? { observe } : {}) };
  const was = sys.onCpu;
  sys.onCpu = k;
  try {
    return 'cpu' in op ? applyOnCpu(k, op) : isApiCall(op) ? apiCallOn(k, op) : apiCall(sys, op, out, observe);
  } finally {
    sys.onCpu = was;
  }
}

/** An ASI API call made on a CPU: its events land at its points, those of its own code, not of a handler inside it. */
function apiCallOn(k: Exec, op: ApiOp): number {
  const points = new PathPoints(k, op.op, op.intr ?? []);
  const depth = k.cpu.handlers.length;
  k.apiPoint = (where) => {
    if (!k.cpu.dead && k.cpu.handlers.length === depth) points.reached(where);
  };
  points.start();
  const ret = k.cpu.dead ? ECPUDEAD : apiCall(k.sys, op, k.out, k.observe);
  if (!k.cpu.dead) points.returned();
  return k.cpu.dead ? ECPUDEAD : ret;
}

/**
 * The points of an op in flight at which its race may run (see Race): whether the racing op must
 * wait is learnt by running it on a copy of the system first, so that it runs on the real one only
 * where it goes through without waiting, as the real CPU would. Returns the hook drive calls at
 * each point, and `finish`, which runs the racing op after the op in flight returned if it has not
 * run by then.
 */
function racer(host: Exec, race: Race, switchesTo: readonly number[], out: Log, observe?: Observer): { point: (where: string) => void; finish: () => void } {
  const { sys } = host;
  const on = raceCpu(race);
  const line = formatRace(sys.g, race);
  let passed = 0;
  let done = false;
  let waiting: string | undefined;
  // The op's task, as its path starts (a KVM_RUN's vCPU thread, once it is on the CPU), and the task it switches to.
  let tasks: number[] = [];
  // The racing op's lines, told apart from the op in flight's (the HTML report puts them side by side).
  const note = (text: string) => out.push(onCpu({ kind: 'note', text }, on));
  const run = (racing: Racing | undefined, where: string) => {
    done = true;
    sys.spinning = undefined;
    if (sys.cpus[on]?.dead) {
      note(`${line}: never runs, cpu${on} hangs`);
      return;
    }
    const exec = sys.exec;
    sys.racing = racing;
    note(`${line}: runs ${where}`);
    const own: Log = [];
    const ret = runOp(sys, race.op, own, observe, on);
    for (const e of own) out.push(onCpu(e, on));
    note(`cpu${on}: ${formatOffCpu(sys.g, race.op)} = ${ERRNO_NAMES[ret] ?? ret}`);
    sys.racing = undefined;
    sys.exec = exec;
  };
  const point = (where: string) => {
    if (!tasks.length) tasks = [sys.kernel.current[host.cpu.id], ...switchesTo];
    if (done || passed++ < race.at || sys.spinning?.wait.blocked?.(sys)) return;
    const racing = { cpu: host.cpu.id, tasks: host.switchingTo === undefined ? tasks : [...tasks, host.switchingTo] };
    const wait = on === host.cpu.id ? new RacerWaits(`cpu${on} runs the op in flight`, false, []) : waitsOnCopy(sys, race, on, racing);
    if (wait) {
      if (wait.message !== waiting) note(`${line}: waits at ${where}: ${wait.message}`);
      waiting = wait.message;
      // Its CPU spins at that wait from now on, with what it holds there.
      if (on !== host.cpu.id) sys.spinning = { cpu: on, op: formatOffCpu(sys.g, race.op), wait };
      return;
    }
    run(racing, `at ${where}`);
  };
  return { point, finish: () => done || run(undefined, 'after the op in flight returned') };
}

/** The wait, if any, that a racing op reaches on a copy of the system: the copy stops there. */
function waitsOnCopy(sys: System, race: Race, on: number, racing: Racing): RacerWaits | undefined {
  const copy = cloneSystem(sys);
  copy.racing = racing;
  try {
    runOp(copy, race.op, [], undefined, on);
    return undefined;
  } catch (e) {
    if (e instanceof RacerWaits) return e;
    throw e;
  }
}

/** What an ASI API op was asked to map: the buffers a caller expects mapped when it returns 0. */
function asked(sys: System, op: Exclude<Op, CpuOp>): ApiCall['asked'] {
  switch (op.op) {
    case 'asi_map':
    case 'asi_remap':
      return [{ ptr: op.ptr, size: op.size }];
    case 'asi_map_percpu': {
      const p = percpuRef(sys, op.var);
      return p ? percpuAsked(sys, p) : [];
    }
    case 'asi_map_module': {
      const m = sys.kernel.modules.get(op.module);
      return m ? [{ ptr: m.va, size: m.pages * PAGE_SIZE }] : [];
    }
    default:
      return [];
  }
}

/** Runs a non-CPU op; an ASI API call also leaves its ghost record (what it was asked, what it removed). */
function apiCall(sys: System, op: Exclude<Op, CpuOp>, out: Log, observe?: Observer): number {
  if (!isApiCall(op) || !sys.asis.has(op.asi)) return apply(sys, op, out, observe);
  const asi = sys.asis.get(op.asi)!;
  return asCaller(sys, op.caller ?? 0, () => recordApiCall(sys, op.op, asi, asked(sys, op), op.op === 'asi_remap' ? op.cur : null, () => apply(sys, op, out, observe)));
}

type CpuOp = Extract<Op, { cpu: number }>;

function applyOnCpu(k: Exec, op: CpuOp): number {
  const { sys, out, observe } = k;
  // The 2025 design's userspace class (its patch 25): an op on a CPU finds its task in user space,
  // and every op but an interrupt is a system call of that task (KVM_RUN's, of the vCPU thread
  // once it is on the CPU: vcpuThreadOn).
  if (sys.asi25) {
    if (op.op === 'interrupt') backToUserMode(k);
    else if (op.op !== 'kvm_run') systemCall(k);
  }
  const race = 'race' in op && op.race ? racer(k, op.race, op.op === 'schedule' ? [op.task] : [], out, observe) : undefined;
  const ran = <R>(path: string, gen: Path<R>): R | number => {
    const r = drive(k, path, gen, op.intr, race?.point);
    return k.cpu.dead ? ECPUDEAD : (r as R);
  };
  const ret = applyPath(sys, k, op, out, ran);
  race?.finish();
  return ret;
}

type Ran = <R>(path: string, gen: Path<R>) => R | number;

function applyPath(sys: System, k: Exec, op: CpuOp, out: Log, ran: Ran): number {
  const cpu = k.cpu;
  switch (op.op) {
    case 'asi_enter': {
      if (!sys.asi25) return withAsi(sys, op.asi, out, (asi) => ran('asi_enter', asiEnter(k, asi)));
      const key = callerDomainOf(sys, op.asi);
      return key ? (ran('asi_enter', criticalSection(k, key)) === ECPUDEAD ? ECPUDEAD : 0) : EINVAL;
    }
    case 'asi_exit':
      // The 2025 asi_exit() names no domain: it leaves whichever the CPU is on.
      if (sys.asi25) return ran('asi_exit', asiExit25(k)) === ECPUDEAD ? ECPUDEAD : 0;
      return withAsi(sys, op.asi, out, (asi) => {
        const own = cpu.session.asi;
        if (sys.options.exitChecksAsi && own !== null && own !== asi.id) return EINVAL;
        return ran('asi_exit', asiExit(k, asi.id)) === ECPUDEAD ? ECPUDEAD : 0;
      });
    case 'interrupt':
      // A standalone event: its own nested events land inside its handler.
      arrive(k, { at: 0, kind: op.kind, ...(op.va === undefined ? {} : { va: op.va }), nested: op.intr });
      return cpu.dead ? ECPUDEAD : 0;
    case 'access':
      return accessVa(k, op.va, op.access, false, op.intr);
    case 'flush_tlb_mm':
      return ran('flush_tlb_mm_range', flushTlbMmRange(k)) === ECPUDEAD ? ECPUDEAD : 0;
    case 'schedule': {
      if (!sys.kernel.tasks.has(op.task)) return ESRCH;
      waitForTask(sys, op.task, `task#${op.task}`);
      if (sys.kernel.current.includes(op.task)) return EBUSY;
      checkSchedulable(sys, cpu, 'schedule()');
      return ran('schedule', contextSwitch(k, op.task)) === ECPUDEAD ? ECPUDEAD : 0;
    }
    case 'kvm_run': {
      const vcpu = sys.kvm?.vcpus.get(op.vcpu);
      if (!vcpu) return ENOENT;
      // KVM_RUN is an ioctl from user space, where no CPU is isolated (2019).
      if (!sys.asi25 && cpu.session.state !== ASI_SESSION_STATE_INACTIVE) return EBUSY;
      const err = vcpuThreadOn(k, vcpu);
      if (err) return err;
      if (sys.asi25) systemCall(k);
      kvmRunCalled(vcpu);
      const ret = ran('vcpu_run', kvmRun(k, vcpu, op.exits, op.wake));
      kvmRunReturned(vcpu);
      return ret;
    }
  }
}

function apply(sys: System, op: Exclude<Op, CpuOp>, out: Log, observe?: Observer): number {
  const k = sys.kernel;
  const ctx: FlushCtx = { out, ...(observe ? { observe } : {}) };
  switch (op.op) {
    case 'asi_create':
      if (op.flags & ~(sys.asi25 ? 0 : ASI_MAP_ALL)) return EINVAL;
      return sys.asi25 ? asiCreate25(execOf(sys, out)) : asiCreate(sys, op.flags, out);
    case 'asi_destroy':
      if (sys.asi25) return asiDestroy25(execOf(sys, out), op.asi);
      return withAsi(sys, op.asi, out, (asi) => {
        const user = sys.cpus.find((c) => c.session.asi === asi.id || cr3Root(c.cr3) === asi.pgd);
        if (user && sys.options.destroyChecksSessions) return EBUSY;
        if (asi.users > 0 && sys.options.asiUsersRefcount) return EBUSY;
        asiDestroy(sys, asi, out);
        return 0;
      });
    case 'asi_map':
      if (op.ptr + op.size > vaLimit(sys.g) || op.size === 0) return EINVAL;
      return withAsi(sys, op.asi, out, (asi) => asiMapRange(sys, asi, op.ptr, op.size, op.level, out));
    case 'asi_unmap':
      return withAsi(sys, op.asi, out, (asi) => asiUnmap(sys, asi, op.ptr, out));
    case 'asi_remap':
      if (op.ptr + op.size > vaLimit(sys.g) || op.size === 0) return EINVAL;
      return withAsi(sys, op.asi, out, (asi) => asiRemap(sys, asi, op.cur, op.ptr, op.size, out).ret);
    case 'asi_map_percpu':
    case 'asi_unmap_percpu': {
      // A variable this kernel does not have (layout 1's kvm_srcu_data) is no symbol to link against.
      const p = percpuRef(sys, op.var);
      if (!p) return EINVAL;
      return withAsi(sys, op.asi, out, (asi) => (op.op === 'asi_map_percpu' ? asiMapPercpu(sys, asi, p, out) : (asiUnmapPercpu(sys, asi, p, out), 0)));
    }
    case 'asi_map_module': {
      // asi_map_module() (patch 09): find_module() failing is -ESRCH.
      const m = k.modules.get(op.module);
      if (!m) return ESRCH;
      return withAsi(sys, op.asi, out, (asi) => asiMapRange(sys, asi, m.va, m.pages * 4096, 0, out));
    }
    case 'task_create': {
      const t = taskCreate(sys, ctx, { memcg: op.memcg ?? 0 });
      if (t < 0 || !sys.asi25) return t;
      // The 2025 design: fork's mm_init makes the mm's userspace domain (patch 25), or the fork fails.
      const mm = asiNewProcessMm(execOf(sys, out), t);
      if (mm >= 0) return t;
      taskExit(sys, t, ctx);
      return mm;
    }
    case 'task_exit': {
      waitForTask(sys, op.task, `task#${op.task}`);
      const t = k.tasks.get(op.task);
      const stack = t && k.vmAreas.get(t.stack);
      if (t && !k.current.includes(op.task)) {
        unmapFromAsis(sys, allocationOf(sys, stack?.alloc), out);
        unmapFromAsis(sys, objectMemory(sys, t.struct), out);
      }
      const ret = taskExit(sys, op.task, ctx);
      // The 2025 design: the task's mm put, its userspace domain destroyed with the last user.
      if (ret === 0 && sys.asi25) asiTaskExit(execOf(sys, out), op.task);
      return ret;
    }
    case 'vmalloc':
      // As large as memory: walks on the 2025 design vmalloc a share of free memory at a time.
      if (op.pages < 1 || op.pages > sys.kernel.layout.physFrames) return EINVAL;
      return created(vmalloc(sys, op.pages, op.sensitive, 'vmalloc', KERNEL, 'vmalloc', ctx));
    case 'vfree': {
      const area = k.vmAreas.get(op.id);
      if (!area || allocationOf(sys, area.alloc)?.kind !== 'vmalloc') return ENOENT;
      unmapFromAsis(sys, allocationOf(sys, area.alloc), out);
      vfree(sys, op.id, ctx);
      return 0;
    }
    case 'kmalloc': {
      if (op.size < 1 || op.size > MAX_PAGES * PAGE_SIZE) return EINVAL;
      const req = { sensitive: op.sensitive, name: 'kmalloc', owner: KERNEL, kind: 'kmalloc' as const, boot: false, ...(op.memcg === undefined ? {} : { account: true, memcg: op.memcg }), ...(op.atomic ? { atomic: true } : {}) };
      if (op.atomic) spinLock(sys, CALLER_LOCK, true);
      let last = kmalloc(sys, op.size, req);
      for (let i = 1; i < (op.count ?? 1) && typeof last !== 'number'; i++) last = kmalloc(sys, op.size, req);
      if (op.atomic) spinUnlock(sys, CALLER_LOCK);
      return created(last);
    }
    case 'kfree': {
      const obj = k.kmallocs.get(op.id);
      if (!obj || obj.kind !== 'kmalloc') return ENOENT;
      freeObject(sys, op.id, out);
      return 0;
    }
    case 'module_load':
      if (op.pages < 1 || op.pages > MAX_PAGES) return EINVAL;
      return created(moduleLoad(sys, op.pages, ctx));
    case 'module_unload': {
      const m = k.modules.get(op.id);
      if (!m) return ENOENT;
      // kvm-intel holds kvm, and its VMs hold kvm-intel: the model keeps both loaded.
      if (sys.kvm && [sys.kvm.modules.kvm, sys.kvm.modules.kvmIntel].includes(op.id)) return EBUSY;
      unmapFromAsis(sys, allocationOf(sys, m.alloc), out);
      moduleUnload(sys, op.id, ctx);
      return 0;
    }
    case 'fail_alloc':
      sys.mem.failIn = op.after;
      return 0;
    case 'secretmem_fault':
      return secretmemFault(sys, ctx);
    case 'secretmem_free':
      return secretmemFree(sys, op.id, ctx);
    case 'kvm_create_vm':
      return kvmCreateVm(sys, op.memcg ?? 0, out);
    case 'kvm_create_vcpu':
      return kvmCreateVcpu(sys, op.vm, out);
    case 'kvm_destroy_vm':
      return kvmDestroyVm(sys, op.vm, out);
    case 'kvm_set_memory_region':
      return kvmSetMemoryRegion(sys, op.vm, op.slot, op.pages, op.gfn ?? op.slot * KVM_MAX_SLOT_PAGES, out);
    case 'kvm_io_bus':
      return kvmIoBusChange(sys, op.vm, op.bus, op.register, out);
  }
}
