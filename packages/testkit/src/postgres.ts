/**
 * Starts a private Postgres server in a child process (see postgres-server.ts) and controls it:
 * stop it to inject a database outage, start it again on the same port, close it for good.
 *
 * @example
 * const pg = await startPostgres();
 * const db = createDatabase(pg.url);
 * await pg.stop();  // queries now fail
 * await pg.start(); // and work again
 * await pg.crash(); // SIGKILL: the next start() runs crash recovery
 * await pg.freeze(); // SIGSTOP: queries hang until thaw()
 * await pg.close();
 */
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { createInterface } from 'node:readline';

export interface PostgresHandle {
  /** Superuser URL of the `postgres` database, e.g. `postgres://postgres:pw@127.0.0.1:5999/postgres`. */
  readonly url: string;
  readonly port: number;
  /** Stops the server, keeping its data; connections are terminated. */
  stop(): Promise<void>;
  /** Starts a stopped (or crashed) server again on the same port. */
  start(): Promise<void>;
  /**
   * SIGKILLs the postmaster and waits until its backends are gone: no shutdown checkpoint, so
   * the next `start()` runs crash recovery from the WAL. Open connections die without a reply.
   */
  crash(): Promise<void>;
  /**
   * SIGSTOPs the postmaster and every process it started: connections stay open and queries
   * hang, new connections are accepted by the kernel but never answered. `thaw()` resumes them.
   */
  freeze(): Promise<void>;
  thaw(): Promise<void>;
  /** Stops the server, deletes its data and waits for the child process to exit. */
  close(): Promise<void>;
}

export interface PostgresOptions {
  /**
   * Extra server settings, passed as `-c name=value`. Crash safety (fsync, synchronous_commit,
   * full_page_writes) stays on, in tests too: an ack means the commit is on disk.
   */
  readonly settings?: Readonly<Record<string, string>>;
  /**
   * Server certificate and key (PEM, e.g. from the local CA for 127.0.0.1): the server accepts
   * TLS, and clients ask for it with `?sslmode=verify-full&sslrootcert=<ca file>`.
   */
  readonly tls?: { readonly cert: string; readonly key: string };
  /** Deadline for initdb plus first start, ms (default 90 000). */
  readonly startTimeoutMs?: number;
  /** Deadline for stop, start and close, ms (default 30 000). */
  readonly commandTimeoutMs?: number;
}

const SERVER_SCRIPT = resolve(__dirname, 'postgres-server.ts');
const REPO_ROOT = resolve(__dirname, '../../..');
const STDERR_TAIL_CHARS = 8_000;

/** Starts a fresh Postgres cluster on a free loopback port. */
export async function startPostgres(options: PostgresOptions = {}): Promise<PostgresHandle> {
  const startTimeoutMs = options.startTimeoutMs ?? 90_000;
  const commandTimeoutMs = options.commandTimeoutMs ?? 30_000;
  const settings = { ...options.settings };

  // `--import tsx` resolves tsx from the working directory: run from the repository root.
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', SERVER_SCRIPT, JSON.stringify({ settings, tls: options.tls })],
    {
      cwd: REPO_ROOT,
      stdio: ['pipe', 'pipe', 'pipe'],
    },
  );

  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-STDERR_TAIL_CHARS);
  });
  // Writing after the child died raises EPIPE on the pipe; the pending request reports it.
  child.stdin.on('error', () => undefined);

  let exited = false;
  const exitPromise = new Promise<void>((resolveExit) => {
    child.once('exit', () => {
      exited = true;
      for (const waiter of waiters.splice(0)) waiter.fail(new Error('postgres server exited'));
      resolveExit();
    });
  });

  interface Waiter {
    ok(line: Record<string, unknown>): void;
    fail(err: Error): void;
  }
  const waiters: Waiter[] = [];
  const lines = createInterface({ input: child.stdout });
  lines.on('line', (text) => {
    let parsed: Record<string, unknown>;
    try {
      parsed = JSON.parse(text) as Record<string, unknown>;
    } catch {
      return; // not ours; the protocol lines are JSON objects
    }
    waiters.shift()?.ok(parsed);
  });

  /** Waits for the next answer line; `key` must be true in it. */
  const nextAnswer = (
    what: string,
    key: string,
    timeoutMs: number,
  ): Promise<Record<string, unknown>> =>
    new Promise((resolveAnswer, reject) => {
      const fail = (err: Error): void => {
        clearTimeout(timer);
        reject(
          new Error(
            `postgres server: ${what} failed: ${err.message}\n--- server stderr ---\n${stderr}`,
          ),
        );
      };
      const waiter: Waiter = {
        ok: (line) => {
          clearTimeout(timer);
          if (line[key] === true) resolveAnswer(line);
          else fail(new Error(String(line['error'] ?? JSON.stringify(line))));
        },
        fail,
      };
      const timer = setTimeout(() => {
        const index = waiters.indexOf(waiter);
        if (index >= 0) waiters.splice(index, 1);
        fail(new Error(`no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      if (exited) fail(new Error('postgres server exited'));
      else waiters.push(waiter);
    });

  let ready: Record<string, unknown>;
  try {
    ready = await nextAnswer('start', 'ready', startTimeoutMs);
  } catch (err) {
    child.kill('SIGTERM');
    throw err;
  }

  let queue: Promise<unknown> = Promise.resolve();
  const command = (name: string, key: string): Promise<void> => {
    const run = async (): Promise<void> => {
      const answer = nextAnswer(name, key, commandTimeoutMs);
      child.stdin.write(`${name}\n`);
      await answer;
    };
    const result = queue.then(run, run);
    queue = result.catch(() => undefined);
    return result;
  };

  let closing: Promise<void> | null = null;
  return {
    url: String(ready['url']),
    port: Number(ready['port']),
    stop: () => command('stop', 'stopped'),
    start: () => command('start', 'started'),
    crash: () => command('crash', 'crashed'),
    freeze: () => command('freeze', 'frozen'),
    thaw: () => command('thaw', 'thawed'),
    close: () => {
      closing ??= (async () => {
        if (!exited) {
          child.stdin.end('exit\n');
          const timer = setTimeout(() => child.kill('SIGTERM'), commandTimeoutMs);
          await exitPromise;
          clearTimeout(timer);
        }
      })();
      return closing;
    },
  };
}
