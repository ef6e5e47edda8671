/**
 * A shard move under traffic (issue 15, must-show 2): while two stores (like two chat nodes)
 * send to chats whose keys cover the shards of both co-location groups, a third worker is
 * added and the shards are rebalanced onto it. Every send is retried, with the same
 * clientMsgId, on UNAVAILABLE only; anything else fails the test, and so does any error the
 * stores log (the fan-out retries by itself) that is not of the UNAVAILABLE class. Afterwards:
 * every acked message is stored once, every recipient's inbox holds it once, and every user's
 * seqs are 1..n.
 *
 * The move is non-blocking: `rebalance_table_shards(shard_transfer_mode := 'force_logical')`
 * copies each shard group and catches up through logical replication while writes go on, and
 * blocks writes to that group only for the final catch-up and the metadata switch. That needs
 * `wal_level = logical`, which the run's shared cluster does not have, so this file starts its
 * own small cluster (a coordinator and two workers) and uses its `postgres` database.
 * (`block_writes`, where sends to a group wait while it is copied, passes too.)
 */
import { sql } from 'kysely';
import { Client } from 'pg';
import { isChatError } from '@chat/protocol';
import { startCitus, waitFor } from '@chat/testkit';
import type { CitusHandle, CitusServer } from '@chat/testkit';
import { isUnavailableError } from '../src/index';
import type { PgChatStore, SendResult, StoreLogger } from '../src/index';
import { expectContiguousSeqs, SINGLE_SHARD, storeFixture } from './helpers';
import type { StoreFixture } from './helpers';

const USERS = 64;
const CHATS = 64;
const SENDERS = 16;
/** Acks before the third worker is added. */
const SENDS_BEFORE_MOVE = 50;
/** Acks after the move, so that sends reach the moved shards at their new home. */
const SENDS_AFTER_MOVE = 64;
/** Bounds of the traffic whatever the move does: at most this many sends, this long. */
const MAX_SENDS = 20_000;
const MAX_TRAFFIC_MS = 100_000;
/** The transfer mode of the rebalance (see above). */
const TRANSFER_MODE = 'force_logical';

const CLUSTER_SETTINGS = {
  // 8 shards per co-location group instead of 32: the rebalance moves 2 of each group's 8
  // onto the new worker (each shard group moved costs seconds here, whatever its size).
  'citus.shard_count': '8',
  // Shard moves by logical replication.
  wal_level: 'logical',
  // A move creates a subscription; PostgreSQL 15's launcher starts its apply worker no sooner
  // than this after the previous one started (default 5 s: about 6 s per shard group moved).
  wal_retrieve_retry_interval: "'200ms'",
};

let citus: CitusHandle | undefined;
let fx: StoreFixture | undefined;
let stores: PgChatStore[];
/** Errors the stores logged (fan-out retries, split batches...) that were not UNAVAILABLE. */
const unexpectedLogged: unknown[] = [];
let loggedUnavailable = 0;

const logger: StoreLogger = {
  warn: (obj) => note(obj),
  error: (obj) => note(obj),
};

function note(obj: object): void {
  const err = (obj as { err?: unknown }).err;
  if (isUnavailableError(err) || (isChatError(err) && err.code === 'UNAVAILABLE')) {
    loggedUnavailable++;
  } else {
    // With the SQLSTATE, which decides the class, in the failure's diff.
    const code = (err as { code?: unknown } | undefined)?.code;
    unexpectedLogged.push(err instanceof Error ? `${String(code)}: ${err.message}` : (err ?? obj));
  }
}

beforeAll(async () => {
  citus = await startCitus({ workers: 2, settings: CLUSTER_SETTINGS });
  const url = citus.url;
  // The cluster is this file's own: its `postgres` database, dropped with the cluster.
  fx = await storeFixture('move', undefined, () =>
    Promise.resolve({ url, name: 'postgres', drop: () => Promise.resolve() }),
  );
  stores = [
    await fx.store({ logger }, { sessionSettings: SINGLE_SHARD, logger }),
    await fx.store({ logger }, { sessionSettings: SINGLE_SHARD, logger }),
  ];
});
afterAll(async () => {
  await fx?.close();
  await citus?.close();
});

