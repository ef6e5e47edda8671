/**
 * Commit before ack: a node killed right after acking loses nothing, and while Postgres is down
 * nothing is acked; the SDK's retry with the same clientMsgId lands exactly once afterwards.
 */
import { ChatClient } from '@chat/client';
import type { EventFrame } from '@chat/protocol';
import { jsonCodec } from '@chat/protocol';
import type { PostgresHandle, SingleNode } from '@chat/testkit';
import {
  RawClient,
  countRows,
  startPostgres,
  startSingleNode,
  testToken,
  waitFor,
} from '@chat/testkit';

function sdk(
  url: string,
  user: string,
  device = 'd1',
): { client: ChatClient; events: EventFrame[] } {
  const client = new ChatClient({
    url,
    user,
    token: () => testToken(user, device),
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
    const { client, events } = sdk(h.node.url, 'lee');
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
    const alice = sdk(h.node.url, 'ana');
    const bob = sdk(h.node.url, 'ben');
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
