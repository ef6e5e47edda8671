/**
 * The Postgres limits beside the durable benchmark, straight through `pg`, no node involved:
 *
 * - `bareSendLimit`: writes exactly the rows of a send (one messages row, one inbox row per
 *   member, the users.next_seq bumps) with the statements and the batching of PgChatStore's
 *   group commit (batches of up to 256 sends, 2 transactions in flight), as fast as it can.
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
  readonly senderId: string;
  readonly clientMsgId: string;
  readonly body: string;
  readonly now: number;
}

/**
 * One group-commit transaction writing the same rows as PgChatStore's send batch, as separate
 * statements from a bare client. (The store now runs them server-side in one call,
 * `chat_send_batch`; this stays the fixed yardstick the ratio is measured against.)
 */
async function sendBatch(client: Client, sends: readonly Send[]): Promise<void> {
  await client.query('begin');
  try {
    const chatIds = [...new Set(sends.map((s) => s.chatId))];
    const { rows: chatRows } = await client.query<{ id: string; members: string[] }>(
      `select c.id, array(select m.user_id from chat_members m where m.chat_id = c.id) as members
       from chats c where c.id = any($1::text[])
       order by c.id
       for key share`,
      [chatIds],
    );
    const membersOf = new Map(chatRows.map((r) => [r.id, r.members]));
    const recipients = [...new Set(sends.flatMap((s) => membersOf.get(s.chatId) ?? []))];
    await client.query(
      `insert into users (id)
       select id from unnest($1::text[]) as t(id) order by id
       on conflict (id) do nothing`,
      [recipients],
    );
    const { rows: seqRows } = await client.query<{ id: string; next_seq: string }>(
      `select id, next_seq from users where id = any($1::text[]) order by id for update`,
      [recipients],
    );
    const nextSeq = new Map(seqRows.map((r) => [r.id, Number(r.next_seq)]));
    const { rows: inserted } = await client.query<{ id: string; client_msg_id: string }>(
      `insert into messages (chat_id, sender_id, client_msg_id, body, attachments, created_at)
       select chat_id, sender_id, client_msg_id, body, attachments::jsonb, created_at
       from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int8[])
         as t(chat_id, sender_id, client_msg_id, body, attachments, created_at)
       on conflict (sender_id, client_msg_id) do nothing
       returning id, sender_id, client_msg_id`,
      [
        sends.map((s) => s.chatId),
        sends.map((s) => s.senderId),
        sends.map((s) => s.clientMsgId),
        sends.map((s) => s.body),
        sends.map(() => '[]'),
        sends.map((s) => s.now),
      ],
    );
    const idOf = new Map(inserted.map((r) => [r.client_msg_id, r.id]));
    const next = new Map(nextSeq);
    const cols = {
      user: [] as string[],
      seq: [] as number[],
      chat: [] as string[],
      message: [] as string[],
      ts: [] as number[],
    };
    for (const send of sends) {
      const messageId = idOf.get(send.clientMsgId);
      if (messageId === undefined) continue;
      for (const userId of membersOf.get(send.chatId) ?? []) {
        const seq = next.get(userId)!;
        next.set(userId, seq + 1);
        cols.user.push(userId);
        cols.seq.push(seq);
        cols.chat.push(send.chatId);
        cols.message.push(messageId);
        cols.ts.push(send.now);
      }
    }
    const bumped = [...next].filter(([id, seq]) => seq !== nextSeq.get(id));
    await client.query(
      `with bump as (
         update users u set next_seq = v.next_seq
         from unnest($1::text[], $2::int8[]) as v(id, next_seq)
         where u.id = v.id
       )
       insert into inbox (user_id, seq, kind, chat_id, message_id, payload, created_at)
       select user_id, seq, 'message', chat_id, message_id, null, created_at
       from unnest($3::text[], $4::int8[], $5::text[], $6::int8[], $7::int8[])
         as t(user_id, seq, chat_id, message_id, created_at)`,
      [
        bumped.map(([id]) => id),
        bumped.map(([, seq]) => seq),
        cols.user,
        cols.seq,
        cols.chat,
        cols.message,
        cols.ts,
      ],
    );
    await client.query('commit');
  } catch (err) {
    await client.query('rollback').catch(() => undefined);
    throw err;
  }
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
  const users = options.users - (options.users % 2);
  const nextBatch = (): Send[] => {
    const now = Date.now();
    const batch: Send[] = [];
    for (let i = 0; i < options.batchSize; i++, k++) {
      const sender = k % users;
      batch.push({
        chatId: chatOf[sender]!,
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
          await sendBatch(client, batch);
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
