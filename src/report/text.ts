// The replay trace for a terminal: numbered steps, each with its return value, the modelled code's
// log lines and the state diff, then the violations. Colours come from picocolors, which turns
// them off for NO_COLOR and for output that is not a terminal.

import pc from 'picocolors';
import { changeSign, describeChange } from './diff.ts';
import type { Replay } from './record.ts';
import { failurePlace } from '../check/run.ts';

const SIGN_COLOUR = { '+': pc.green, '-': pc.red, '~': pc.yellow } as const;
const INDENT = '       ';

export function replayLines(r: Replay): string[] {
  const lines: string[] = [];
  for (const s of r.steps) {
    const ret = s.ret.startsWith('-E') ? pc.red(s.ret) : s.ret;
    lines.push(`${String(s.n).padStart(3)}. ${pc.bold(s.op)} = ${ret}`);
    for (const e of s.log) lines.push(pc.dim(`${INDENT}${e.kind}: ${e.text}`));
    for (const c of s.changes) {
      const sign = changeSign(c);
      lines.push(SIGN_COLOUR[sign](`${INDENT}${sign} ${describeChange(r.g, c)}`));
    }
  }
  for (const v of r.failure?.violations ?? []) lines.push(pc.red(`VIOLATION ${v.invariant} ${failurePlace(r.failure!)}: ${v.message}`));
  return lines;
}
