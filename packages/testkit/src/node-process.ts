/**
 * Runs a chat node as a real child process (so tests can SIGKILL or SIGSTOP it) and waits for
 * its `listening` log line. Its logs go to a file in the harness's temp dir.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createWriteStream, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';

export const REPO_ROOT = resolve(__dirname, '../../..');
export const TEST_SECRET = 'test-secret';

export interface NodeProcessOptions {
  readonly databaseUrl: string;
  readonly nodeId?: string;
  /** Fixed port, e.g. to restart a node where its clients expect it; 0 picks a free one. */
  readonly port?: number;
  /** Extra CHAT_* variables (heartbeats, limits, ...). */
  readonly env?: Readonly<Record<string, string>>;
  readonly startTimeoutMs?: number;
}

export interface NodeProcess {
  readonly nodeId: string;
  readonly port: number;
  /** ws://127.0.0.1:<port>/ws */
  readonly url: string;
  readonly httpUrl: string;
  readonly pid: number;
  readonly logFile: string;
  /** Sends a signal (SIGKILL, SIGSTOP, SIGCONT, SIGTERM). */
  signal(signal: NodeJS.Signals): void;
  /** Resolves with the exit code (or signal name) once the process ended. */
  readonly exited: Promise<number | string>;
  /** SIGTERM, then SIGKILL after a grace period; resolves when the process is gone. */
  stop(graceMs?: number): Promise<void>;
}

const logDir = mkdtempSync(join(tmpdir(), 'chat-nodes-'));

// A test that dies half-way must not leave node processes behind (they would keep jest alive).
const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

export async function startNodeProcess(options: NodeProcessOptions): Promise<NodeProcess> {
  const nodeId = options.nodeId ?? 'node-1';
  const logFile = join(logDir, `${nodeId}-${Date.now()}.log`);
  const child: ChildProcess = spawn(
    process.execPath,
    ['--import', 'tsx', join(REPO_ROOT, 'packages/node/src/main.ts')],
    {
      cwd: REPO_ROOT,
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? '/root',
        DATABASE_URL: options.databaseUrl,
        CHAT_NODE_ID: nodeId,
        CHAT_HOST: '127.0.0.1',
        CHAT_PORT: String(options.port ?? 0),
        CHAT_AUTH_SECRET: TEST_SECRET,
        CHAT_LOG_LEVEL: 'info',
        ...options.env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  running.add(child);
  const log = createWriteStream(logFile);
  child.stderr?.pipe(log);
  const exited = new Promise<number | string>((resolveExit) => {
    child.on('exit', (code, signal) => {
      running.delete(child);
      resolveExit(code ?? signal ?? 'unknown');
    });
  });

  const port = await new Promise<number>((resolvePort, reject) => {
    const timer = setTimeout(
      () =>
        reject(
          new Error(
            `${nodeId} did not start within ${options.startTimeoutMs ?? 30_000} ms; log: ${logFile}`,
          ),
        ),
      options.startTimeoutMs ?? 30_000,
    );
    const lines = createInterface({ input: child.stdout! });
    lines.on('line', (line) => {
      log.write(line + '\n');
      try {
        const entry = JSON.parse(line) as { msg?: string; port?: number };
        if (entry.msg === 'listening' && typeof entry.port === 'number') {
          clearTimeout(timer);
          resolvePort(entry.port);
        }
      } catch {
        // not a JSON log line
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`${nodeId} exited (${code}) before listening; log: ${logFile}`));
    });
  });

  const stop = async (graceMs = 5_000): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGCONT');
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  };

  return {
    nodeId,
    port,
    url: `ws://127.0.0.1:${port}/ws`,
    httpUrl: `http://127.0.0.1:${port}`,
    pid: child.pid!,
    logFile,
    signal: (signal) => void child.kill(signal),
    exited,
    stop,
  };
}
