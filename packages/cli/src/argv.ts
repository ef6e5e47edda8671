/**
 * chatctl's option parsing on `node:util` parseArgs: `--name value`, `--name=value`, boolean
 * `--flag`, short aliases (`-h`), and `--` to end the options. parseArgs runs in its lenient
 * mode with tokens so that every problem is reported here in chatctl's words, naming the option
 * (its strict mode's messages do not say which command to look at). Pure; throws UsageError.
 */
import { parseArgs } from 'node:util';
import { UsageError } from './errors';

export interface FlagSpec {
  readonly type: 'boolean' | 'number' | 'string';
  readonly description: string;
  /** Placeholder of the value in help, e.g. `N`. */
  readonly valueName?: string;
  /** One-letter alias, e.g. `h` for `-h`. */
  readonly short?: string;
}

export type FlagValue = string | number | boolean;

export interface ParsedArgs {
  readonly positionals: readonly string[];
  readonly flags: Readonly<Record<string, FlagValue>>;
}

type OptionToken = {
  readonly kind: 'option';
  readonly name: string;
  readonly rawName: string;
  readonly value?: string | undefined;
  readonly inlineValue?: boolean | undefined;
};

/**
 * @example
 * parseArgv(['node-4', '--rate=40', '--wait'], { rate: { type: 'number', description: '' }, wait: { type: 'boolean', description: '' } });
 * // { positionals: ['node-4'], flags: { rate: 40, wait: true } }
 */
export function parseArgv(
  argv: readonly string[],
  spec: Readonly<Record<string, FlagSpec>>,
): ParsedArgs {
  const options = Object.fromEntries(
    Object.entries(spec).map(([name, flag]) => [
      name,
      {
        type: flag.type === 'boolean' ? ('boolean' as const) : ('string' as const),
        ...(flag.short === undefined ? {} : { short: flag.short }),
      },
    ]),
  );
  const { tokens } = parseArgs({
    args: [...argv],
    options,
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  const positionals: string[] = [];
  const flags: Record<string, FlagValue> = {};
  for (const token of tokens) {
    if (token.kind === 'positional') positionals.push(token.value);
    else if (token.kind === 'option') {
      const [name, value] = optionValue(token, spec);
      if (Object.prototype.hasOwnProperty.call(flags, name)) {
        throw new UsageError(`option --${name} given twice`);
      }
      flags[name] = value;
    }
  }
  return { positionals, flags };
}

function optionValue(
  token: OptionToken,
  spec: Readonly<Record<string, FlagSpec>>,
): [string, FlagValue] {
  const flag = Object.prototype.hasOwnProperty.call(spec, token.name)
    ? spec[token.name]
    : undefined;
  if (flag === undefined) throw new UsageError(`unknown option ${token.rawName}`);
  const shown = `--${token.name}`;
  if (flag.type === 'boolean') {
    if (token.value !== undefined) throw new UsageError(`option ${shown} takes no value`);
    return [token.name, true];
  }
  const raw = token.value;
  // Lenient parseArgs takes the next word as the value even when it looks like an option.
  if (raw === undefined || (token.inlineValue !== true && raw.startsWith('-'))) {
    throw new UsageError(
      `option ${shown} needs a value` +
        (raw === undefined || raw.startsWith('--')
          ? ''
          : ` (write ${shown}=${raw} if you mean it)`),
    );
  }
  if (flag.type === 'string') return [token.name, raw];
  const value = raw.trim() === '' ? NaN : Number(raw);
  if (!Number.isFinite(value)) {
    throw new UsageError(`option ${shown} needs a number, got ${JSON.stringify(raw)}`);
  }
  return [token.name, value];
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

/**
 * Whether the command line asks for JSON, read from the raw words so that even an error in
 * parsing them is reported as JSON.
 */
export function wantsJson(argv: readonly string[]): boolean {
  const end = argv.indexOf('--');
  return (end === -1 ? argv : argv.slice(0, end)).includes('--json');
}
