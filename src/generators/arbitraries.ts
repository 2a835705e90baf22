// fast-check arbitraries for operation sequences: lists of choices, resolved against the live state
// when they run (see choose.ts). Shrinking removes choices and moves them towards 0.

import fc from 'fast-check';
import type { Choice } from './choose.ts';

const nat = fc.nat({ max: 1 << 20 });

export const choiceArb: fc.Arbitrary<Choice> = fc.record({ kind: nat, a: nat, b: nat, c: nat, d: nat });

export function choicesArb(maxLength: number): fc.Arbitrary<Choice[]> {
  return fc.array(choiceArb, { minLength: 1, maxLength, size: 'max' });
}
