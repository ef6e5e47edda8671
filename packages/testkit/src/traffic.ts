/**
 * Helpers for cluster fault tests: SDK users that record what they observe, random chats, a
 * bounded load loop at a steady rate, the check that every acked message reached every member
 * once with contiguous per-user sequences, and a TCP proxy that can hold one direction.
 *
 * @example
 * const users = ids.map((id) => sdkUser(cluster.registryUrl, id));
 * await Promise.all(users.map((u) => u.client.connect()));
 * const chats = await createChats(users, { pairs: 20, groups: 4, groupSize: 5 }, prng(1));
 * const load = runLoad({ chats, ratePerSec: 100, durationMs: 5_000, maxMessages: 500, random: prng(2), tag: 'a' });
 * const { acked } = await load.done;
 * await waitFor(() => expect(deliveryProblems(acked, users)).toEqual([]), 20_000);
 */
import { connect, createServer } from 'node:net';
import type { Socket } from 'node:net';
import type { ChatClientOptions, ConnectionStatus } from '@chat/client';
import { ChatClient } from '@chat/client';
import type { EventFrame } from '@chat/protocol';
import type { Pool } from 'pg';
import { testToken } from './raw-client';

export interface StateChange {
  readonly status: ConnectionStatus;
  readonly node: string | null;
  /** Date.now() when the client entered this state. */
  readonly at: number;
}

/** One SDK device and everything it observed. */
export interface SdkUser {
  readonly id: string;
  readonly client: ChatClient;
  /** Events as the SDK handed them to the app (deduplicated, in seq order). */
  readonly events: EventFrame[];
  readonly states: StateChange[];
  /** What the SDK warned about (sync failed, reset, epoch changed...), with the time. */
  readonly warnings: string[];
}

export type SdkUserOptions = Omit<ChatClientOptions, 'url' | 'registryUrl' | 'user' | 'token'>;

/**
 * An SDK client routed by the registry, tuned for fault tests: short backoff (50 ms .. 1 s) and
 * a 2 s request/connect timeout, so that a connect to a frozen node is given up quickly.
 */
export function sdkUser(registryUrl: string, id: string, options: SdkUserOptions = {}): SdkUser {
  const warnings: string[] = [];
  const warn = (obj: object, msg?: string): void => {
    warnings.push(`${new Date().toISOString()} ${msg ?? ''} ${JSON.stringify(obj)}`);
  };
  const client = new ChatClient({
    backoffBaseMs: 50,
    backoffMaxMs: 1_000,
    requestTimeoutMs: 2_000,
    sendDeadlineMs: 30_000,
    logger: { debug: () => undefined, info: () => undefined, warn, error: warn },
    ...options,
    registryUrl,
    user: id,
    token: () => testToken(id, 'd1'),
  });
  const user: SdkUser = { id, client, events: [], states: [], warnings };
  client.on('event', (e) => user.events.push(e));
  client.on('state', (s) => user.states.push({ status: s.status, node: s.node, at: Date.now() }));
  return user;
}

/** The first time at or after `since` that the user was ready on a node other than `notOn`. */
export function readyElsewhereAt(user: SdkUser, since: number, notOn: string): number | undefined {
  return user.states.find((s) => s.at >= since && s.status === 'ready' && s.node !== notOn)?.at;
}

/** The first time at or after `since` that the user was ready on `node`. */
export function readyOnAt(user: SdkUser, since: number, node: string): number | undefined {
  return user.states.find((s) => s.at >= since && s.status === 'ready' && s.node === node)?.at;
}

export interface TrafficChat {
  readonly chatId: string;
  readonly members: readonly SdkUser[];
}

/**
 * Creates `pairs` 1:1 chats and `groups` groups of `groupSize` distinct random users. Every
 * user is in at least one chat (the first chats pair users up in order).
 */
export async function createChats(
  users: readonly SdkUser[],
  shape: { readonly pairs: number; readonly groups: number; readonly groupSize: number },
  random: () => number,
): Promise<TrafficChat[]> {
  const pick = (): SdkUser => users[Math.floor(random() * users.length)]!;
  const memberSets: SdkUser[][] = [];
  for (let i = 0; i < shape.pairs; i++) {
    const a = i * 2 < users.length ? users[i * 2]! : pick();
    let b = i * 2 + 1 < users.length ? users[i * 2 + 1]! : pick();
    while (b === a) b = pick();
    memberSets.push([a, b]);
  }
  for (let i = 0; i < shape.groups; i++) {
    const members = new Set<SdkUser>();
    while (members.size < Math.min(shape.groupSize, users.length)) members.add(pick());
    memberSets.push([...members]);
  }
  return Promise.all(
    memberSets.map(async (members, i) => {
      const { chatId } = await retryUnavailable(() =>
        members[0]!.client.createChat(
          members.slice(1).map((m) => m.id),
          `chat ${i}`,
        ),
      );
      return { chatId, members };
    }),
  );
}

