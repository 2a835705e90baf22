// CPU time of this process, the clock every bench row is measured on: other work on a shared
// machine slows a row less than it would wall time.

export function cpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}
