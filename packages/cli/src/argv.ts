/**
 * A small argv parser: `--name value`, `--name=value`, boolean `--flag`, `-h`, and `--` to end
 * the options. Pure; throws UsageError with a message naming the problem.
 */
import { UsageError } from './errors';

export interface FlagSpec {
  readonly type: 'boolean' | 'number' | 'string';
  readonly description: string;
  /** Placeholder of the value in help, e.g. `N`. */
  readonly valueName?: string;
}

export type FlagValue = string | number | boolean;

export interface ParsedArgs {
  readonly positionals: readonly string[];
  readonly flags: Readonly<Record<string, FlagValue>>;
}

/**
 * @example
 * parseArgv(['node-4', '--rate=40', '--wait'], { rate: { type: 'number', description: '' }, wait: { type: 'boolean', description: '' } });
 * // { positionals: ['node-4'], flags: { rate: 40, wait: true } }
 */
export function parseArgv(
  argv: readonly string[],
  spec: Readonly<Record<string, FlagSpec>>,
): ParsedArgs {
  const positionals: string[] = [];
  const flags: Record<string, FlagValue> = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (arg === '-h') {
      flags['help'] = true;
      continue;
    }
    if (!arg.startsWith('--') || arg.length === 2) {
      if (arg.startsWith('-') && arg.length > 1 && !/^-\d/.test(arg)) {
        throw new UsageError(`unknown option ${arg}`);
      }
      positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = arg.slice(2, eq === -1 ? undefined : eq);
    const flag = spec[name];
    if (flag === undefined) throw new UsageError(`unknown option --${name}`);
    if (Object.prototype.hasOwnProperty.call(flags, name)) {
      throw new UsageError(`option --${name} given twice`);
    }
    if (flag.type === 'boolean') {
      if (eq !== -1) throw new UsageError(`option --${name} takes no value`);
      flags[name] = true;
      continue;
    }
    let raw: string | undefined;
    if (eq !== -1) raw = arg.slice(eq + 1);
    else {
      raw = argv[i + 1];
      if (raw === undefined || (raw.startsWith('--') && raw.length > 2)) {
        throw new UsageError(`option --${name} needs a value`);
      }
      i++;
    }
    if (flag.type === 'number') {
      const value = raw.trim() === '' ? NaN : Number(raw);
      if (!Number.isFinite(value)) {
        throw new UsageError(`option --${name} needs a number, got ${JSON.stringify(raw)}`);
      }
      flags[name] = value;
    } else {
      flags[name] = raw;
    }
  }
  return { positionals, flags };
}

export function flagNumber(args: ParsedArgs, name: string): number | undefined {
  const value = args.flags[name];
  return typeof value === 'number' ? value : undefined;
}

export function flagString(args: ParsedArgs, name: string): string | undefined {
  const value = args.flags[name];
  return typeof value === 'string' ? value : undefined;
}

export function flagBoolean(args: ParsedArgs, name: string): boolean {
  return args.flags[name] === true;
}

/** A positive finite number, or a UsageError naming the option. */
export function positiveOption(args: ParsedArgs, name: string): number | undefined {
  const value = flagNumber(args, name);
  if (value !== undefined && !(value > 0)) {
    throw new UsageError(`--${name} must be a positive number, got ${value}`);
  }
  return value;
}
