/**
 * The Postgres limits beside the durable benchmark, straight through `pg`, no node involved:
 *
 * - `bareSendLimit`: writes the rows a 1:1 send leaves (one messages row, the recipient's inbox
 *   row with the message's content) with PgChatStore's batching (batches of up to 256 sends,
 *   2 transactions in flight), as plain INSERTs with ids and seqs counted by the script: no
 *   rule checks, no locks, no idempotency. The yardstick for the durable rate.
 * - `fsyncRate`: single-row INSERT commits on one connection, i.e. the server's commit rate.
 */
import { performance } from 'node:perf_hooks';
import { Client } from 'pg';
import { createDatabase, migrate } from '@chat/store';
import { treeCpuSeconds } from './procstat';
import type { BareLimitResult, FsyncResult } from './summary';

export interface BareLimitOptions {
  readonly url: string;
  readonly users: number;
  readonly seconds: number;
  /** PgChatStore's maxBatchSize (256). */
  readonly batchSize: number;
  /** PgChatStore's maxConcurrentBatches (2). */
  readonly concurrency: number;
  readonly postmasterPid: number;
}

async function connect(url: string): Promise<Client> {
  const client = new Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
  client.on('error', () => undefined);
  await client.connect();
  await client.query('set statement_timeout = 30000');
  return client;
}

/** Creates the schema and the users and 1:1 chats of the benchmark. Returns chat id by user. */
async function setupChats(url: string, users: number): Promise<string[]> {
  const db = createDatabase(url);
  try {
    await migrate(db);
  } finally {
    await db.destroy();
  }
  const client = await connect(url);
  try {
    const ids = Array.from({ length: users }, (_, i) => `u${String(i).padStart(4, '0')}`);
    const chatOf = ids.map((_, i) => `chat-${Math.floor(i / 2)}`);
    const chats = [...new Set(chatOf)];
    const now = Date.now();
    await client.query('insert into users (id) select unnest($1::text[])', [ids]);
    await client.query(
      `insert into chats (id, name, created_by, created_at)
       select id, null, 'u0000', $2 from unnest($1::text[]) as t(id)`,
      [chats, now],
    );
    await client.query(
      `insert into chat_members (chat_id, user_id, joined_at)
       select c, u, $3 from unnest($1::text[], $2::text[]) as t(c, u)`,
      [chatOf, ids, now],
    );
    return chatOf;
  } finally {
    await client.end();
  }
}

interface Send {
  readonly chatId: string;
  readonly messageId: number;
  readonly senderId: string;
  readonly clientMsgId: string;
  readonly body: string;
  readonly now: number;
}

/** One transaction: the batch's message rows, then their recipients' inbox rows. */
async function sendBatch(
  client: Client,
  sends: readonly Send[],
  nextSeq: Map<string, number>,
): Promise<void> {
  const recipients = sends.map((s) => partnerOf(s.senderId));
  const seqs = recipients.map((user) => {
    const seq = nextSeq.get(user) ?? 1;
    nextSeq.set(user, seq + 1);
    return seq;
  });
  await client.query('begin');
  try {
    await client.query(
      `insert into messages (chat_id, id, sender_id, client_msg_id, body, attachments, created_at)
       select chat_id, id, sender_id, client_msg_id, body, '[]'::jsonb, created_at
       from unnest($1::text[], $2::int8[], $3::text[], $4::text[], $5::text[], $6::int8[])
         as t(chat_id, id, sender_id, client_msg_id, body, created_at)`,
      [
        sends.map((s) => s.chatId),
        sends.map((s) => s.messageId),
        sends.map((s) => s.senderId),
        sends.map((s) => s.clientMsgId),
        sends.map((s) => s.body),
        sends.map((s) => s.now),
      ],
    );
    await client.query(
      `insert into inbox (user_id, seq, kind, chat_id, message_id, sender_id, body, created_at)
       select user_id, seq, 'message', chat_id, message_id, sender_id, body, created_at
       from unnest($1::text[], $2::int8[], $3::text[], $4::int8[], $5::text[], $6::text[], $7::int8[])
         as t(user_id, seq, chat_id, message_id, sender_id, body, created_at)`,
      [
        recipients,
        seqs,
        sends.map((s) => s.chatId),
        sends.map((s) => s.messageId),
        sends.map((s) => s.senderId),
        sends.map((s) => s.body),
        sends.map((s) => s.now),
      ],
    );
    await client.query('commit');
  } catch (err) {
    await client.query('rollback').catch(() => undefined);
    throw err;
  }
}

/** The other user of a benchmark pair (u0000 with u0001, ...). */
function partnerOf(user: string): string {
  const i = Number(user.slice(1));
  return `u${String(i % 2 === 0 ? i + 1 : i - 1).padStart(4, '0')}`;
}

/** Runs the bare send writer for `seconds` on a fresh database at `url`. */
export async function bareSendLimit(options: BareLimitOptions): Promise<BareLimitResult> {
  const chatOf = await setupChats(options.url, options.users);
  const clients = await Promise.all(
    Array.from({ length: options.concurrency }, () => connect(options.url)),
  );
  let k = 0;
  let messages = 0;
  let transactions = 0;
  const nextSeq = new Map<string, number>();
  const idBase = Date.now() * 1000;
  const users = options.users - (options.users % 2);
  const nextBatch = (): Send[] => {
    const now = Date.now();
    const batch: Send[] = [];
    for (let i = 0; i < options.batchSize; i++, k++) {
      const sender = k % users;
      batch.push({
        chatId: chatOf[sender]!,
        messageId: idBase + k,
        senderId: `u${String(sender).padStart(4, '0')}`,
        clientMsgId: `b-${k}`,
        body: `0:${k}`,
        now,
      });
    }
    return batch;
  };
  // CPU is read while the backends are alive: an exiting backend's time reaches the
  // postmaster's cutime only once it has been reaped.
  const cpuBefore = treeCpuSeconds(options.postmasterPid);
  const started = performance.now();
  const deadline = started + options.seconds * 1000;
  try {
    await Promise.all(
      clients.map(async (client) => {
        while (performance.now() < deadline) {
          const batch = nextBatch();
          await sendBatch(client, batch, nextSeq);
          messages += batch.length;
          transactions++;
        }
      }),
    );
    const seconds = (performance.now() - started) / 1000;
    return {
      messagesPerSec: messages / seconds,
      transactions,
      avgBatch: transactions > 0 ? messages / transactions : 0,
      seconds,
      postgresCores: (treeCpuSeconds(options.postmasterPid) - cpuBefore) / seconds,
    };
  } finally {
    await Promise.all(clients.map((c) => c.end()));
  }
}

/** Single-row INSERT commits on one connection for `seconds`. */
export async function fsyncRate(url: string, seconds: number): Promise<FsyncResult> {
  const client = await connect(url);
  try {
    await client.query('create table if not exists fsync_probe (id bigserial primary key, v int)');
    let commits = 0;
    const started = performance.now();
    const deadline = started + seconds * 1000;
    while (performance.now() < deadline) {
      await client.query('insert into fsync_probe (v) values ($1)', [commits]);
      commits++;
    }
    const elapsed = (performance.now() - started) / 1000;
    return { commitsPerSec: commits / elapsed, commits, seconds: elapsed };
  } finally {
    await client.end();
  }
}
