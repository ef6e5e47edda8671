/**
 * Retention in a cluster (issue 8): a message's text leaves the database once every member's
 * device has it, the rest of its row once every member has read it, its attachment object once
 * every member's device fetched it;
 * the cleanup runs on exactly one node (etcd election `retention-cleanup`), and another takes
 * over within the election's TTL when that one is killed.
 */
import { MinioObjectStore } from '@chat/media';
import type { AttachmentRef } from '@chat/protocol';
import { jsonCodec } from '@chat/protocol';
import { RawClient, TestCluster, countRows, waitFor } from '@chat/testkit';

const TTL_SEC = 2;
let cluster: TestCluster;
const clients: RawClient[] = [];
const killed = new Set<string>();

beforeAll(async () => {
  cluster = await TestCluster.start({
    nodes: 3,
    s3: true,
    leaseTtlSec: TTL_SEC,
    nodeEnv: {
      CHAT_RETENTION_MS: '60000',
      CHAT_RETENTION_DELIVERED_GRACE_MS: '0',
      CHAT_CLEANUP_INTERVAL_MS: '100',
      CHAT_ACK_FLUSH_MS: '10',
    },
  });
});
afterAll(async () => {
  await Promise.allSettled(clients.map((c) => c.close()));
  await cluster?.close();
});

async function connect(user: string): Promise<RawClient> {
  const { url } = await cluster.route(user);
  const client = await RawClient.ready({ url, codec: jsonCodec, user, autoAck: true });
  clients.push(client);
  return client;
}

/** Node ids whose /metrics say the retention cleanup runs there. */
async function cleanupRunners(): Promise<string[]> {
  const runners: string[] = [];
  for (const node of cluster.nodes.values()) {
    if (killed.has(node.nodeId)) continue;
    const text = await fetch(`${node.internalUrl}/metrics`)
      .then((r) => r.text())
      .catch(() => '');
    if (/^chat_retention_active\{[^}]*\} 1$/m.test(text)) runners.push(node.nodeId);
  }
  return runners;
}

it('deletes inbox events after delivery to all, the text once fanned out, the message after all read it, its attachment object after all fetched it', async () => {
  const s3 = cluster.s3!;
  const objects = new MinioObjectStore({
    endpoint: s3.endpoint,
    accessKey: s3.accessKey,
    secretKey: s3.secretKey,
    bucket: 'chat-media',
  });
  const alice = await connect('ret-alice');
  const bob = await connect('ret-bob');
  const carol = await connect('ret-carol');
  const bytes = Buffer.from('retention test image bytes');
  const target = (await alice.ok({ t: 'uploadTarget', mime: 'image/png', size: bytes.length })) as {
    key: string;
    url: string;
    fields: Record<string, string>;
  };
  const form = new FormData();
  for (const [name, value] of Object.entries(target.fields)) form.append(name, value);
  form.append('file', new Blob([new Uint8Array(bytes)], { type: 'image/png' }), 'f');
  expect((await fetch(target.url, { method: 'POST', body: form })).status).toBeLessThan(300);
  const ref: AttachmentRef = { key: target.key, mime: 'image/png', size: bytes.length };
  expect(await objects.stat(ref.key)).not.toBeNull();

  const { chatId } = (await alice.ok({
    t: 'createChat',
    members: ['ret-bob', 'ret-carol'],
  })) as { chatId: string };
  const { messageId } = (await alice.ok({
    t: 'send',
    chatId,
    clientMsgId: 'photo',
    attachments: [ref],
  })) as { messageId: string };
  for (const client of [bob, carol]) {
    await client.next((f) => f.t === 'evt' && 'messageId' in f && f.messageId === messageId);
  }

  const q = (query: string): Promise<number> => countRows(cluster.sql, query, [chatId, messageId]);
  // Fanned out and delivered everywhere: the inbox copies and the row's text go; the row keeps
  // its attachment (a device that comes online later may still fetch it) for the readers.
  await waitFor(async () => {
    expect(
      await q(
        "select count(*) as n from messages where chat_id = $1 and id = $2 and attachments <> '[]' and content_removed_at is not null",
      ),
    ).toBe(1);
    expect(await q('select count(*) as n from inbox where chat_id = $1 and message_id = $2')).toBe(
      0,
    );
  });
  expect(await objects.stat(ref.key)).not.toBeNull();

  // Once both have read it, the rest of the row goes; the object stays until their devices
  // have fetched it (issue 16, item 10), then goes.
  for (const client of [bob, carol]) await client.ok({ t: 'read', chatId, messageId });
  await waitFor(async () =>
    expect(await q('select count(*) as n from messages where chat_id = $1 and id = $2')).toBe(0),
  );
  for (const client of [bob, carol]) await client.ok({ t: 'downloadUrl', key: ref.key });
  await waitFor(async () => {
    expect(await objects.stat(ref.key)).toBeNull();
    expect(
      await countRows(cluster.sql, 'select count(*) as n from message_attachments where key = $1', [
        ref.key,
      ]),
    ).toBe(0);
  });
});

it('runs the cleanup on one node; another takes over within the TTL when it is killed', async () => {
  const [runner] = await waitFor(async () => {
    const runners = await cleanupRunners();
    expect(runners).toHaveLength(1);
    return runners;
  });
  killed.add(runner!);
  cluster.node(runner!).signal('SIGKILL');
  const killedAt = Date.now();
  const [next] = await waitFor(
    async () => {
      const runners = await cleanupRunners();
      expect(runners.filter((r) => r !== runner)).toHaveLength(1);
      return runners.filter((r) => r !== runner);
    },
    4 * TTL_SEC * 1000,
  );
  const takeoverMs = Date.now() - killedAt;
  process.stdout.write(
    `RETENTION_TAKEOVER_MS=${takeoverMs} (ttl ${TTL_SEC * 1000} ms, ${runner} -> ${next})\n`,
  );
  // The election's TTL, plus the watch and one poll of slack.
  expect(takeoverMs).toBeLessThan(TTL_SEC * 1000 + 1500);

  // And the new runner cleans: an expired inbox event disappears.
  await cluster.sql.query(
    `insert into users (id) values ('ret-dave') on conflict do nothing;
     insert into inbox (user_id, seq, kind, chat_id, created_at) values ('ret-dave', 1, 'chat', 'x', 1)`,
  );
  await waitFor(async () =>
    expect(
      await countRows(cluster.sql, "select count(*) as n from inbox where user_id = 'ret-dave'"),
    ).toBe(0),
  );
});
