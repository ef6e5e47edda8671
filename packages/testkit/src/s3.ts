/**
 * A local S3-compatible server (s3rver, see s3-server.ts) for tests and `npm start`, with its
 * data in a temp dir. `stop()` ends the server process (an object-storage outage), `start()`
 * runs it again on the same port with the same objects, `close()` ends it and deletes the data.
 *
 * s3rver accepts presigned POST uploads and presigned GETs but does not check V4 signatures
 * or POST policy conditions: tests assert on the policy the node builds instead.
 *
 * @example
 * const s3 = await startS3();
 * const node = await startSingleNode({ env: s3.nodeEnv() });
 * await s3.stop();  // storage down
 * await s3.start(); // and back
 * await s3.close();
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';

/** s3rver knows this one key pair only. */
export const S3_ACCESS_KEY = 'S3RVER';
export const S3_SECRET_KEY = 'S3RVER';

export interface S3Handle {
  /** `http://127.0.0.1:<port>` */
  readonly endpoint: string;
  readonly port: number;
  readonly accessKey: string;
  readonly secretKey: string;
  /** Where the objects live (deleted by close()). */
  readonly directory: string;
  /** CHAT_S3_* variables that point a chat node at this server (bucket default `chat-media`). */
  nodeEnv(bucket?: string): Record<string, string>;
  /** Ends the server process; the data stays. */
  stop(): Promise<void>;
  /** Runs the server again on the same port. */
  start(): Promise<void>;
  /** Ends the server and deletes its data. */
  close(): Promise<void>;
}

export interface S3Options {
  /** Deadline for the server to listen, ms (default 30 000). */
  readonly startTimeoutMs?: number;
}

const SERVER_SCRIPT = resolve(__dirname, 's3-server.ts');
const REPO_ROOT = resolve(__dirname, '../../..');

const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

interface Running {
  readonly child: ChildProcess;
  readonly port: number;
  readonly exited: Promise<void>;
}

function spawnServer(directory: string, port: number, timeoutMs: number): Promise<Running> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', SERVER_SCRIPT, JSON.stringify({ port, directory })],
    { cwd: REPO_ROOT, stdio: ['pipe', 'pipe', 'pipe'] },
  );
  running.add(child);
  child.stdin?.on('error', () => undefined);
  let stderr = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-4000);
  });
  const exited = new Promise<void>((resolveExit) =>
    child.once('exit', () => {
      running.delete(child);
      resolveExit();
    }),
  );
  return new Promise<Running>((resolveReady, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`s3 server did not start within ${timeoutMs} ms\n${stderr}`));
    }, timeoutMs);
    const lines = createInterface({ input: child.stdout! });
    lines.on('line', (text) => {
      let line: Record<string, unknown>;
      try {
        line = JSON.parse(text) as Record<string, unknown>;
      } catch {
        return;
      }
      clearTimeout(timer);
      if (line.ready === true) resolveReady({ child, port: Number(line.port), exited });
      else reject(new Error(`s3 server failed: ${String(line.error)}\n${stderr}`));
    });
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`s3 server exited before it was ready\n${stderr}`));
    });
  });
}

async function end(server: Running): Promise<void> {
  if (server.child.exitCode !== null || server.child.signalCode !== null) return;
  server.child.kill('SIGTERM');
  const timer = setTimeout(() => server.child.kill('SIGKILL'), 5000);
  await server.exited;
  clearTimeout(timer);
}

/** Starts s3rver on a free loopback port with a fresh data directory. */
export async function startS3(options: S3Options = {}): Promise<S3Handle> {
  const timeoutMs = options.startTimeoutMs ?? 30_000;
  const directory = mkdtempSync(join(tmpdir(), 'chat-s3-'));
  const removeData = (): void => rmSync(directory, { recursive: true, force: true });
  process.on('exit', removeData);
  let server: Running | undefined;
  try {
    server = await spawnServer(directory, 0, timeoutMs);
  } catch (err) {
    removeData();
    throw err;
  }
  const port = server.port;
  const endpoint = `http://127.0.0.1:${port}`;
  let queue: Promise<unknown> = Promise.resolve();
  const serial = (run: () => Promise<void>): Promise<void> => {
    const result = queue.then(run, run);
    queue = result.catch(() => undefined);
    return result;
  };
  return {
    endpoint,
    port,
    accessKey: S3_ACCESS_KEY,
    secretKey: S3_SECRET_KEY,
    directory,
    nodeEnv: (bucket = 'chat-media') => ({
      CHAT_S3_ENDPOINT: endpoint,
      CHAT_S3_ACCESS_KEY: S3_ACCESS_KEY,
      CHAT_S3_SECRET_KEY: S3_SECRET_KEY,
      CHAT_S3_BUCKET: bucket,
    }),
    stop: () =>
      serial(async () => {
        if (server !== undefined) await end(server);
        server = undefined;
      }),
    start: () =>
      serial(async () => {
        server ??= await spawnServer(directory, port, timeoutMs);
      }),
    close: () =>
      serial(async () => {
        if (server !== undefined) await end(server);
        server = undefined;
        removeData();
        process.off('exit', removeData);
      }),
  };
}
