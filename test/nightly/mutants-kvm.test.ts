// The kill matrix's 2019 KVM mutants (test/mutant-kill.ts, nightlyMutants): each killed by the
// invariant it breaks, as npm test's matrix kills the others.

import { describe } from 'vitest';
import { killMatrix, nightlyMutants } from '../mutant-kill.ts';

describe('mutant kill matrix (the 2019 design\'s KVM mutants)', () => killMatrix(nightlyMutants()));
