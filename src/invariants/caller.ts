// CALLER-CONTRACT: the ASI API as its callers rely on it. Several kernel subsystems share one ASI
// (KVM's vCPU setup, its memslot remaps, a driver); each call is made by one of them. A call told
// 0 has mapped what it asked for, tracked as its own; no call removes a range another caller (or
// asi_init_mapping, or asi_enter) made; a call that fails removes nothing, except the old buffer
// of asi_remap, which it reports gone by clearing the caller's pointer (patch 13). The kernel
// freeing memory, and asi_destroy, end ranges by their own right and are not calls of a caller.

import { formatSize, formatVa } from '../model/mm/geometry.ts';
import type { ApiCall, AsiRange, System } from '../model/system.ts';
import type { Invariant } from './types.ts';

function maker(r: AsiRange): string {
  return r.madeBy === 'core' ? 'asi_init_mapping' : typeof r.madeBy === 'number' ? `asi_enter on cpu${r.madeBy}` : `caller ${r.caller}`;
}

function wrongRemoval(sys: System, c: ApiCall): string | undefined {
  const foreign = (r: AsiRange) => r.madeBy !== undefined || r.caller !== c.caller;
  const r = c.removed.find((x) => foreign(x) || (c.ret < 0 && x.ptr !== c.released));
  return r && `${c.call} by caller ${c.caller} ${c.ret < 0 ? `failed (${c.ret}) and` : `(= ${c.ret})`} removed asi#${c.asi}'s range ${formatVa(sys.g, r.ptr)} ${formatSize(r.size)}, which ${maker(r)} mapped`;
}

/** Judged on the range list the call returned with: a later call of the same op may change it by its own right. */
function unkeptPromise(sys: System, c: ApiCall): string | undefined {
  if (c.ret !== 0) return undefined;
  const covered = (a: { ptr: number; size: number }) =>
    c.rangesAfter.some((r) => r.madeBy === undefined && r.caller === c.caller && r.ptr <= a.ptr && a.ptr + a.size <= r.ptr + r.size);
  const missing = c.asked.find((a) => !covered(a));
  return missing && `${c.call} by caller ${c.caller} returned 0, but asi#${c.asi} tracks no range of that caller covering ${formatVa(sys.g, missing.ptr)} ${formatSize(missing.size)}`;
}

export const CALLER_CONTRACT: Invariant = {
  id: 'CALLER-CONTRACT',
  statement:
    "An ASI API call that returns 0 has mapped what it was asked, as a range of its caller; no call removes a range another caller, asi_init_mapping or asi_enter made; a failed call removes nothing but asi_remap's old buffer.",
  source: 'RFC v2 patches 10, 12, 13, 14 (asi_unmap finds a range by its start, asi_map_percpu undoes every CPU, asi_remap compares pointers only); KVM as a caller: patches 24 (setup), 26 (remaps)',
  design: 'asi-2019',
  check: (sys) => {
    for (const c of sys.ghost.apiCalls) {
      const m = wrongRemoval(sys, c) ?? unkeptPromise(sys, c);
      if (m !== undefined) return m;
    }
    return undefined;
  },
};
