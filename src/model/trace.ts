// What the modelled code says while it runs: its own log lines (pr_debug/pr_warn/pr_err), WARN_ONs,
// and the model's notes. A step returns these so a replay can print them under the step.

export type TraceKind = 'pr_debug' | 'pr_info' | 'pr_warn' | 'pr_err' | 'WARN_ON' | 'note';

export interface TraceEvent {
  readonly kind: TraceKind;
  readonly text: string;
}

export type Log = TraceEvent[];

export function log(out: Log, kind: TraceKind, text: string): void {
  out.push({ kind, text });
}
