/**
 * Attachment objects outlive the read (issue 16, item 10): a recipient offline past the
 * delivered grace comes back, acks and reads the message before it downloads, and still gets a
 * working download URL; the object goes once every recipient device has fetched one, and at
 * the retention period in any case. Real node, real s3rver, real cleanup passes.
 */
import { MinioObjectStore } from '@chat/media';
import type { AttachmentRef } from '@chat/protocol';
import { jsonCodec } from '@chat/protocol';
import type { S3Handle, SingleNode } from '@chat/testkit';
import { RawClient, countRows, startS3, startSingleNode, waitFor } from '@chat/testkit';

let s3: S3Handle;
let objects: MinioObjectStore;
const nodes: SingleNode[] = [];
const clients: RawClient[] = [];

beforeAll(async () => {
  s3 = await startS3();
  objects = new MinioObjectStore({
    endpoint: s3.endpoint,
    accessKey: s3.accessKey,
    secretKey: s3.secretKey,
    bucket: 'chat-media',
  });
});
afterAll(async () => {
  await Promise.allSettled(clients.map((c) => c.close()));
  for (const h of nodes) await h.close();
  await s3?.close();
});

/** A node that cleans up every 100 ms, emptying delivered messages at once. */
async function startNode(retentionMs: number): Promise<SingleNode> {
  const h = await startSingleNode({
    env: {
      ...s3.nodeEnv(),
      CHAT_RETENTION_MS: String(retentionMs),
      CHAT_RETENTION_DELIVERED_GRACE_MS: '0',
      CHAT_CLEANUP_INTERVAL_MS: '100',
      CHAT_ACK_FLUSH_MS: '10',
    },
  });
  nodes.push(h);
  return h;
}

async function connect(h: SingleNode, user: string, device = 'd1'): Promise<RawClient> {
  const client = await RawClient.ready({
    url: h.node.url,
    codec: jsonCodec,
    user,
    device,
    autoAck: true,
  });
  clients.push(client);
  return client;
}

/** Uploads a small image as `client` and returns its reference. */
async function upload(client: RawClient, text: string): Promise<AttachmentRef> {
  const bytes = Buffer.from(text);
  const target = (await client.ok({
    t: 'uploadTarget',
    mime: 'image/png',
    size: bytes.length,
  })) as {
    key: string;
    url: string;
    fields: Record<string, string>;
  };
  const form = new FormData();
  for (const [name, value] of Object.entries(target.fields)) form.append(name, value);
  form.append('file', new Blob([new Uint8Array(bytes)], { type: 'image/png' }), 'f');
  expect((await fetch(target.url, { method: 'POST', body: form })).status).toBeLessThan(300);
  return { key: target.key, mime: 'image/png', size: bytes.length };
}

/** Asks for a download URL as `client` and fetches it; resolves with the body. */
async function download(client: RawClient, key: string): Promise<string> {
  const { url } = (await client.ok({ t: 'downloadUrl', key })) as { url: string };
  const response = await fetch(url);
  expect(response.status).toBe(200);
  return response.text();
}

async function sendPhoto(sender: RawClient, chatId: string, ref: AttachmentRef): Promise<string> {
  const { messageId } = (await sender.ok({
    t: 'send',
    chatId,
    clientMsgId: ref.key,
    attachments: [ref],
  })) as { messageId: string };
  return messageId;
}

it('keeps the object for a recipient that reads before it downloads, until every device of every recipient fetched it', async () => {
  const h = await startNode(600_000);
  // Bob has a phone and a laptop, both offline when the photo is sent.
  for (const device of ['phone', 'laptop']) await (await connect(h, 'mr-bob', device)).close();
  const alice = await connect(h, 'mr-alice');
  const ref = await upload(alice, 'a photo for bob');
  const { chatId } = (await alice.ok({ t: 'createChat', members: ['mr-bob'] })) as {
    chatId: string;
  };
  const messageId = await sendPhoto(alice, chatId, ref);
  const messageRows = (condition: string): Promise<number> =>
    countRows(
      h.sql,
      `select count(*) as n from messages where chat_id = $1 and id = $2 ${condition}`,
      [chatId, messageId],
    );
  // Past the delivered grace (0 here): the cleanup has emptied the message.
  await waitFor(async () =>
    expect(await messageRows('and content_removed_at is not null')).toBe(1),
  );

  // Bob's phone comes back, syncs, acks, and marks it read as a chat screen does on showing
  // it; the cleanup deletes the read message. The download comes after that.
  const phone = await connect(h, 'mr-bob', 'phone');
  await phone.ok({ t: 'sync', after: 0 });
  await phone.next((f) => f.t === 'evt' && 'messageId' in f && f.messageId === messageId);
  await phone.ok({ t: 'read', chatId, messageId });
  await waitFor(async () => expect(await messageRows('')).toBe(0));
  expect(await download(phone, ref.key)).toBe('a photo for bob');

  // A cleanup pass after the phone's fetch: a second photo, to carol's only device, is
  // released once she fetched it, which that pass saw after the phone's fetch.
  const carol = await connect(h, 'mr-carol');
  const sentinel = await upload(alice, 'a photo for carol');
  const { chatId: carolChat } = (await alice.ok({ t: 'createChat', members: ['mr-carol'] })) as {
    chatId: string;
  };
  const sentinelId = await sendPhoto(alice, carolChat, sentinel);
  await carol.next((f) => f.t === 'evt' && 'messageId' in f && f.messageId === sentinelId);
  expect(await download(carol, sentinel.key)).toBe('a photo for carol');
  await waitFor(async () => expect(await objects.stat(sentinel.key)).toBeNull());
  // The laptop has not fetched bob's photo: it stays.
  expect(await objects.stat(ref.key)).not.toBeNull();

  const laptop = await connect(h, 'mr-bob', 'laptop');
  expect(await download(laptop, ref.key)).toBe('a photo for bob');
  await waitFor(async () => {
    expect(await objects.stat(ref.key)).toBeNull();
    expect(
      await countRows(h.sql, 'select count(*) as n from message_attachments where key = $1', [
        ref.key,
      ]),
    ).toBe(0);
  });
  const gone = await phone.request({ t: 'downloadUrl', key: ref.key });
  expect(gone).toMatchObject({ t: 'err', code: 'NOT_FOUND' });
});

it('deletes an object nobody fetched at the retention period', async () => {
  const retentionMs = 3000;
  const h = await startNode(retentionMs);
  const alice = await connect(h, 'mr-alice');
  const ref = await upload(alice, 'a photo dave never fetches');
  const { chatId } = (await alice.ok({ t: 'createChat', members: ['mr-dave'] })) as {
    chatId: string;
  };
  const sentAt = Date.now();
  await sendPhoto(alice, chatId, ref);
  await waitFor(async () => expect(await objects.stat(ref.key)).toBeNull(), 4 * retentionMs);
  expect(Date.now() - sentAt).toBeGreaterThanOrEqual(retentionMs - 100);
});
