// Ctrl-C for a long command. Through `npx`, npm runs asi-check under `sh -c`, and dash, on SIGINT
// from the terminal, waits for asi-check to finish and then kills itself with SIGINT, so npm exits
// 130 whatever asi-check found. On a terminal, raw mode turns Ctrl-C into a byte that only
// asi-check reads: npm and its shell never see a signal, and the documented exit status gets through.

const CTRL_C = 0x03;

/** Calls `handler` on each Ctrl-C, SIGINT or SIGTERM until the returned function is called. */
export function onInterrupt(handler: (name: string) => void): () => void {
  const onSignal = (name: NodeJS.Signals) => handler(name);
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const stdin = process.stdin;
  const raw = stdin.isTTY === true;
  const restore = () => stdin.setRawMode(false);
  const onKey = (data: Buffer) => {
    if (data.includes(CTRL_C)) handler('Ctrl-C');
  };
  if (raw) {
    stdin.setRawMode(true);
    stdin.on('data', onKey);
    // Whatever ends the process, the terminal must get its line discipline back.
    process.on('exit', restore);
  }
  return () => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    if (!raw) return;
    stdin.off('data', onKey);
    stdin.pause();
    restore();
    process.off('exit', restore);
  };
}
