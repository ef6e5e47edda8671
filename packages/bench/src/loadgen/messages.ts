/** The IPC protocol between the benchmark harness and its load-generator process. */
import type { CpuSeconds, LatencySummary } from '../summary';

export type CodecName = 'json' | 'msgpack';

export interface ConnectCommand {
  readonly cmd: 'connect';
  readonly url: string;
  readonly secret: string;
  readonly codec: CodecName;
  /** Users to connect, named `${prefix}0000`..., one device `d1` each. */
  readonly users: number;
  readonly prefix: string;
  /** Per user, the URL to connect to (its owner node); default `url` for everyone. */
  readonly urls?: readonly string[];
  /** New connections started per second at most. */
  readonly connectRatePerSec: number;
  /** Connections being opened at once at most. */
  readonly maxPending: number;
  readonly timeoutMs: number;
  /** A cumulative ack goes at most this long (ms) after the first event it covers (SDK: 20). */
  readonly ackEveryMs: number;
  /** ... or at once after this many unacked events (SDK: 50; default 50). */
  readonly ackEveryEvents?: number;
}

export interface DisconnectCommand {
  readonly cmd: 'disconnect';
  readonly timeoutMs: number;
}

export interface CreateChatsCommand {
  readonly cmd: 'createChats';
  readonly concurrency: number;
  readonly timeoutMs: number;
}

export interface StepCommand {
  readonly cmd: 'step';
  /** Offered rate, msgs/s over all users. */
  readonly rate: number;
  readonly warmupMs: number;
  readonly measureMs: number;
  /** After the schedule, how long to wait for outstanding oks and deliveries. */
  readonly drainTimeoutMs: number;
  /** Processes whose CPU is sampled at the window's edges. */
  readonly nodePid: number;
  /** Further node processes (a cluster) whose CPU counts as the node's. */
  readonly otherNodePids?: readonly number[];
  readonly postmasterPid: number;
}

export type GeneratorCommand =
  ConnectCommand | DisconnectCommand | CreateChatsCommand | StepCommand;

export interface GeneratorRequest {
  readonly id: number;
  readonly command: GeneratorCommand;
}

export type GeneratorReply =
  | { readonly id: number; readonly ok: true; readonly result: unknown }
  | { readonly id: number; readonly ok: false; readonly error: string };

export interface ConnectResult {
  readonly connected: number;
  readonly seconds: number;
}

export interface CreateChatsResult {
  readonly chats: number;
  readonly seconds: number;
}

/** What the generator measures in a step; the harness adds the verdict. */
export interface GeneratorStepResult {
  readonly offeredRate: number;
  readonly windowSec: number;
  readonly sentRate: number;
  readonly ackedRate: number;
  /** Sends acked with ok in the whole step (warm-up and drain included). */
  readonly acked: number;
  readonly achievedRate: number;
  readonly ack: LatencySummary;
  readonly deliver: LatencySummary;
  readonly lag: LatencySummary;
  readonly errors: number;
  readonly undelivered: number;
  /** Connections the node closed during the step, and their close codes. */
  readonly disconnects: number;
  readonly closeCodes: Readonly<Record<string, number>>;
  readonly cpu: CpuSeconds;
  /** Milliseconds from the end of the schedule until everything was in (or the deadline). */
  readonly drainMs: number;
}
