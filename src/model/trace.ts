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
  out.push(typeof text === 'string' ? { kind, text } : new LazyEvent(kind, text));
}

/** A class, not an object literal with a getter: V8 makes these at a fraction of the cost, and fuzz loops make many. */
class LazyEvent implements TraceEvent {
  private rendered: string | undefined;
  constructor(
    readonly kind: TraceKind,
    private readonly render: () => string,
  ) {}

  get text(): string {
    return (this.rendered ??= this.render());
  }

  toJSON(): TraceEvent {
    return { kind: this.kind, text: this.text };
  }
}
