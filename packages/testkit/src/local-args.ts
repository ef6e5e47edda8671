/** Command-line arguments of `npm start`, validated with messages that say what is wrong. */
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

export function parseLocalArgs(argv: readonly string[]): LocalArgs {
  let nodes = 3;
  let members: number | undefined;
  let citus = false;
  let secure = false;
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = argv[i + 1];
    const asCount = (name: string): number => {
      const n = Number(value);
      if (value === undefined || !Number.isInteger(n) || n < 1 || n > 32) {
        throw new Error(
          `${name} needs a whole number from 1 to 32, got ${value === undefined ? 'nothing' : JSON.stringify(value)}`,
        );
      }
      i++;
      return n;
    };
    if (flag === '--nodes') nodes = asCount('--nodes');
    else if (flag === '--members') members = asCount('--members');
    else if (flag === '--citus') citus = true;
    else if (flag === '--secure') secure = true;
    else throw new Error(`unknown argument ${JSON.stringify(flag)}; ${LOCAL_USAGE}`);
  }
  const m = members ?? nodes;
  if (m > nodes) throw new Error(`--members (${m}) cannot exceed --nodes (${nodes})`);
  return { nodes, members: m, citus, secure };
}
