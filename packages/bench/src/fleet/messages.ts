/** The IPC protocol between the harness and a fleet process (many lean devices). */

export interface FleetConnectCommand {
  readonly cmd: 'connect';
  /** User ids (device `d1` each) and the URL each connects to first. */
  readonly users: readonly string[];
  readonly urls: readonly string[];
  readonly secret: string;
  readonly connectRatePerSec: number;
  readonly maxPending: number;
  /** Source addresses, round-robin over the connections (each has its own ephemeral ports). */
  readonly localAddresses: readonly string[];
  /** Follow `moved`, and reconnect after a drop (asking the registry where to go when given). */
  readonly reconnect: boolean;
  readonly registryUrl?: string;
  readonly ackEveryMs: number;
  readonly timeoutMs: number;
}

export interface FleetCreateChatsCommand {
  readonly cmd: 'createChats';
  /** Each chat: the creating device's index and the other members' user ids. */
  readonly chats: readonly { readonly creator: number; readonly members: readonly string[] }[];
  readonly concurrency: number;
  readonly timeoutMs: number;
}

export interface FleetTrafficCommand {
  readonly cmd: 'traffic';
  /** Messages per second over all senders, open-loop. */
  readonly rate: number;
  /** Message k is sent by senders[k % senders.length] into chat `chat` (an index into createChats). */
  readonly senders: readonly { readonly device: number; readonly chat: number }[];
  /** Deliveries each message should get (other members of its chat). */
  readonly fanout: readonly number[];
  readonly durationMs: number;
  /** After the schedule (or a stop), how long to wait for outstanding deliveries. */
  readonly drainTimeoutMs: number;
}

/**
 * Churn: the given devices close their connections as a user going offline would (close frame
 * 1000) and reconnect `offlineMs` later (plus up to 1 s of jitter) through the registry.
 */
export interface FleetChurnCommand {
  readonly cmd: 'churn';
  /** Device indices (into this fleet's users). */
  readonly devices: readonly number[];
  readonly offlineMs: number;
}

export type FleetCommand =
  | FleetConnectCommand
  | FleetChurnCommand
  | FleetCreateChatsCommand
  | FleetTrafficCommand
  | { readonly cmd: 'setChats'; readonly chatIds: readonly string[] }
  | { readonly cmd: 'status' }
  | { readonly cmd: 'stopTraffic' }
  | { readonly cmd: 'disconnect' };

export interface FleetRequest {
  readonly id: number;
  readonly command: FleetCommand;
}

export type FleetReply =
  | { readonly id: number; readonly ok: true; readonly result: unknown }
  | { readonly id: number; readonly ok: false; readonly error: string };

export interface FleetConnectResult {
  readonly connected: number;
  readonly seconds: number;
  readonly refusals: number;
}

export interface FleetStatus {
  readonly connected: number;
  readonly total: number;
  /** Wall-clock ms (Date.now()) of every welcome since the last traffic started: [device, at]. */
  readonly welcomes: number;
}

/** A welcome seen during traffic: device index, node id, Date.now(). */
export type WelcomeRecord = readonly [number, string, number];

export interface FleetTrafficResult {
  /** Date.now() at the schedule's start. */
  readonly startedAt: number;
  /** Seconds the schedule ran (shorter when stopped). */
  readonly seconds: number;
  readonly scheduled: number;
  readonly sent: number;
  /** Due while the sender was not connected: not sent. */
  readonly skipped: number;
  readonly acked: number;
  readonly errors: number;
  readonly deliveries: number;
  /** Acked messages that some member never got by the end of the drain. */
  readonly lost: number;
  /** Deliveries missing for those. */
  readonly lostDeliveries: number;
  /** Per second of the schedule: send→deliver latencies (ms) of messages scheduled in it. */
  readonly deliverMs: readonly (readonly number[])[];
  /** Beside each `deliverMs` entry: the recipient's device index in the fleet. */
  readonly deliverTo: readonly (readonly number[])[];
  /** Per second of the schedule: send→ok latencies (ms). */
  readonly ackMs: readonly (readonly number[])[];
  /** Per second of the schedule: the fleet process's longest event-loop delay (ms). */
  readonly loopLagMs: readonly number[];
  readonly welcomes: readonly WelcomeRecord[];
  /** Connections the nodes closed during traffic: device, node it was on, close code, Date.now(). */
  readonly closes: readonly (readonly [number, string, number, number])[];
  /** Close codes of connections the nodes closed during traffic. */
  readonly closeCodes: Readonly<Record<string, number>>;
  readonly drainMs: number;
  readonly cpuSec: number;
}
