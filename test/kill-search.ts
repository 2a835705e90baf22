// The search the kill matrix of `npm test` runs for a mutant, and the verdict it asks of a kill:
// one definition for test/mutant-kill.ts, which runs it from KILL_SEEDS, and for `npm run bench --
// mutants`, which measures how often it kills each mutant from seeds nobody picked (bench/kill-rate.ts).
// The search judges the invariant the mutant is meant to break, and only that one: "killed by X"
// says that X catches the mistake, however many other invariants would have fired first.

import { mutantConfig, mutantWeights } from '../src/check/findings.ts';
import { type Found, hunt } from '../src/check/hunt.ts';
import { runOps } from '../src/check/run.ts';
import { invariantById } from '../src/invariants/index.ts';
import { GEOMETRIES } from '../src/model/mm/geometry.ts';
import { MUTANT_INFO, type MutantName } from '../src/model/mutants.ts';
import { formatOp } from '../src/model/ops.ts';

/**
 * fast-check runs (choice lists of up to 25 ops) a search may take before the first failure. Set
 * from `npm run bench -- mutants` (see test/mutant-kill.ts for today's figures): a search stops at
 * its first failure, so the budget costs only what a surviving search spends.
 */
export const KILL_RUNS = 3000;

/**
 * The fast-check seeds the matrix tries for every mutant, in order, until one kills it: the first
 * few naturals, never chosen per mutant. A seed is as good as any other (the bench's seeds are
 * random), so a mutant killed at rate r from one seed survives all of them with (1 - r)^n.
 */
export const KILL_SEEDS: readonly number[] = [1, 2, 3, 4, 5, 6];

/** The longest shrunk counterexample a kill may have: it reads as a few kernel calls. */
export const MAX_KILL_OPS = 6;

/**
 * Why a search's result is not a kill the matrix accepts, or undefined when it is: the shrunk ops
 * are few, print as kernel calls, violate the mutant's invariant when replayed with every invariant
 * judged, and violate nothing without the mutant.
 */
export function killProblem(m: MutantName, found: Found | undefined): string | undefined {
  if (!found) return `survived ${KILL_RUNS} runs`;
  const config = mutantConfig(m);
  const lines = found.ops.map((op) => formatOp(GEOMETRIES.small, op));
  if (lines.some((l) => l.length === 0 || l.includes('undefined') || l.includes('[object'))) return `an op does not print as a kernel call: ${lines.join('; ')}`;
  if (found.ops.length > MAX_KILL_OPS) return `shrunk to ${found.ops.length} ops, more than ${MAX_KILL_OPS}`;
  const expect = MUTANT_INFO[m].expect;
  const replay = runOps(config, found.ops, { stopOn: expect }).failure?.violations.map((v) => v.invariant) ?? [];
  if (!replay.includes(expect)) return `its ops replay to [${replay.join(', ')}], not ${expect}`;
  const without = runOps({ ...config, mutant: undefined }, found.ops).failure;
  if (without) return `its ops violate ${without.violations[0].invariant} without the mutant too`;
  return undefined;
}

export interface Kill {
  readonly seed: number;
  readonly found?: Found;
  /** killProblem's answer: undefined for a kill the matrix accepts. */
  readonly problem?: string;
}

/** The matrix's search for `m` from one fast-check seed: hunt (the first violation of its invariant, shrunk) and its verdict. */
export function killSearch(m: MutantName, seed: number): Kill {
  const found = hunt(mutantConfig(m), { seed, numRuns: KILL_RUNS, weights: mutantWeights(m), invariants: [invariantById(MUTANT_INFO[m].expect)!] });
  const problem = killProblem(m, found);
  return { seed, ...(found ? { found } : {}), ...(problem ? { problem } : {}) };
}
