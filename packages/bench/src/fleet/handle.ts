/**
 * The harness's side of a fleet process: spawned through `bash -c 'ulimit -n ...; exec node'`
 * (tens of thousands of sockets need more open files than the usual default), typed commands
 * over IPC, each with a deadline.
 *
 * @example
 * const fleet = await startFleet();
 * await fleet.connect({ users, urls, secret, ... });
 * const traffic = await fleet.traffic({ rate: 200, senders, fanout, durationMs: 8000, drainTimeoutMs: 5000 });
 * await fleet.close();
 */
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { REPO_ROOT } from '@chat/testkit';
import type {
  FleetChurnCommand,
  FleetCommand,
  FleetConnectCommand,
  FleetConnectResult,
  FleetCreateChatsCommand,
  FleetReply,
  FleetStatus,
  FleetTrafficCommand,
  FleetTrafficResult,
} from './messages';

export interface FleetHandle {
  readonly pid: number;
  connect(c: Omit<FleetConnectCommand, 'cmd'>): Promise<FleetConnectResult>;
  createChats(c: Omit<FleetCreateChatsCommand, 'cmd'>): Promise<{ chats: number; seconds: number }>;
  traffic(c: Omit<FleetTrafficCommand, 'cmd'>): Promise<FleetTrafficResult>;
  /** Closes these devices' connections; they reconnect after `offlineMs`. */
  churn(c: Omit<FleetChurnCommand, 'cmd'>): Promise<{ closed: number }>;
  /** The bare server's chats: topics g0..g(n-1). */
  createChatsBare(groups: number): Promise<void>;
  status(): Promise<FleetStatus>;
  stopTraffic(): Promise<void>;
  close(): Promise<void>;
}

const CHILD = resolve(__dirname, 'child.ts');
const SLACK_MS = 20_000;
export const OPEN_FILES = 200_000;

/** argv for spawn that runs `node <args>` with the open-files limit raised as far as allowed. */
export function withOpenFiles(args: readonly string[]): [string, string[]] {
  // Without CAP_SYS_RESOURCE the hard limit stays: then take the hard limit.
  const raise = `ulimit -n ${OPEN_FILES} 2>/dev/null || ulimit -n "$(ulimit -Hn)"`;
  return ['bash', ['-c', `${raise}; exec "$0" "$@"`, process.execPath, ...args]];
}

export function startFleet(): Promise<FleetHandle> {
  const [cmd, args] = withOpenFiles(['--import', 'tsx', CHILD]);
  const child = spawn(cmd, args, {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const killOnExit = (): void => void child.kill('SIGKILL');
  process.on('exit', killOnExit);
  let nextId = 1;
  const waiting = new Map<number, (reply: FleetReply) => void>();
  const exited = new Promise<void>((resolveExit) => {
    child.once('exit', (code, signal) => {
      process.off('exit', killOnExit);
      for (const [id, settle] of waiting)
        settle({ id, ok: false, error: `fleet exited (${code ?? signal})` });
      waiting.clear();
      resolveExit();
    });
  });
  child.on('message', (reply: FleetReply) => {
    const settle = waiting.get(reply.id);
    waiting.delete(reply.id);
    settle?.(reply);
  });
  const call = <T>(command: FleetCommand, timeoutMs: number): Promise<T> =>
    new Promise<T>((resolveCall, reject) => {
      const id = nextId++;
      const timer = setTimeout(() => {
        waiting.delete(id);
        reject(new Error(`fleet: ${command.cmd} got no answer in ${timeoutMs} ms`));
      }, timeoutMs);
      waiting.set(id, (reply) => {
        clearTimeout(timer);
        if (reply.ok) resolveCall(reply.result as T);
        else reject(new Error(`fleet: ${command.cmd}: ${reply.error}`));
      });
      child.send({ id, command });
    });
  const handle: FleetHandle = {
    pid: child.pid!,
    connect: (c) => call({ cmd: 'connect', ...c }, c.timeoutMs + SLACK_MS),
    createChats: (c) => call({ cmd: 'createChats', ...c }, c.timeoutMs + SLACK_MS),
    traffic: (c) => call({ cmd: 'traffic', ...c }, c.durationMs + c.drainTimeoutMs + SLACK_MS),
    // Generous: a fleet busy with traffic on a starved machine answers late (10 s was missed).
    churn: (c) => call({ cmd: 'churn', ...c }, 30_000),
    createChatsBare: async (groups) => {
      await call(
        { cmd: 'setChats', chatIds: Array.from({ length: groups }, (_, g) => `g${g}`) },
        10_000,
      );
    },
    status: () => call({ cmd: 'status' }, 10_000),
    stopTraffic: async () => {
      await call({ cmd: 'stopTraffic' }, 10_000);
    },
    close: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.disconnect();
      const timer = setTimeout(() => child.kill('SIGKILL'), 6_000);
      await exited;
      clearTimeout(timer);
    },
  };
  return new Promise((resolveStart, reject) => {
    child.once('spawn', () => resolveStart(handle));
    child.once('error', reject);
  });
}
