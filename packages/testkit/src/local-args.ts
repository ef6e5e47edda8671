/** Command-line arguments of `npm start`, validated with messages that say what is wrong. */
import { parseArgs } from 'node:util';

export interface LocalArgs {
  readonly nodes: number;
  readonly members: number;
  /** Storage on a Citus coordinator and two workers instead of one embedded PostgreSQL. */
  readonly citus: boolean;
  /**
   * TLS on every hop: a throwaway local CA, clients over https/wss through a TLS edge (nginx),
   * and the internal links (RPC, etcd) over TLS.
   */
  readonly secure: boolean;
}

export const LOCAL_USAGE = 'usage: npm start -- [--nodes N] [--members M] [--citus] [--secure]';

export const DEV_SECRET_NOTICE =
  '!!! INSECURE LOCAL RUN: tokens are signed with the development secret "dev-secret". Set CHAT_AUTH_SECRET in any real deployment. !!!';

/** A bad `npm start` command line: the message names the option; exit with `exitCode`. */
export class LocalArgsError extends Error {
  override readonly name = 'LocalArgsError';
  readonly exitCode = 2;
}

const OPTIONS = {
  nodes: { type: 'string' },
  members: { type: 'string' },
  citus: { type: 'boolean' },
  secure: { type: 'boolean' },
} as const;

/**
 * Parses with `node:util` parseArgs, lenient and with tokens, so that each problem is told in
 * one line naming the option (its strict messages suggest `--` positionals, which npm start has
 * none of).
 */
export function parseLocalArgs(argv: readonly string[]): LocalArgs {
  const { values, tokens } = parseArgs({
    args: [...argv],
    options: OPTIONS,
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  const fail = (problem: string): never => {
    throw new LocalArgsError(`${problem}; ${LOCAL_USAGE}`);
  };
  for (const token of tokens) {
    if (token.kind === 'positional') fail(`unexpected argument ${JSON.stringify(token.value)}`);
    if (token.kind !== 'option') continue;
    if (!Object.prototype.hasOwnProperty.call(OPTIONS, token.name)) {
      fail(`unknown option ${token.rawName}`);
    }
    const isCount = token.name === 'nodes' || token.name === 'members';
    if (!isCount && token.value !== undefined) fail(`${token.rawName} takes no value`);
  }
  const count = (name: 'nodes' | 'members'): number | undefined => {
    const raw = values[name];
    if (raw === undefined) return undefined;
    const n = Number(raw);
    if (typeof raw !== 'string' || raw.trim() === '' || !Number.isInteger(n) || n < 1 || n > 32) {
      fail(
        `--${name} needs a whole number from 1 to 32, got ${typeof raw === 'string' ? JSON.stringify(raw) : 'nothing'}`,
      );
    }
    return n;
  };
  const nodes = count('nodes') ?? 3;
  const members = count('members') ?? nodes;
  if (members > nodes) fail(`--members (${members}) cannot exceed --nodes (${nodes})`);
  return { nodes, members, citus: values.citus === true, secure: values.secure === true };
}
