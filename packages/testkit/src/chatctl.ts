/** The real chatctl binary run against a test cluster, and what its output says. */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import type { StatusReport } from '@chat/cli';
import { REPO_ROOT } from './node-process';

/** The npm bin shim, as an operator runs it. */
const CHATCTL = join(REPO_ROOT, 'node_modules', '.bin', 'chatctl');

export interface ChatctlResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** A chatctl still running: for tests that act while it waits (a paused ring write, a drain). */
export interface ChatctlProcess {
  readonly child: ChildProcess;
  /** Everything written to stderr so far. */
  stderr(): string;
  readonly done: Promise<ChatctlResult>;
}

export interface ChatctlOptions {
  /**
   * At nice 19, as on an operator's own machine, for tests that time the cluster while it runs
   * (its start compiles TypeScript, about a core for a second, right as a drain begins).
   */
  readonly lowPriority?: boolean;
}

/** Starts the real chatctl binary against the cluster that `env` (CHAT_ETCD_*) points at. */
export function startChatctl(
  args: readonly string[],
  env: Readonly<Record<string, string>>,
  options: ChatctlOptions = {},
): ChatctlProcess {
  const [command, argv] = options.lowPriority
    ? ['nice', ['-n', '19', CHATCTL, ...args]]
    : [CHATCTL, [...args]];
  const child = spawn(command, argv, {
    cwd: REPO_ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const done = new Promise<ChatctlResult>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
  return { child, stderr: () => stderr, done };
}

/** Runs the real chatctl binary against the cluster to its end. */
export function chatctl(
  args: readonly string[],
  env: Readonly<Record<string, string>>,
  options: ChatctlOptions = {},
): Promise<ChatctlResult> {
  return startChatctl(args, env, options).done;
}

export async function chatctlStatus(env: Readonly<Record<string, string>>): Promise<StatusReport> {
  const r = await chatctl(['status', '--json'], env);
  if (r.code !== 0) throw new Error(`chatctl status exited ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout) as StatusReport;
}

/** `peak reconnect rate per node: node-1 54/s, ...` of chatctl's summary: the nodes' own count. */
export function nodePeaks(chatctlStdout: string): Record<string, number> {
  const line = (/peak reconnect rate per node: (.*)/.exec(chatctlStdout)?.[1] ?? '').replace(
    /\(max .*$/,
    '',
  );
  const out: Record<string, number> = {};
  for (const m of line.matchAll(/([A-Za-z0-9._-]+) (\d+)\/s/g)) out[m[1]!] = Number(m[2]);
  return out;
}

/** The nodes' own peak moves per second (chatctl's summary) stay within R + 20 %. */
export function expectNodePeaksWithin(chatctlStdout: string, rate: number): void {
  const peaks = nodePeaks(chatctlStdout);
  expect(Object.keys(peaks).length).toBeGreaterThan(0);
  for (const [node, peak] of Object.entries(peaks))
    expect({ node, peak, withinRate: peak <= rate * 1.2 }).toEqual({
      node,
      peak,
      withinRate: true,
    });
}
