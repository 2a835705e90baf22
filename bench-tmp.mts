import { createSystem } from './src/model/step.ts';
import { indexAt, PGT_LEVEL_PGD, levelSize, PGT_LEVEL_PUD, PGT_LEVEL_PMD } from './src/model/mm/geometry.ts';
for (const geometry of ['small', 'real'] as const) {
  const sys = createSystem({ geometry, cpus: 2, profile: 'fixed' });
  const l = sys.kernel.layout;
  const idx = (va: number) => indexAt(sys.g, PGT_LEVEL_PGD, va);
  console.log(geometry, 'entries', sys.g.entries, 'vaLimit', sys.g.vaLimit.toString(16), Object.entries(l).map(([k, v]) => `${k}=${typeof v === 'number' ? v.toString(16) + '(pgd ' + idx(v) + ')' : v}`).join(' '));
  console.log('sizes pgd pud pmd', levelSize(sys.g, PGT_LEVEL_PGD).toString(16), levelSize(sys.g, PGT_LEVEL_PUD).toString(16), levelSize(sys.g, PGT_LEVEL_PMD).toString(16));
  const t = sys.tables.get(sys.kernel.pgd)!; console.log('kernel pgd used', [...t.keys()].filter((i) => t[i] !== 0));
}
