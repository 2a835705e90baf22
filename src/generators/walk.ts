// The seeded random walk for long fuzz runs: choices drawn from seedrandom, never Math.random, so
// a run is reproducible from its printed seed.

import seedrandom from 'seedrandom';
import type { Choice } from './choose.ts';

export type ChoiceSource = () => Choice;

export function seededChoices(seed: string): ChoiceSource {
  const rng = seedrandom(seed);
  const nat = () => rng.int32() >>> 12;
  return () => ({ kind: nat(), a: nat(), b: nat(), c: nat(), d: nat() });
}
