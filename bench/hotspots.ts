// The top self-time functions of a V8 CPU profile (node --cpu-prof), as shares of all samples.
//   npx tsx bench/hotspots.ts file.cpuprofile [top]

import { readFileSync } from 'node:fs';
import { relative } from 'node:path';

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string };
  readonly hitCount?: number;
}

const [file, top = '20'] = process.argv.slice(2);
const profile = JSON.parse(readFileSync(file, 'utf8')) as { nodes: ProfileNode[]; samples: number[] };
const hits = new Map<number, number>();
for (const id of profile.samples) hits.set(id, (hits.get(id) ?? 0) + 1);
const self = new Map<string, number>();
for (const n of profile.nodes) {
  const { functionName, url } = n.callFrame;
  const where = url.startsWith('file:') ? relative(process.cwd(), new URL(url).pathname) : url;
  const key = `${functionName || '(anonymous)'} ${where}`;
  self.set(key, (self.get(key) ?? 0) + (hits.get(n.id) ?? 0));
}
const total = profile.samples.length;
for (const [key, n] of [...self].sort((a, b) => b[1] - a[1]).slice(0, Number(top))) {
  console.log(`${((100 * n) / total).toFixed(1).padStart(5)}%  ${key}`);
}
