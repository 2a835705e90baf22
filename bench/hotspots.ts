// The top functions of a V8 CPU profile (node --cpu-prof) as shares of all samples: self time (in
// the function itself) and total time (the function anywhere on the stack), sorted by self time.
//   npx tsx bench/hotspots.ts file.cpuprofile [top] [self|total]

import { readFileSync } from 'node:fs';
import { relative } from 'node:path';

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string };
  readonly children?: readonly number[];
}

const [file, top = '20', order = 'self'] = process.argv.slice(2);
const profile = JSON.parse(readFileSync(file, 'utf8')) as { nodes: ProfileNode[]; samples: number[] };
const keyOf = new Map<number, string>();
const parent = new Map<number, number>();
for (const n of profile.nodes) {
  const { functionName, url } = n.callFrame;
  const where = url.startsWith('file:') ? relative(process.cwd(), new URL(url).pathname) : url;
  keyOf.set(n.id, `${functionName || '(anonymous)'} ${where}`);
  for (const c of n.children ?? []) parent.set(c, n.id);
}
const self = new Map<string, number>();
const total = new Map<string, number>();
for (const id of profile.samples) {
  const own = keyOf.get(id)!;
  self.set(own, (self.get(own) ?? 0) + 1);
  const onStack = new Set<string>();
  for (let n: number | undefined = id; n !== undefined; n = parent.get(n)) onStack.add(keyOf.get(n)!);
  for (const k of onStack) total.set(k, (total.get(k) ?? 0) + 1);
}
const pct = (n = 0) => `${((100 * n) / profile.samples.length).toFixed(1).padStart(5)}%`;
const by = order === 'total' ? total : self;
console.log(' self  total');
for (const [key] of [...by].sort((a, b) => b[1] - a[1]).slice(0, Number(top))) console.log(`${pct(self.get(key))} ${pct(total.get(key))}  ${key}`);
