// Every saved counterexample still reproduces its recorded invariant under its recorded
// configuration, and violates nothing under the `fixed` profile on the same machine and kernel: the
// file's geometry, CPUs and kernel configuration (slab caches, THP, who calls the API) are kept,
// since a slab finding replayed on a kernel without slabs proves nothing about its fix.

import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { CounterexampleError, configLabel, loadCounterexample } from '../src/check/counterexample.ts';
import { runOps } from '../src/check/run.ts';
import type { Config } from '../src/model/system.ts';

/** The file's machine and kernel with the `fixed` design: only the profile, options and mutant change. */
function underFixed({ geometry, cpus, kernel }: Config): Config {
  return { geometry, cpus, profile: 'fixed', ...(kernel ? { kernel } : {}) };
}

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
      const fixed = runOps(underFixed(c.config), c.ops).failure;
      expect(fixed?.violations ?? [], `${file} violates invariants under fixed`).toEqual([]);
    });
  }
});
