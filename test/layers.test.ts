// The layers of src/, each importing only from those below it: the model knows nothing of the
// checker, and the checker nothing of the command line (whose flags and variables it would then
// have to be run through).

import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { expect, test } from 'vitest';
import { root } from './cli-run.ts';

const RANK: Record<string, number> = { model: 0, generators: 1, invariants: 1, check: 2, report: 3, commands: 4, 'cli.ts': 5 };
const src = join(root, 'src');
const layerOf = (file: string) => relative(src, file).split('/')[0];

test('each layer of src/ imports only from the layers below it', () => {
  const wrong: string[] = [];
  for (const name of readdirSync(src, { recursive: true, encoding: 'utf8' }).filter((f) => /\.(ts|mjs)$/.test(f))) {
    const file = join(src, name);
    for (const [, spec] of readFileSync(file, 'utf8').matchAll(/^import .*from '(\.[^']+)'/gm)) {
      const [from, to] = [layerOf(file), layerOf(resolve(dirname(file), spec))];
      if (!(from in RANK) || !(to in RANK)) wrong.push(`${name} imports ${spec}: a layer this test does not rank`);
      else if (RANK[to] > RANK[from]) wrong.push(`${name} imports ${spec} (${from} <- ${to})`);
    }
  }
  expect(wrong).toEqual([]);
});
