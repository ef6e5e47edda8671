/**
 * The harness's side of the load generator: forks child.ts as its own process (own event loop,
 * own CPU accounting) and sends it typed commands, each with a hard deadline.
 *
 * @example
 * const gen = await startGenerator();
 * await gen.connect({ url, secret, codec: 'json', users: 1000, prefix: 'u', ... });
 * const step = await gen.step({ rate: 1000, warmupMs: 2000, measureMs: 6000, ... });
 * await gen.close();
 */
import { fork } from 'node:child_process';
import { resolve } from 'node:path';
import { REPO_ROOT } from '@chat/testkit';
import type {
  ConnectCommand,
  ConnectResult,
  CreateChatsCommand,
  CreateChatsResult,
  GeneratorCommand,
  GeneratorReply,
  GeneratorStepResult,
  StepCommand,
} from './messages';

export interface GeneratorHandle {
  readonly pid: number;
  connect(command: Omit<ConnectCommand, 'cmd'>): Promise<ConnectResult>;
  disconnect(timeoutMs?: number): Promise<void>;
  createChats(command: Omit<CreateChatsCommand, 'cmd'>): Promise<CreateChatsResult>;
  step(command: Omit<StepCommand, 'cmd'>): Promise<GeneratorStepResult>;
  /** Closes the channel (the child disconnects its users and exits); SIGKILL after 8 s. */
  close(): Promise<void>;
}

const CHILD = resolve(__dirname, 'child.ts');
/** Slack on top of a command's own deadline before the harness gives up on the child. */
const IPC_SLACK_MS = 15_000;

export function startGenerator(): Promise<GeneratorHandle> {
  const child = fork(CHILD, [], {
    cwd: REPO_ROOT,
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const killOnExit = (): void => void child.kill('SIGKILL');
  process.on('exit', killOnExit);
  let nextId = 1;
  const waiting = new Map<number, (reply: GeneratorReply) => void>();
  const exited = new Promise<void>((resolveExit) => {
    child.once('exit', (code, signal) => {
      process.off('exit', killOnExit);
      for (const [id, settle] of waiting) {
        settle({ id, ok: false, error: `load generator exited (${code ?? signal})` });
      }
      waiting.clear();
      resolveExit();
    });
  });
  child.on('message', (reply: GeneratorReply) => {
    const settle = waiting.get(reply.id);
    waiting.delete(reply.id);
    settle?.(reply);
  });

  const call = <T>(command: GeneratorCommand, timeoutMs: number): Promise<T> =>
    new Promise<T>((resolveCall, reject) => {
      const id = nextId++;
      const timer = setTimeout(() => {
        waiting.delete(id);
        reject(new Error(`load generator: ${command.cmd} got no answer in ${timeoutMs} ms`));
      }, timeoutMs);
      waiting.set(id, (reply) => {
        clearTimeout(timer);
        if (reply.ok) resolveCall(reply.result as T);
        else reject(new Error(`load generator: ${command.cmd}: ${reply.error}`));
      });
      child.send({ id, command });
    });

  const handle: GeneratorHandle = {
    pid: child.pid!,
    connect: (c) => call({ cmd: 'connect', ...c }, c.timeoutMs + IPC_SLACK_MS),
    disconnect: async (timeoutMs = 5_000) => {
      await call({ cmd: 'disconnect', timeoutMs }, timeoutMs + IPC_SLACK_MS);
    },
    createChats: (c) => call({ cmd: 'createChats', ...c }, c.timeoutMs + IPC_SLACK_MS),
    step: (c) =>
      call({ cmd: 'step', ...c }, c.warmupMs + c.measureMs + c.drainTimeoutMs + IPC_SLACK_MS),
    close: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.disconnect();
      const timer = setTimeout(() => child.kill('SIGKILL'), 8_000);
      await exited;
      clearTimeout(timer);
    },
  };
  return new Promise((resolveStart, reject) => {
    child.once('spawn', () => resolveStart(handle));
    child.once('error', reject);
  });
}
