/**
 * Runs one of our services (chat node, registry) as a real child process, so tests can
 * SIGKILL or SIGSTOP it, and waits for its `listening` log line. Logs go to a file.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createWriteStream, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';

export const REPO_ROOT = resolve(__dirname, '../../..');

export interface ServiceProcessOptions {
  /** Name for logs and errors, e.g. `node-2`. */
  readonly name: string;
  /** Entry point relative to the repository root, e.g. `packages/node/src/main.ts`. */
  readonly script: string;
  readonly env: Readonly<Record<string, string>>;
  readonly startTimeoutMs?: number;
}

export interface ServiceProcess {
  readonly name: string;
  readonly port: number;
  readonly pid: number;
  readonly logFile: string;
  /** The fields of the `listening` log line. */
  readonly listening: Readonly<Record<string, unknown>>;
  /** Sends a signal (SIGKILL, SIGSTOP, SIGCONT, SIGTERM). */
  signal(signal: NodeJS.Signals): void;
  /** Resolves with the exit code (or signal name) once the process ended. */
  readonly exited: Promise<number | string>;
  /** SIGCONT + SIGTERM, then SIGKILL after a grace period; resolves when the process is gone. */
  stop(graceMs?: number): Promise<void>;
}

const logDir = mkdtempSync(join(tmpdir(), 'chat-services-'));

// A test that dies half-way must not leave processes behind (they would keep jest alive).
const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

export async function startServiceProcess(options: ServiceProcessOptions): Promise<ServiceProcess> {
  const timeoutMs = options.startTimeoutMs ?? 30_000;
  const logFile = join(logDir, `${options.name}-${Date.now()}.log`);
  const child: ChildProcess = spawn(
    process.execPath,
    ['--import', 'tsx', join(REPO_ROOT, options.script)],
    {
      cwd: REPO_ROOT,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root', ...options.env },
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

  const listening = await new Promise<Record<string, unknown>>((resolveListening, reject) => {
    const timer = setTimeout(
      () =>
        reject(new Error(`${options.name} did not start within ${timeoutMs} ms; log: ${logFile}`)),
      timeoutMs,
    );
    const lines = createInterface({ input: child.stdout! });
    lines.on('line', (line) => {
      log.write(line + '\n');
      try {
        const entry = JSON.parse(line) as Record<string, unknown>;
        if (entry.msg === 'listening' && typeof entry.port === 'number') {
          clearTimeout(timer);
          resolveListening(entry);
        }
      } catch {
        // not a JSON log line
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`${options.name} exited (${code}) before listening; log: ${logFile}`));
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
    name: options.name,
    port: listening.port as number,
    pid: child.pid!,
    logFile,
    listening,
    signal: (signal) => void child.kill(signal),
    exited,
    stop,
  };
}
