// The kill matrix's costliest searches (test/mutant-kill.ts, nightlyMutants): the 2019 design's KVM
// mutants and the two mutants killed from barely half of random seeds, each killed by the
// invariant it breaks, as npm test's matrix kills the others.

import { describe } from 'vitest';
import { killMatrix, nightlyMutants } from '../mutant-kill.ts';

describe('mutant kill matrix (KVM mutants of the 2019 design, and the weakly killed)', () => killMatrix(nightlyMutants()));
