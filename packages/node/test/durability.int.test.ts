/**
 * Commit before ack: a node killed right after acking loses nothing, and while Postgres is down
 * nothing is acked; the SDK's retry with the same clientMsgId lands exactly once afterwards.
 */
import { ChatClient } from '@chat/client';
import type { EventFrame } from '@chat/protocol';
import { jsonCodec } from '@chat/protocol';
import { LOCK_SPACE } from '@chat/store';
import type { PostgresHandle, SingleNode } from '@chat/testkit';
import {
  RawClient,
  countRows,
  holdKeyLocks,
  startPostgres,
  startSingleNode,
  testToken,
  waitFor,
} from '@chat/testkit';

/**
 * An SDK that asks a one-node "registry" for its node: a restarted node listens on a new port
 * (the old one may sit in TIME_WAIT), and the SDK finds it there as it would in a cluster.
 */
function sdk(
  h: SingleNode,
  user: string,
  options: { device?: string; lastSeq?: number } = {},
): { client: ChatClient; events: EventFrame[] } {
  const client = new ChatClient({
    registryUrl: 'http://registry.invalid',
    user,
    fetch: async () => ({
      ok: true,
      status: 200,
      json: async () => ({ user, node: 'node-1', url: h.node.url, epoch: 1 }),
    }),
    token: () => testToken(user, options.device ?? 'd1'),
    lastSeq: options.lastSeq,
    backoffBaseMs: 50,
    backoffMaxMs: 500,
  });
  const events: EventFrame[] = [];
  client.on('event', (e) => events.push(e));
  return { client, events };
}

describe('SIGKILL right after the ack', () => {
  let h: SingleNode;
  beforeAll(async () => {
    h = await startSingleNode();
  });
  afterAll(async () => {
    await h.close();
  });

  it('delivers every acked message after the node restarts', async () => {
    const acked: string[] = [];
    let chatId: string | undefined;
    for (let round = 0; round < 3; round++) {
      const sender = await RawClient.ready({ url: h.node.url, codec: jsonCodec, user: 'kim' });
      chatId ??= (await sender.ok({ t: 'createChat', members: ['lee'] })).chatId as string;
      const reply = await sender.ok({
        t: 'send',
        chatId,
        clientMsgId: `k-${round}`,
        body: `round ${round}`,
      });
      h.node.signal('SIGKILL'); // no chance to flush anything after the ok
      acked.push(reply.messageId as string);
      expect((await sender.closed).code).toBe(1006);
      await h.restart();
    }
    const { client, events } = sdk(h, 'lee');
    await client.connect();
    await waitFor(() =>
      expect(events.flatMap((e) => (e.kind === 'message' ? [e.messageId] : []))).toEqual(acked),
    );
    await client.close();
  });
});

describe('Postgres down', () => {
  let pg: PostgresHandle;
  let h: SingleNode;
  beforeAll(async () => {
    pg = await startPostgres();
    h = await startSingleNode({ adminUrl: pg.url });
  });
  afterAll(async () => {
    await h.close();
    await pg.close();
  });

  it('refuses sends with UNAVAILABLE, then the SDK retry lands exactly once', async () => {
    const alice = sdk(h, 'ana');
    const bob = sdk(h, 'ben');
    await alice.client.connect();
    await bob.client.connect();
    const { chatId } = await alice.client.createChat(['ben']);
    await alice.client.send(chatId, 'before');
    const raw = await RawClient.ready({
      url: h.node.url,
      codec: jsonCodec,
      user: 'ana',
      device: 'raw',
    });

    await pg.stop();
    const refused = await raw.request(
      { t: 'send', chatId, clientMsgId: 'while-down', body: 'no' },
      30_000,
    );
    expect(refused).toMatchObject({ t: 'err', code: 'UNAVAILABLE' });

    let settled = false;
    const pending = alice.client.send(chatId, 'during outage', { clientMsgId: 'retry-me' });
    void pending.finally(() => (settled = true));
    // A later request is refused too, so the SDK's earlier one met the outage and was not acked.
    const refusedAgain = await raw.request(
      { t: 'send', chatId, clientMsgId: 'while-down-2', body: 'no' },
      30_000,
    );
    expect(refusedAgain).toMatchObject({ t: 'err', code: 'UNAVAILABLE' });
    expect(settled).toBe(false);

    await pg.start();
    const result = await pending;
    expect(result.messageId).toEqual(expect.any(String));
    await waitFor(
      () =>
        expect(
          bob.events.filter((e) => e.kind === 'message' && e.body === 'during outage'),
        ).toHaveLength(1),
      20_000,
    );
    expect(
      await countRows(h.sql, "SELECT count(*) AS n FROM messages WHERE client_msg_id = 'retry-me'"),
    ).toBe(1);
    expect(
      await countRows(
        h.sql,
        "SELECT count(*) AS n FROM messages WHERE client_msg_id LIKE 'while-down%'",
      ),
    ).toBe(0);
    await Promise.all([alice.client.close(), bob.client.close(), raw.close()]);
  });
});

