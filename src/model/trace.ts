// What the modelled code says while it runs: its own log lines (pr_debug/pr_warn/pr_err), WARN_ONs,
// and the model's notes. A step returns these so a replay can print them under the step.

export type TraceKind = 'pr_debug' | 'pr_info' | 'pr_warn' | 'pr_err' | 'WARN_ON' | 'note';

export interface TraceEvent {
  readonly kind: TraceKind;
  readonly text: string;
}

export type Log = TraceEvent[];

/**
 * Text that costs formatting (addresses, entries) may come as a function of values that do not
 * change later: it runs when the event is read (replay, report), never in a fuzz loop that reads none.
 */
export function log(out: Log, kind: TraceKind, text: string | (() => string)): void {
  out.push(typeof text === 'string' ? { kind, text } : lazyEvent(kind, text));
}

function lazyEvent(kind: TraceKind, render: () => string): TraceEvent {
  let text: string | undefined;
  return {
    kind,
    get text() {
      return (text ??= render());
    },
  };
}
