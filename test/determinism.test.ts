// Reproducibility: a counterexample is a config plus an op list, and a fuzz run is a seed. Both are
// only worth saving if replaying them gives the same thing every time.

import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect } from 'vitest';
import { fc, test } from '@fast-check/vitest';
import { runChoices, traceLines } from '../src/check/run.ts';
import { choicesArb } from '../src/generators/arbitraries.ts';
import type { Choice } from '../src/generators/choose.ts';
import { seededChoices } from '../src/generators/walk.ts';
import type { Config } from '../src/model/system.ts';
import { createSystem } from '../src/model/step.ts';
import { boot } from '../src/model/mm/kernel.ts';

const configArb: fc.Arbitrary<Config> = fc.record({
  geometry: fc.constant('small' as const),
  cpus: fc.integer({ min: 1, max: 2 }),
  profile: fc.constantFrom('rfc-v2' as const, 'fixed' as const),
});

function take(next: () => Choice, n: number): Choice[] {
  return Array.from({ length: n }, () => next());
}

describe('replay is deterministic', () => {
  test.prop([configArb, choicesArb(15)], { numRuns: 25 })(
    'the same config and the same choices resolve to the same concrete ops, the same outcome and the same trace',
    (config, choices) => {
      const first = runChoices(config, choices);
      const second = runChoices(config, choices);
      expect(second.ops).toEqual(first.ops);
      expect(second.failure).toEqual(first.failure);
      const trace = traceLines(config, first.ops);
      expect(trace.length).toBeGreaterThanOrEqual(first.ops.length);
      expect(traceLines(config, first.ops)).toEqual(trace);
    },
  );

  test.prop([configArb, choicesArb(15)], { numRuns: 10 })(
    'a run starts from a copy of the booted system that no earlier run changed: the next system is a fresh boot',
    (config, choices) => {
      runChoices(config, choices);
      expect(createSystem(config)).toEqual(boot(config));
    },
  );

  test.prop([fc.string({ maxLength: 20 })], { numRuns: 50 })('the seeded walk draws the same choices from the same seed', (seed) => {
    const a = take(seededChoices(seed), 40);
    const b = take(seededChoices(seed), 40);
    expect(b).toEqual(a);
    for (const c of a) for (const v of [c.kind, c.a, c.b, c.c, c.d]) expect(Number.isSafeInteger(v) && v >= 0).toBe(true);
  });

  test.prop([fc.string({ maxLength: 20 }), fc.string({ maxLength: 20 })], { numRuns: 50 })(
    'the seeded walk draws different choices from different seeds',
    (s1, s2) => {
      fc.pre(s1 !== s2);
      expect(take(seededChoices(s1), 20)).not.toEqual(take(seededChoices(s2), 20));
    },
  );

  test('a seeded walk replayed through the model gives the same ops and trace', () => {
    const config: Config = { geometry: 'small', cpus: 2, profile: 'fixed' };
    const choices = take(seededChoices('asi-check'), 60);
    const first = runChoices(config, choices);
    const second = runChoices(config, take(seededChoices('asi-check'), 60));
    expect(second.ops).toEqual(first.ops);
    expect(traceLines(config, second.ops)).toEqual(traceLines(config, first.ops));
  });
});

describe('no hidden source of randomness or time in the model', () => {
  const srcDir = fileURLToPath(new URL('../src/', import.meta.url));
  const FORBIDDEN = [/\bMath\.random\b/, /\bDate\.now\b/, /\bnew Date\s*\(/, /\bperformance\.now\b/];

  function tsFiles(dir: string): string[] {
    return readdirSync(dir).flatMap((name) => {
      const p = join(dir, name);
      return statSync(p).isDirectory() ? tsFiles(p) : p.endsWith('.ts') ? [p] : [];
    });
  }

  /** Source without comments, so that a comment saying "never Math.random" is not a use of it. */
  function code(text: string): string {
    return text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`\\])\/\/.*$/gm, '$1');
  }

  for (const sub of ['model', 'generators', 'invariants']) {
    test(`src/${sub} uses neither Math.random nor the clock (Date.now, new Date, performance.now)`, () => {
      const files = tsFiles(join(srcDir, sub));
      expect(files.length).toBeGreaterThan(0);
      const uses: string[] = [];
      for (const f of files) {
        const text = code(readFileSync(f, 'utf8'));
        for (const re of FORBIDDEN) if (re.test(text)) uses.push(`${relative(srcDir, f)}: ${re.source}`);
      }
      expect(uses).toEqual([]);
    });
  }

  test('the comment stripper keeps code and drops comments (so the scan above can fail)', () => {
    expect(FORBIDDEN[0].test(code('const x = Math.random();'))).toBe(true);
    expect(FORBIDDEN[0].test(code('// never Math.random\nconst x = 1;'))).toBe(false);
    expect(FORBIDDEN[1].test(code('/* Date.now */ const t = Date.now();'))).toBe(true);
  });
});