interface Acked {
  readonly chatId: string;
  readonly senderId: string;
  readonly clientMsgId: string;
  readonly messageId: string;
  readonly recipients: readonly string[];
}

test('shards move onto a third worker while users send: nothing acked lost, seqs contiguous', async () => {
  const db = fx!.db;
  const user = (i: number): string => `mv-u${i % USERS}`;
  const users = Array.from({ length: USERS }, (_, i) => user(i));
  // Three members each, every user in three chats: a user's seqs interleave events of
  // several chats, and a send fans out to two users, mostly on other shards than the chat's.
  const chats = await Promise.all(
    Array.from({ length: CHATS }, async (_, i) => {
      const members = [user(i), user(i + 1), user(i + 5)];
      const created = await stores[i % 2]!.createChat(members[0]!, members.slice(1), null, 1);
      return { chatId: created.chatId, members };
    }),
  );

  const acked: Acked[] = [];
  let retries = 0;
  let sent = 0;
  let stop = false;
  let ackedAtMoveStart = -1;
  let ackedAtMoveEnd = -1;
  const started = Date.now();

  /** One send until acked: retried with the same clientMsgId on UNAVAILABLE, and only then. */
  const sendUntilAcked = async (
    store: PgChatStore,
    chatId: string,
    senderId: string,
    clientMsgId: string,
  ): Promise<SendResult> => {
    for (let attempt = 1; ; attempt++) {
      try {
        return await store.send({
          senderId,
          chatId,
          clientMsgId,
          body: `${clientMsgId} from ${senderId}`,
          attachments: [],
          now: Date.now(),
        });
      } catch (err) {
        if (!isChatError(err) || err.code !== 'UNAVAILABLE' || attempt >= 100) throw err;
        retries++;
        // A client's back-off before it tries again (not a wait for something to happen).
        await new Promise((resolve) => setTimeout(resolve, Math.min(500, 10 * attempt)));
      }
    }
  };

  const sender = async (s: number): Promise<void> => {
    for (let k = 0; !stop; k++) {
      if (sent >= MAX_SENDS || Date.now() - started > MAX_TRAFFIC_MS) return;
      if (ackedAtMoveEnd >= 0 && acked.length >= ackedAtMoveEnd + SENDS_AFTER_MOVE) return;
      sent++;
      // Each sender goes round every chat, as every member in turn, through both stores.
      const chat = chats[(s * 5 + k * 3) % CHATS]!;
      const senderId = chat.members[k % chat.members.length]!;
      const clientMsgId = `s${s}-${k}`;
      const result = await sendUntilAcked(stores[k % 2]!, chat.chatId, senderId, clientMsgId);
      acked.push({
        chatId: chat.chatId,
        senderId,
        clientMsgId,
        messageId: result.messageId,
        recipients: chat.members.filter((m) => m !== senderId),
      });
    }
  };
  const traffic = Promise.all(Array.from({ length: SENDERS }, (_, s) => sender(s)));
  // A sender that fails stops the others; its error is thrown where `traffic` is awaited.
  traffic.catch(() => (stop = true));

  let newWorker: CitusServer;
  let addMs: number;
  let rebalanceMs: number;
  try {
    await waitFor(() => expect(acked.length).toBeGreaterThanOrEqual(SENDS_BEFORE_MOVE), 30_000);
    ackedAtMoveStart = acked.length;
    const addStarted = performance.now();
    newWorker = await citus!.addWorker();
    addMs = performance.now() - addStarted;
    // Its own connection: the rebalance takes longer than the pool's statement timeout.
    const admin = new Client({ connectionString: citus!.url });
    await admin.connect();
    const rebalanceStarted = performance.now();
    try {
      await admin.query(
        'select rebalance_table_shards(shard_transfer_mode := $1::citus.shard_transfer_mode)',
        [TRANSFER_MODE],
      );
    } finally {
      await admin.end();
    }
    rebalanceMs = performance.now() - rebalanceStarted;
    ackedAtMoveEnd = acked.length;
  } catch (err) {
    stop = true;
    throw err;
  }
  await traffic;
  // Every fan-out lands; a fan-out that fails is retried by the store and logged (see `note`).
  let idle = false;
  void Promise.all(stores.map((s) => s.fanoutIdle())).then(() => (idle = true));
  await waitFor(
    () => expect({ idle, unexpectedLogged }).toEqual({ idle: true, unexpectedLogged: [] }),
    30_000,
  );

  // Shards of both co-location groups moved onto the new worker...
  const { rows: moved } = await sql<{ table_name: string; shards: string }>`
    select table_name::text, count(*) as shards from citus_shards
    where nodeport = ${newWorker.port} and citus_table_type = 'distributed'
    group by table_name`.execute(db);
  const movedShards = new Map(moved.map((r) => [r.table_name, Number(r.shards)]));
  expect(movedShards.get('chats') ?? 0).toBeGreaterThan(0);
  expect(movedShards.get('users') ?? 0).toBeGreaterThan(0);
  // ...and sends during the move and after it went to chats and users of the moved shards.
  const onNewWorker = async (table: 'chats' | 'users', keys: string[]): Promise<Set<string>> => {
    const { rows } = await sql<{ k: string }>`
      select k from unnest(${keys}::text[]) k
      where get_shard_id_for_distribution_column(${table}, k) in (
        select shardid from citus_shards where nodeport = ${newWorker.port})`.execute(db);
    return new Set(rows.map((r) => r.k));
  };
  const movedChats = await onNewWorker(
    'chats',
    chats.map((c) => c.chatId),
  );
  const movedUsers = await onNewWorker('users', users);
  for (const phase of [
    acked.slice(ackedAtMoveStart, ackedAtMoveEnd),
    acked.slice(ackedAtMoveEnd),
  ]) {
    expect(phase.some((a) => movedChats.has(a.chatId))).toBe(true);
    expect(phase.some((a) => a.recipients.some((r) => movedUsers.has(r)))).toBe(true);
  }

  // Every acked message is stored exactly once, under the id its ack gave; nothing else is
  // (every send was retried until acked).
  const { rows: stored } = await sql<{
    chat_id: string;
    sender_id: string;
    client_msg_id: string;
    ids: string[];
  }>`
    select chat_id, sender_id, client_msg_id, array_agg(id::text) as ids
    from messages where kind = 'message'
    group by chat_id, sender_id, client_msg_id`.execute(db);
  const storedIds = new Map(
    stored.map((r) => [`${r.chat_id}/${r.sender_id}/${r.client_msg_id}`, r.ids]),
  );
  expect(stored.length).toBe(acked.length);
  const notStoredOnce = acked.filter((a) => {
    const ids = storedIds.get(`${a.chatId}/${a.senderId}/${a.clientMsgId}`);
    return ids?.length !== 1 || ids[0] !== a.messageId;
  });
  expect(notStoredOnce).toEqual([]);

  // Every recipient's inbox holds each once (a sender with no other device gets no copy).
  // Message ids are ordered within their chat, not unique across chats.
  const { rows: copies } = await sql<{
    user_id: string;
    chat_id: string;
    message_id: string;
    copies: string;
  }>`
    select user_id, chat_id, message_id::text as message_id, count(*) as copies
    from inbox where kind = 'message' group by user_id, chat_id, message_id`.execute(db);
  const inInbox = new Map(
    copies.map((r) => [`${r.user_id}/${r.chat_id}/${r.message_id}`, Number(r.copies)]),
  );
  const expected = acked.flatMap((a) => a.recipients.map((r) => `${r}/${a.chatId}/${a.messageId}`));
  expect(copies.length).toBe(expected.length);
  expect(expected.filter((key) => inInbox.get(key) !== 1)).toEqual([]);

  // Per user: seqs 1..n, no gap, no duplicate.
  await expectContiguousSeqs(db, true);

  console.log(
    [
      `shard move under traffic (${TRANSFER_MODE}):`,
      `${acked.length} messages acked (${ackedAtMoveEnd - ackedAtMoveStart} while the worker`,
      `was added and the shards moved), ${expected.length} inbox copies;`,
      `${retries} sends retried after UNAVAILABLE, ${loggedUnavailable} UNAVAILABLE errors`,
      `logged by the stores (fan-out retries);`,
      `shards moved onto the new worker: ${[...movedShards].map(([t, n]) => `${t} ${n}`).join(', ')};`,
      `worker added in ${(addMs / 1000).toFixed(1)} s, rebalance ${(rebalanceMs / 1000).toFixed(1)} s`,
    ].join(' '),
  );
}, 180_000);
