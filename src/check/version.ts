// The version of asi-check, from package.json: saved counterexamples carry it, so that a file that
// no longer reproduces says which asi-check found it.

import { readFileSync } from 'node:fs';

export const ASI_CHECK_VERSION: string = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version;