/**
 * Retries a request that a node answered UNAVAILABLE (Postgres busy or briefly away), as an
 * app would: the SDK retries sends itself, but not chat creation, which is not idempotent.
 */
export async function retryUnavailable<T>(request: () => Promise<T>, attempts = 5): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await request();
    } catch (err) {
      const unavailable = (err as { code?: unknown }).code === 'UNAVAILABLE';
      if (!unavailable || attempt >= attempts) throw err;
      await new Promise((resolve) => setTimeout(resolve, 200 * attempt));
    }
  }
}

export interface SentMessage {
  readonly messageId: string;
  readonly chat: TrafficChat;
  readonly sender: SdkUser;
  /** Date.now() when the send was handed to the SDK. */
  readonly sentAt: number;
  /** Date.now() when the node's `ok` arrived. */
  readonly ackedAt: number;
}

export interface LoadOptions {
  readonly chats: readonly TrafficChat[];
  /** Sends started per second (steady pacing, not bursts). */
  readonly ratePerSec: number;
  /** The loop stops starting sends after this long... */
  readonly durationMs: number;
  /** ...or after this many sends, whichever comes first. */
  readonly maxMessages: number;
  /** Sends waiting for their `ok` at most; the loop waits when there are more (default 500). */
  readonly maxInFlight?: number;
  readonly random: () => number;
  /** Prefix of bodies and clientMsgIds, unique per load in a test. */
  readonly tag: string;
}

export interface LoadResult {
  /** Sends the node acknowledged: each must reach every member of its chat. */
  readonly acked: SentMessage[];
  /** Sends that were given up (the SDK rejected them); they carry no promise. */
  readonly failed: Array<{ readonly clientMsgId: string; readonly error: string }>;
  readonly started: number;
}

export interface RunningLoad {
  /** Live view of the sends acknowledged so far. */
  readonly acked: readonly SentMessage[];
  /** Stops starting new sends (in-flight ones still settle). */
  stop(): void;
  /** Resolves once the loop ended and every send it started settled. */
  readonly done: Promise<LoadResult>;
}