/**
 * The two steps of a send (docs/durable-path.md): a node killed after the chat step (the
 * sender has its `ok`) but before the user step owes the fan-out. Its next start, or another
 * node's sweeper, appends the events: every acked message reaches every recipient's inbox
 * exactly once.
 */
describe('a kill between the chat step and the user step', () => {
  let h: SingleNode;
  beforeAll(async () => {
    // The default cursor cadence: what is acked stays in memory for 5 s.
    h = await startSingleNode({ env: { CHAT_ACK_FLUSH_MS: '5000' } });
  });
  afterAll(async () => {
    await h.close();
  });

  /** Holds the users' locks (the user step waits for them) until released. */
  function lockUsers(users: readonly string[]): Promise<() => Promise<void>> {
    return holdKeyLocks(h.db.url, LOCK_SPACE.user, users);
  }

  /** Ends the killed node's backend still waiting for the lock: only a sweep may append now. */
  async function terminateWaiting(): Promise<number> {
    const { rows } = await h.sql.query<{ n: string }>(
      `select count(pg_terminate_backend(pid)) as n from pg_stat_activity
       where application_name = 'chat' and wait_event_type = 'Lock'`,
    );
    return Number(rows[0]?.n ?? 0);
  }

  it('is finished by the node’s next start, once per recipient', async () => {
    const sender = await RawClient.ready({ url: h.node.url, codec: jsonCodec, user: 'sw-kim' });
    const lee = await RawClient.ready({ url: h.node.url, codec: jsonCodec, user: 'sw-lee' });
    const { chatId } = (await sender.ok({ t: 'createChat', members: ['sw-lee'] })) as {
      chatId: string;
    };
    await lee.next((f) => f.t === 'evt' && f.kind === 'chat');
    const release = await lockUsers(['sw-lee']);
    const acked = await sender.ok({ t: 'send', chatId, clientMsgId: 'between', body: 'owed' });
    // Stored (the sender has its ok), not in lee's inbox: the user step waits for the lock.
    const inboxOf = (): Promise<number> =>
      countRows(
        h.sql,
        'SELECT count(*) AS n FROM inbox WHERE user_id = $1 AND chat_id = $2 AND message_id = $3',
        ['sw-lee', chatId, acked.messageId],
      );
    await waitFor(async () =>
      expect(
        await countRows(
          h.sql,
          `SELECT count(*) AS n FROM pg_stat_activity
           WHERE application_name = 'chat' AND wait_event_type = 'Lock'`,
        ),
      ).toBe(1),
    );
    expect(await inboxOf()).toBe(0);
    h.node.signal('SIGKILL');
    expect(await terminateWaiting()).toBe(1);
    await release();
    await lee.closed;
    await h.restart();
    await waitFor(async () => expect(await inboxOf()).toBe(1));
    const back = await RawClient.ready({ url: h.node.url, codec: jsonCodec, user: 'sw-lee' });
    await back.ok({ t: 'sync', after: 0 });
    expect(
      back.events().filter((e) => e.kind === 'message' && e.messageId === acked.messageId),
    ).toHaveLength(1);
    await back.close();
  });
});

