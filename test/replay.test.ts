// Every saved counterexample still reproduces its recorded invariant under its recorded
// configuration, and violates nothing under the `fixed` profile.

import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { CounterexampleError, configLabel, loadCounterexample } from '../src/check/counterexample.ts';
import { runOps } from '../src/check/run.ts';

const dir = join(import.meta.dirname, '..', 'counterexamples');
const files = readdirSync(dir).filter((f) => f.endsWith('.json')).sort();

describe('saved counterexamples', () => {
  test('the corpus is not empty', () => {
    expect(files.length).toBeGreaterThan(0);
  });
  for (const file of files) {
    test(`${file} reproduces its invariant and passes under fixed`, () => {
      let c;
      try {
        c = loadCounterexample(join(dir, file));
      } catch (e) {
        if (e instanceof CounterexampleError) throw new Error(`${file}: ${e.message}`);
        throw e;
      }
      // A file's name says its configuration in the words of its format version.
      const label = configLabel(c.config, c.version);
      expect(file.startsWith(`${label}--${c.invariant.toLowerCase()}--`), `${file}: its name must say the configuration it reproduces on (${label})`).toBe(true);
      const recorded = runOps(c.config, c.ops, { stopOn: c.invariant }).failure;
      expect(recorded?.violations.map((v) => v.invariant), `${file} no longer reproduces ${c.invariant}`).toContain(c.invariant);
      const fixed = runOps({ geometry: c.config.geometry, cpus: c.config.cpus, profile: 'fixed' }, c.ops).failure;
      expect(fixed?.violations ?? [], `${file} violates invariants under fixed`).toEqual([]);
    });
  }
});
