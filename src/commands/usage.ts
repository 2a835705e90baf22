// Bad usage ends in one line on stderr and exit status 2, never a stack trace: the shared helpers
// every command uses to turn flag values into a model configuration.

import { type Command, InvalidArgumentError } from 'commander';
import { GEOMETRIES } from '../model/geometry.ts';
import { MUTANT_INFO, type MutantName } from '../model/mutants.ts';
import { PROFILES, type ProfileName } from '../model/options.ts';
import type { Config } from '../model/system.ts';

export const EXIT_CLEAN = 0;
export const EXIT_VIOLATION = 1;
export const EXIT_USAGE = 2;

/** Prints `asi-check: <message>` and exits 2. */
export function usageError(message: string): never {
  console.error(`asi-check: ${message}`);
  process.exit(EXIT_USAGE);
}

/**
 * Commander's own usage errors (unknown option, bad value) exit 2 too. A subcommand inherits the
 * program's exitOverride only if it was set before the subcommand was created, so a command sets it.
 */
export function exitUsageOnCommanderError(cmd: Command): Command {
  return cmd.exitOverride((err) => process.exit(err.exitCode === 0 ? EXIT_CLEAN : EXIT_USAGE));
}

function oneOf<T extends string>(what: string, known: readonly string[]) {
  return (value: string): T => {
    if (!known.includes(value)) throw new InvalidArgumentError(`unknown ${what} '${value}' (one of: ${known.join(', ')})`);
    return value as T;
  };
}

export const parseProfile = oneOf<ProfileName>('profile', Object.keys(PROFILES));
export const parseMutant = oneOf<MutantName>('mutant', Object.keys(MUTANT_INFO));
export const parseGeometry = oneOf<Config['geometry']>('geometry', Object.keys(GEOMETRIES));

/** A whole number in [min, max], for commander's argParser. */
export function intIn(min: number, max = Number.MAX_SAFE_INTEGER) {
  return (value: string): number => {
    if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) {
      throw new InvalidArgumentError(`expected a whole number from ${min} to ${max === Number.MAX_SAFE_INTEGER ? 'up' : max}, got '${value}'`);
    }
    return Number(value);
  };
}

export interface ConfigFlags {
  readonly profile: ProfileName;
  readonly mutant?: MutantName;
  readonly geometry: Config['geometry'];
  readonly cpus: number;
}

/** A mutant carries the design options it is defined against (e.g. overlap-check-skipped needs `refuse`). */
export function configFromFlags(f: ConfigFlags): Config {
  const options = f.mutant ? MUTANT_INFO[f.mutant].options : undefined;
  return { geometry: f.geometry, cpus: f.cpus, profile: f.profile, ...(options ? { options } : {}), ...(f.mutant ? { mutant: f.mutant } : {}) };
}