describe('a kill with device cursors not written yet', () => {
  let h: SingleNode;
  beforeAll(async () => {
    h = await startSingleNode({ env: { CHAT_ACK_FLUSH_MS: '5000' } });
  });
  afterAll(async () => {
    await h.close();
  });

  it('re-delivers from where the device was, and the SDK shows each event once, in order, no gap', async () => {
    const ann = sdk(h, 'cur-ann');
    const bob = sdk(h, 'cur-bob');
    await ann.client.connect();
    await bob.client.connect();
    const { chatId } = await ann.client.createChat(['cur-bob']);
    for (let i = 0; i < 10; i++) await ann.client.send(chatId, `m${i}`);
    await waitFor(() => expect(bob.client.lastSeq).toBe(11));
    // bob's device acked all 11 (the SDK acks within 20 ms); the node holds the cursor in memory.
    const snapshotSeq = 4; // what a bob app that saved its state a while ago would resume from
    h.node.signal('SIGKILL');
    await h.restart();
    // The cursor was never written: the events are all still there for the device.
    expect(
      await countRows(h.sql, "SELECT count(*) AS n FROM inbox WHERE user_id = 'cur-bob'"),
    ).toBe(11);
    const devices = await h.sql.query<{ acked_seq: string }>(
      "SELECT acked_seq FROM devices WHERE user_id = 'cur-bob'",
    );
    expect(Number(devices.rows[0]!.acked_seq)).toBeLessThan(11);

    // The same SDK (it has 1..11) reconnects: nothing again. An app restarted from its saved
    // state at 4 gets 5..11 again: re-delivered, each once, then the new ones, without a gap.
    const { client: restored, events: restoredEvents } = sdk(h, 'cur-bob', {
      lastSeq: snapshotSeq,
    });
    await bob.client.close();
    await restored.connect();
    await ann.client.send(chatId, 'after the crash');
    await waitFor(() => expect(restored.lastSeq).toBe(12));
    expect(restoredEvents.map((e) => e.seq)).toEqual([5, 6, 7, 8, 9, 10, 11, 12]);
    expect(restoredEvents.map((e) => (e.kind === 'message' ? e.body : e.kind))).toEqual([
      'm3',
      'm4',
      'm5',
      'm6',
      'm7',
      'm8',
      'm9',
      'after the crash',
    ]);
    // bob's first SDK saw 1..11 once each before the crash.
    expect(bob.events.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    await Promise.all([ann.client.close(), restored.close()]);
  });
});

describe('retries across a crash', () => {
  let h: SingleNode;
  beforeAll(async () => {
    h = await startSingleNode();
  });
  afterAll(async () => {
    await h.close();
  });

  it('store once: a send whose node died before answering is retried by the SDK and stored once', async () => {
    const kim = sdk(h, 'rx-kim');
    const lee = sdk(h, 'rx-lee');
    await kim.client.connect();
    await lee.client.connect();
    const { chatId } = await kim.client.createChat(['rx-lee']);
    // The chat step waits for the chat's lock: the node dies before it can answer.
    const client = await h.sql.connect();
    await client.query('begin');
    await client.query('select pg_advisory_xact_lock($1, hashtext($2))', [LOCK_SPACE.chat, chatId]);
    const sent = kim.client.send(chatId, 'retried', { clientMsgId: 'rx-1' });
    await waitFor(async () =>
      expect(
        await countRows(
          h.sql,
          `SELECT count(*) AS n FROM pg_stat_activity
           WHERE application_name = 'chat' AND wait_event_type = 'Lock'`,
        ),
      ).toBe(1),
    );
    h.node.signal('SIGKILL');
    // The dead node's statement may still run once the lock goes: it stores, or not, once.
    await client.query('rollback');
    client.release();
    await h.restart();
    const result = await sent; // the SDK retried with the same clientMsgId on the new process
    expect(result.messageId).toEqual(expect.any(String));
    expect(
      await countRows(h.sql, "SELECT count(*) AS n FROM messages WHERE client_msg_id = 'rx-1'"),
    ).toBe(1);
    await waitFor(
      () =>
        expect(lee.events.filter((e) => e.kind === 'message' && e.body === 'retried')).toHaveLength(
          1,
        ),
      30_000,
    );
    await Promise.all([kim.client.close(), lee.client.close()]);
  });
});
