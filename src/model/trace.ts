// What the modelled code says while it runs: its own log lines (pr_debug/pr_warn/pr_err), WARN_ONs,
// and the model's notes. A step returns these so a replay can print them under the step.

export type TraceKind = 'pr_debug' | 'pr_info' | 'pr_warn' | 'pr_err' | 'WARN_ON' | 'note';

export interface TraceEvent {
  readonly kind: TraceKind;
  readonly text: string;
  /** The CPU of the racing op (Op.race) that wrote it; absent for the op's own lines. */
  readonly cpu?: number;
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

/** `e` as a line of the racing op on `cpu`: its text is still made only when read. */
export function onCpu(e: TraceEvent, cpu: number): TraceEvent {
  return new RacingEvent(e, cpu);
}

class RacingEvent implements TraceEvent {
  constructor(
    private readonly e: TraceEvent,
    readonly cpu: number,
  ) {}

  get kind(): TraceKind {
    return this.e.kind;
  }

  get text(): string {
    return this.e.text;
  }

  toJSON(): TraceEvent {
    return { kind: this.kind, text: this.text, cpu: this.cpu };
  }
}
