/** Runs the real `chatctl` binary (the npm bin shim) as a child process, for integration tests. */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { REPO_ROOT } from '@chat/testkit';

export const CHATCTL = join(REPO_ROOT, 'node_modules', '.bin', 'chatctl');

export interface ChatctlResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface ChatctlProcess {
  readonly child: ChildProcess;
  /** Everything written to stderr so far. */
  stderr(): string;
  readonly done: Promise<ChatctlResult>;
}

export function startChatctl(
  args: readonly string[],
  env: Readonly<Record<string, string>>,
): ChatctlProcess {
  const child = spawn(CHATCTL, [...args], {
    cwd: REPO_ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const done = new Promise<ChatctlResult>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
  return { child, stderr: () => stderr, done };
}

export function chatctl(
  args: readonly string[],
  env: Readonly<Record<string, string>>,
): Promise<ChatctlResult> {
  return startChatctl(args, env).done;
}