/** Sends messages from random members of random chats at a steady rate, bounded in count and time. */
export function runLoad(options: LoadOptions): RunningLoad {
  const maxInFlight = options.maxInFlight ?? 500;
  const acked: SentMessage[] = [];
  const failed: Array<{ clientMsgId: string; error: string }> = [];
  const inFlight = new Set<Promise<void>>();
  const startedAt = Date.now();
  let started = 0;
  let stopped = false;

  const sendOne = (): void => {
    const chat = options.chats[Math.floor(options.random() * options.chats.length)]!;
    const sender = chat.members[Math.floor(options.random() * chat.members.length)]!;
    const clientMsgId = `${options.tag}-${started}`;
    started += 1;
    const sentAt = Date.now();
    const p = sender.client.send(chat.chatId, clientMsgId, { clientMsgId }).then(
      ({ messageId }) => {
        acked.push({ messageId, chat, sender, sentAt, ackedAt: Date.now() });
      },
      (err: unknown) => {
        failed.push({ clientMsgId, error: err instanceof Error ? err.message : String(err) });
      },
    );
    inFlight.add(p);
    void p.finally(() => inFlight.delete(p));
  };

  const done = (async (): Promise<LoadResult> => {
    for (;;) {
      const elapsed = Date.now() - startedAt;
      if (stopped || elapsed >= options.durationMs || started >= options.maxMessages) break;
      const due = Math.min(
        options.maxMessages,
        Math.floor((elapsed * options.ratePerSec) / 1000) + 1,
      );
      while (started < due && inFlight.size < maxInFlight) sendOne();
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    await Promise.all([...inFlight]);
    return { acked, failed, started };
  })();
  return {
    acked,
    stop: () => {
      stopped = true;
    },
    done,
  };
}

/**
 * What users did not observe as they should, as readable lines (empty when all is well): an
 * acked message missing at a member or seen twice, or a user whose events are not exactly
 * seqs 1..n. Users must have started with `lastSeq` 0 and a fresh id. Each user is one device,
 * so the sender is not expected to get its own message as an event (it has the `ok`; only a
 * sender's other devices get a copy).
 */
export function deliveryProblems(
  acked: readonly SentMessage[],
  users: readonly SdkUser[],
  limit = 20,
): string[] {
  const problems: string[] = [];
  const seen = new Map<SdkUser, Map<string, number>>();
  for (const u of users) {
    const counts = new Map<string, number>();
    for (const e of u.events) {
      if (e.kind !== 'message') continue;
      const key = `${e.chatId}:${e.messageId}`;
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    seen.set(u, counts);
    const holes = u.events.findIndex((e, i) => e.seq !== i + 1);
    if (holes >= 0)
      problems.push(
        `${u.id}: event #${holes + 1} has seq ${u.events[holes]!.seq}, expected ${holes + 1}`,
      );
  }
  let missing = 0;
  for (const s of acked) {
    for (const m of s.chat.members) {
      if (m === s.sender) continue;
      const n = seen.get(m)?.get(`${s.chat.chatId}:${s.messageId}`) ?? 0;
      if (n !== 1) {
        missing += 1;
        if (problems.length < limit)
          problems.push(`${m.id}: message ${s.messageId} from ${s.sender.id} seen ${n} times`);
      }
    }
  }
  if (missing > 0) problems.push(`${missing} member deliveries wrong in all`);
  return problems;
}

/** The latest inbox seq of each user as Postgres has it (0 for a user without events). */
export async function latestSeqs(
  sql: Pool,
  users: readonly string[],
): Promise<Record<string, number>> {
  // The latest seq is derived: the seq floor, the newest event, the furthest device cursor.
  const { rows } = await sql.query<{ id: string; latest: string }>(
    `select u.id, greatest(
       u.next_seq - 1,
       coalesce((select max(x.seq) from inbox x where x.user_id = u.id), 0),
       coalesce((select max(d.acked_seq) from devices d where d.user_id = u.id), 0)) as latest
     from users u where u.id = any($1)`,
    [users],
  );
  const out: Record<string, number> = {};
  for (const u of users) out[u] = 0;
  for (const r of rows) out[r.id] = Number(r.latest);
  return out;
}

/** Users whose SDK has not handed over every event up to the latest seq in Postgres. */
export async function seqLag(sql: Pool, users: readonly SdkUser[]): Promise<string[]> {
  const latest = await latestSeqs(
    sql,
    users.map((u) => u.id),
  );
  return users
    .filter((u) => u.client.lastSeq !== latest[u.id])
    .map((u) => `${u.id}: sdk at ${u.client.lastSeq}, server at ${latest[u.id]}`);
}

export interface HoldProxy {
  /** `http://127.0.0.1:<port>`, usable as an etcd endpoint. */
  readonly endpoint: string;
  /**
   * Stops forwarding client-to-server bytes (they are buffered, connections stay open) while
   * server-to-client bytes still flow: the client hears the server but cannot ask anything.
   */
  holdRequests(): void;
  /** Forwards what was held and carries on normally. */
  release(): void;
  close(): Promise<void>;
}

/**
 * A loopback TCP proxy in front of etcd whose client-to-server direction can be held, to widen
 * a window that is otherwise a few milliseconds wide (a node that hears it left the ring but
 * has not registered again yet) so that a test can look into it.
 */
export async function startHoldProxy(target: string): Promise<HoldProxy> {
  const url = new URL(target);
  const sockets = new Set<Socket>();
  const upstreams = new Set<{ upstream: Socket; held: Buffer[] }>();
  let holding = false;

  const server = createServer((downstream) => {
    const upstream = connect(Number(url.port), url.hostname);
    const pair = { upstream, held: [] as Buffer[] };
    upstreams.add(pair);
    for (const s of [downstream, upstream]) {
      sockets.add(s);
      s.once('close', () => sockets.delete(s));
      s.on('error', () => undefined);
    }
    upstream.once('close', () => {
      upstreams.delete(pair);
      downstream.destroy();
    });
    downstream.once('close', () => upstream.destroy());
    downstream.on('data', (chunk: Buffer) => {
      if (holding) pair.held.push(chunk);
      else upstream.write(chunk);
    });
    upstream.pipe(downstream);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('proxy: no port');

  return {
    endpoint: `http://127.0.0.1:${address.port}`,
    holdRequests: () => {
      holding = true;
    },
    release: () => {
      holding = false;
      for (const pair of upstreams) {
        for (const chunk of pair.held.splice(0)) pair.upstream.write(chunk);
      }
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/**
 * For a failure message: each user whose SDK events skip a seq, with what Postgres holds around
 * the first skipped seq, the device cursors, and the SDK's last warnings and states. Tells a
 * hole in the inbox (the seq never stored) from one in the client (stored, not handed over).
 */
export async function explainSeqHoles(sql: Pool, users: readonly SdkUser[]): Promise<string[]> {
  const out: string[] = [];
  for (const u of users) {
    const at = u.events.findIndex((e, i) => e.seq !== i + 1);
    if (at < 0) continue;
    const missing = at + 1;
    const { rows } = await sql.query<{ seq: string; kind: string; message_id: string | null }>(
      `select seq::text, kind, message_id::text from inbox
       where user_id = $1 and seq between $2 and $3 order by seq`,
      [u.id, missing - 2, missing + 2],
    );
    const { rows: devices } = await sql.query<{ device_id: string; acked_seq: string }>(
      'select device_id, acked_seq::text from devices where user_id = $1',
      [u.id],
    );
    out.push(
      `${u.id}: seq ${missing} not handed over; inbox around it: ` +
        `${JSON.stringify(rows)}; devices: ${JSON.stringify(devices)}; ` +
        `states: ${JSON.stringify(u.states.slice(-6))}; warnings: ${JSON.stringify(u.warnings.slice(-6))}`,
    );
  }
  return out;
}
