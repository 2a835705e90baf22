// Bad usage ends in one line on stderr and exit status 2, never a stack trace: the shared helpers
// every command uses to turn flag values into a model configuration.

import { type Command, InvalidArgumentError } from 'commander';
import { GEOMETRIES } from '../model/mm/geometry.ts';
import { MUTANT_INFO, type MutantName } from '../model/mutants.ts';
import { type DesignOptions, OPTION_NAMES, OVERLAP_POLICIES, PROFILES, type ProfileName, RFC_V2_OPTIONS } from '../model/options.ts';
import { type Config, type KernelConfig, designOf } from '../model/system.ts';
import { KERNEL_ITEMS, kernelWords } from '../check/counterexample.ts';
import { CHECK_MODES, type CheckMode } from '../invariants/index.ts';

export const EXIT_CLEAN = 0;
export const EXIT_VIOLATION = 1;
export const EXIT_USAGE = 2;
export const EXIT_INTERNAL = 3;
/** fuzz and explore: no violation, but nothing was tested (fuzz: a core op never succeeded; explore: no transition), so "clean" would claim nothing. */
export const EXIT_VACUOUS = 4;

/** Bad usage or input: main() prints `asi-check: <message>` as the one line on stderr and returns 2. */
export class UsageError extends Error {}

export function usageError(message: string): never {
  throw new UsageError(message);
}

/**
 * Text that came from a file or the disk (a title, a message, a file name) as a terminal should
 * get it: control characters, where ESC opens a terminal command and a newline would split a
 * one-line message, and bidirectional overrides, which reorder what is shown, become escapes
 * (\x1b, \u202e).
 */
export function printable(text: string): string {
  return text.replace(/[\p{Cc}\u200e\u200f\u202a-\u202e\u2066-\u2069]/gu, (c) => {
    const code = c.codePointAt(0)!;
    return code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}

/** Commander's own errors print one line too: its "(Did you mean ...?)" goes on the same line. */
export function oneLine(text: string): string {
  return `${text.trim().replace(/\s*\n\s*/g, ' ')}\n`;
}

/**
 * Commander throws instead of exiting, so main() decides the status and stdout drains first.
 * Subcommands inherit these settings only if they are set before the subcommand is created.
 */
export function throwOnCommanderError(cmd: Command): Command {
  return cmd.exitOverride().configureOutput({ outputError: (text, write) => write(oneLine(text)) });
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
export const parseCheckMode = oneOf<CheckMode>('check', CHECK_MODES);
/** The --check flag of fuzz and replay. */
export const CHECK_FLAG_HELP = 'how states are judged: incremental (pays for what each step changed) or full (every invariant on the whole state, the reference)';

/** A whole number in [min, max], for commander's argParser. */
export function intIn(min: number, max = Number.MAX_SAFE_INTEGER) {
  return (value: string): number => {
    if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) {
      throw new InvalidArgumentError(`expected a whole number ${max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `from ${min} to ${max}`}, got '${value}'`);
    }
    return Number(value);
  };
}

/** The values `--option name=value` accepts for a design option. */
export function optionValues(name: keyof DesignOptions): readonly string[] {
  return typeof RFC_V2_OPTIONS[name] === 'boolean' ? ['true', 'false'] : OVERLAP_POLICIES;
}

/** `--option name=value`, repeatable: a design option set on top of the profile (and the mutant's). */
export function parseOption(text: string, earlier: Partial<DesignOptions> = {}): Partial<DesignOptions> {
  const m = /^(\w+)=(.*)$/.exec(text);
  if (!m) throw new InvalidArgumentError(`expected name=value, got '${text}' (\`asi-check list\` names the options)`);
  const [, name, value] = m;
  if (!(OPTION_NAMES as readonly string[]).includes(name)) throw new InvalidArgumentError(`unknown design option '${name}' (\`asi-check list\` names them)`);
  const key = name as keyof DesignOptions;
  const allowed = optionValues(key);
  if (!allowed.includes(value)) throw new InvalidArgumentError(`${name} takes ${allowed.join(' or ')}, got '${value}'`);
  return { ...earlier, [key]: typeof RFC_V2_OPTIONS[key] === 'boolean' ? value === 'true' : value };
}

/** --kernel ITEM (repeatable): a kernel configuration other than the default, named as file names name it. */
export function parseKernel(text: string, earlier: KernelConfig = {}): KernelConfig {
  const item = KERNEL_ITEMS[text];
  if (!item) throw new InvalidArgumentError(`unknown kernel configuration '${text}' (one of ${Object.keys(KERNEL_ITEMS).join(', ')})`);
  return { ...earlier, ...item };
}

const KERNEL_FLAG_HELP = `a kernel configuration other than 5.2's default (repeatable): ${Object.keys(KERNEL_ITEMS).join(', ')}`;

export interface ConfigFlags {
  readonly profile: ProfileName;
  readonly mutant?: MutantName;
  readonly geometry: Config['geometry'];
  readonly cpus: number;
  readonly option?: Partial<DesignOptions>;
  readonly kernel?: KernelConfig;
}

/**
 * A mutant carries the design options it is defined against (e.g. overlap-check-skipped needs
 * `refuse`); `--option` overrides both the profile and those. A mutant of the other design's code
 * runs on its own profile (an asi25 mutant asked for with the default `--profile fixed` runs on
 * asi25-fixed), since its line is never reached there.
 */
export function configFromFlags(f: ConfigFlags): Config {
  const options = { ...(f.mutant ? MUTANT_INFO[f.mutant].options : {}), ...f.option };
  const own = f.mutant ? (MUTANT_INFO[f.mutant].profile ?? 'fixed') : f.profile;
  return {
    geometry: f.geometry,
    cpus: f.cpus,
    profile: designOf({ profile: own }) === designOf(f) ? f.profile : own,
    ...(Object.keys(options).length ? { options } : {}),
    ...(f.mutant ? { mutant: f.mutant } : {}),
    ...(f.kernel ? { kernel: f.kernel } : {}),
  };
}

/** What a run's first line says of its configuration: "profile fixed, kernel nokmem, real geometry, 2 CPUs". */
export function describeConfig(config: Config): string {
  const kernel = kernelWords(config.kernel);
  return `profile ${config.profile}${config.mutant ? `, mutant ${config.mutant}` : ''}${kernel.length ? `, kernel ${kernel.join('+')}` : ''}, ${config.geometry} geometry, ${config.cpus} CPUs`;
}

/**
 * The flags configFromFlags reads, as fuzz, explore and replay --seed take them; `note` opens each
 * help text ("with --seed: ").
 */
export function configOptions(cmd: Command, note = ''): Command {
  return cmd
    .option('--profile <profile>', `${note}design profile`, parseProfile, 'fixed' as ProfileName)
    .option('--mutant <mutant>', `${note}run a mutant of the model (with the design options it needs)`, parseMutant)
    .option('--geometry <geometry>', `${note}small (3-bit levels) or real (9-bit)`, parseGeometry, 'small' as Config['geometry'])
    .option('--cpus <n>', `${note}CPUs`, intIn(1, 4), 2)
    .option('--option <name=value>', `${note}set a design option (repeatable; \`asi-check list\` names them)`, parseOption)
    .option('--kernel <item>', `${note}${KERNEL_FLAG_HELP}`, parseKernel);
}
