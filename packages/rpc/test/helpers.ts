/** Test helpers for the rpc package: a capturing logger, polling with a deadline, fixtures. */
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { PeerClient, RpcServer } from '../src';
import type { PeerClientOptions, RpcLogger, RpcServerOptions } from '../src';

export const SECRET = 'test-cluster-secret';

export interface LogLine {
  readonly level: string;
  readonly msg: string | undefined;
  readonly obj: Record<string, unknown>;
}

/** A pino-shaped logger that keeps every line, children included, in one array. */
export function captureLogger(lines: LogLine[] = []): RpcLogger & { lines: LogLine[] } {
  const make = (bindings: Record<string, unknown>): RpcLogger => {
    const at =
      (level: string) =>
      (obj: object, msg?: string): void => {
        lines.push({ level, msg, obj: { ...bindings, ...obj } });
      };
    return {
      debug: at('debug'),
      info: at('info'),
      warn: at('warn'),
      error: at('error'),
      child: (more) => make({ ...bindings, ...more }),
    };
  };
  return Object.assign(make({}), { lines });
}

/** Polls `check` until it stops throwing; rethrows its last failure after `timeoutMs`. */
export async function waitFor<T>(check: () => T, timeoutMs = 5000, intervalMs = 10): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return check();
    } catch (err) {
      if (Date.now() >= deadline) throw err;
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** Registers cleanups to run after the current test, last first. */
export function useCleanup(): (fn: () => Promise<void> | void) => void {
  const fns: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    while (fns.length > 0) await fns.pop()?.();
  });
  return (fn) => fns.push(fn);
}

export async function startServer(
  cleanup: (fn: () => Promise<void> | void) => void,
  options: Partial<RpcServerOptions> = {},
  port = 0,
): Promise<RpcServer> {
  const server = new RpcServer({
    nodeId: 'server',
    secret: SECRET,
    logger: captureLogger(),
    ...options,
  });
  await server.listen({ host: '127.0.0.1', port });
  cleanup(() => server.close());
  return server;
}

export function startClient(
  cleanup: (fn: () => Promise<void> | void) => void,
  port: number,
  options: Partial<PeerClientOptions> = {},
): PeerClient {
  const client = new PeerClient({
    nodeId: 'client',
    secret: SECRET,
    host: '127.0.0.1',
    port,
    logger: captureLogger(),
    backoff: { baseMs: 10, maxMs: 100, jitter: 'full' },
    ...options,
  });
  cleanup(() => client.close());
  return client;
}

/** A raw socket to the server, and a promise of its close. */
export async function rawSocket(
  cleanup: (fn: () => Promise<void> | void) => void,
  port: number,
): Promise<{ socket: Socket; closed: Promise<void>; received: Buffer[] }> {
  const socket = connect({ host: '127.0.0.1', port });
  cleanup(() => {
    socket.destroy();
  });
  const received: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => received.push(chunk));
  socket.on('error', () => undefined);
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('error', reject);
  });
  return { socket, closed, received };
}
