// The mutant kill matrix, second half of the catalogue (test/mutant-kill.ts says what each test asserts).

import { describe } from 'vitest';
import { killMatrix, mutantsOf } from './mutant-kill.ts';

describe('mutant kill matrix (second half)', () => killMatrix(mutantsOf('second')));
