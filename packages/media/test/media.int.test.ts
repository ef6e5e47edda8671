/**
 * Media end to end on a 3-node cluster with a local S3 server (s3rver): uploads through
 * presigned POSTs from the SDK, attachments checked against storage before a message may
 * carry them, presigned downloads for chat members only, and what happens when storage is down.
 */
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { ChatClient } from '@chat/client';
import type { AttachmentRef, EventFrame, MessageEvent } from '@chat/protocol';
import { jsonCodec } from '@chat/protocol';
import { RawClient, TestCluster, countRows, testToken, waitFor } from '@chat/testkit';

const TTL_SEC = 120;
const BUCKET = 'chat-media';
const MAX_BYTES = 16 * 1024 * 1024;

let cluster: TestCluster;
const clients: ChatClient[] = [];
const raws: RawClient[] = [];

beforeAll(async () => {
  cluster = await TestCluster.start({
    nodes: 3,
    s3: true,
    nodeEnv: { CHAT_MEDIA_URL_TTL_SEC: String(TTL_SEC) },
  });
});
afterAll(async () => {
  await Promise.allSettled([...clients.map((c) => c.close()), ...raws.map((r) => r.close())]);
  await cluster?.close();
});

/** `count` users named `<prefix>-<i>`, each owned by a different node. */
async function usersOnDistinctNodes(prefix: string, count: number): Promise<string[]> {
  const byNode = new Map<string, string>();
  for (let i = 0; byNode.size < count; i++) {
    if (i > 200) throw new Error('could not spread users over the nodes');
    const user = `${prefix}-${i}`;
    const { node } = await cluster.route(user);
    if (!byNode.has(node)) byNode.set(node, user);
  }
  return [...byNode.values()];
}

interface SdkUser {
  readonly id: string;
  readonly client: ChatClient;
  readonly events: EventFrame[];
}

async function sdkUser(id: string): Promise<SdkUser> {
  const client = new ChatClient({
    registryUrl: cluster.registryUrl,
    user: id,
    token: () => testToken(id, 'd1'),
  });
  clients.push(client);
  const user: SdkUser = { id, client, events: [] };
  client.on('event', (e) => user.events.push(e));
  await client.connect();
  return user;
}

async function rawUser(id: string): Promise<RawClient> {
  const { url } = await cluster.route(id);
  const raw = await RawClient.ready({ url, codec: jsonCodec, user: id });
  raws.push(raw);
  return raw;
}

function messageEvent(user: SdkUser, messageId: string): Promise<MessageEvent> {
  return waitFor(() => {
    const evt = user.events.find((e) => e.kind === 'message' && e.messageId === messageId);
    if (evt === undefined) throw new Error(`${user.id} has not got message ${messageId}`);
    return evt as MessageEvent;
  });
}

const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

async function download(user: SdkUser, key: string): Promise<Buffer> {
  const res = await fetch(await user.client.attachmentUrl(key));
  expect(res.status).toBe(200);
  return Buffer.from(await res.arrayBuffer());
}

/** Uploads with the bare protocol: the presigned POST, then the form. */
async function rawUpload(raw: RawClient, bytes: Buffer, mime: string): Promise<AttachmentRef> {
  const target = (await raw.ok({ t: 'uploadTarget', mime, size: bytes.length })) as {
    key: string;
    url: string;
    fields: Record<string, string>;
  };
  const form = new FormData();
  for (const [name, value] of Object.entries(target.fields)) form.append(name, value);
  form.append('file', new Blob([new Uint8Array(bytes)], { type: mime }), 'f');
  const res = await fetch(target.url, { method: 'POST', body: form });
  expect(res.status).toBeLessThan(300);
  return { key: target.key, mime, size: bytes.length };
}

const messageCount = (): Promise<number> =>
  countRows(cluster.sql, 'SELECT count(*) AS n FROM messages');

it('delivers attachments byte for byte across nodes, in a 1:1 chat and a group', async () => {
  const [aliceId, bobId, carolId] = await usersOnDistinctNodes('m1', 3);
  const [alice, bob, carol] = await Promise.all([aliceId!, bobId!, carolId!].map(sdkUser));

  // 1:1: bytes from a Uint8Array.
  const { chatId: direct } = await alice!.client.createChat([bob!.id]);
  const photo = randomBytes(300_000);
  const ref = await alice!.client.uploadAttachment(photo, 'image/jpeg');
  expect(ref).toEqual({
    key: expect.stringMatching(new RegExp(`^u/${alice!.id}/`)),
    mime: 'image/jpeg',
    size: photo.length,
  });
  const sent = await alice!.client.send(direct, 'a photo', { attachments: [ref] });
  const got = await messageEvent(bob!, sent.messageId);
  expect(got.attachments).toEqual([ref]);
  expect(sha256(await download(bob!, ref.key))).toBe(sha256(photo));

  // Group: one attachment from a Blob, one from a Node stream.
  const { chatId: group } = await alice!.client.createChat([bob!.id, carol!.id], 'media');
  const pdf = randomBytes(70_000);
  const voice = randomBytes(150_000);
  const refs = [
    await alice!.client.uploadAttachment(new Blob([pdf]), 'application/pdf'),
    await alice!.client.uploadAttachment(
      Readable.from([voice.subarray(0, 60_000), voice.subarray(60_000)]),
      'audio/ogg',
    ),
  ];
  const groupSent = await alice!.client.send(group, undefined, { attachments: refs });
  for (const member of [bob!, carol!]) {
    const evt = await messageEvent(member, groupSent.messageId);
    expect(evt.attachments).toEqual(refs);
    expect(sha256(await download(member, refs[0]!.key))).toBe(sha256(pdf));
    expect(sha256(await download(member, refs[1]!.key))).toBe(sha256(voice));
  }
  // Carol is in the group but not in the 1:1 chat.
  await expect(carol!.client.attachmentUrl(ref.key)).rejects.toMatchObject({ code: 'NOT_MEMBER' });
});

it('refuses foreign, missing, mismatched, oversized and disallowed attachments, storing nothing', async () => {
  const [aliceId, bobId] = await usersOnDistinctNodes('m2', 2);
  const alice = await rawUser(aliceId!);
  const bob = await rawUser(bobId!);
  const mallory = await rawUser('m2-mallory');
  const chatId = (await alice.ok({ t: 'createChat', members: [bobId] })).chatId as string;
  const bytes = randomBytes(1000);
  const ref = await rawUpload(alice, bytes, 'image/png');
  await alice.ok({ t: 'send', chatId, clientMsgId: 'ok-1', attachments: [ref] });
  const before = await messageCount();

  const send = (clientMsgId: string, attachments: unknown[]): ReturnType<RawClient['request']> =>
    alice.request({ t: 'send', chatId, clientMsgId, body: 'x', attachments });

  // Download: members only, known keys only.
  expect(await mallory.request({ t: 'downloadUrl', key: ref.key })).toMatchObject({
    code: 'NOT_MEMBER',
  });
  expect(
    await bob.request({ t: 'downloadUrl', key: `u/${aliceId}/${'A'.repeat(24)}` }),
  ).toMatchObject({ code: 'NOT_FOUND' });
  expect(await bob.request({ t: 'downloadUrl', key: 'not-a-key' })).toMatchObject({
    code: 'NOT_FOUND',
  });

  // A key issued to someone else (uploaded, even) cannot be attached.
  const bobsRef = await rawUpload(bob, randomBytes(10), 'image/png');
  expect(await send('foreign', [bobsRef])).toMatchObject({ code: 'BAD_REQUEST' });
  // Issued to alice but never uploaded.
  const issued = (await alice.ok({ t: 'uploadTarget', mime: 'image/png', size: 10 })) as {
    key: string;
  };
  expect(await send('missing', [{ key: issued.key, mime: 'image/png', size: 10 }])).toMatchObject({
    code: 'NOT_FOUND',
  });
  // Uploaded, but declared with another size or type.
  expect(await send('size', [{ ...ref, size: ref.size + 1 }])).toMatchObject({
    code: 'BAD_REQUEST',
  });
  expect(await send('type', [{ ...ref, mime: 'image/gif' }])).toMatchObject({
    code: 'BAD_REQUEST',
  });
  // Limits, before any storage call.
  expect(await send('big', [{ ...ref, size: MAX_BYTES + 1 }])).toMatchObject({
    code: 'TOO_LARGE',
  });
  expect(await send('html', [{ ...ref, mime: 'text/html' }])).toMatchObject({
    code: 'BAD_REQUEST',
  });
  expect(
    await send(
      'many',
      Array.from({ length: 11 }, () => ref),
    ),
  ).toMatchObject({
    code: 'TOO_LARGE',
  });
  // The node refuses one valid attachment among bad ones: nothing of the message is stored.
  expect(await send('mixed', [ref, bobsRef])).toMatchObject({ code: 'BAD_REQUEST' });
  expect(await messageCount()).toBe(before);

  // Upload targets: limits are checked before any URL is issued.
  expect(
    await alice.request({ t: 'uploadTarget', mime: 'image/png', size: MAX_BYTES + 1 }),
  ).toEqual(expect.objectContaining({ t: 'err', code: 'TOO_LARGE' }));
  for (const mime of ['text/html', 'image/svg+xml', 'nonsense']) {
    expect(await alice.request({ t: 'uploadTarget', mime, size: 10 })).toEqual(
      expect.objectContaining({ t: 'err', code: 'BAD_REQUEST' }),
    );
  }
});

it('issues URLs with the configured expiry and key scope', async () => {
  const alice = await rawUser('m3-alice');
  const before = Date.now();
  const target = (await alice.ok({ t: 'uploadTarget', mime: 'Image/PNG', size: 1234 })) as {
    key: string;
    url: string;
    fields: Record<string, string>;
    expiresAt: number;
  };
  const after = Date.now();
  expect(target.key).toMatch(/^u\/m3-alice\/[A-Za-z0-9_-]{16,}$/);
  expect(target.url).toBe(`${cluster.s3!.endpoint}/${BUCKET}`);
  expect(target.expiresAt).toBeGreaterThanOrEqual(before + TTL_SEC * 1000);
  expect(target.expiresAt).toBeLessThanOrEqual(after + TTL_SEC * 1000);
  expect(target.fields).toMatchObject({
    key: target.key,
    'Content-Type': 'image/png',
    'x-amz-algorithm': 'AWS4-HMAC-SHA256',
  });
  expect(target.fields['x-amz-credential']).toMatch(/^S3RVER\/\d{8}\/us-east-1\/s3\/aws4_request$/);
  expect(target.fields['x-amz-signature']).toMatch(/^[0-9a-f]{64}$/);

  const policy = JSON.parse(Buffer.from(target.fields.policy!, 'base64').toString('utf8')) as {
    expiration: string;
    conditions: unknown[][];
  };
  expect(Date.parse(policy.expiration)).toBe(target.expiresAt);
  expect(policy.conditions).toEqual(
    expect.arrayContaining([
      ['eq', '$bucket', BUCKET],
      ['eq', '$key', target.key],
      ['eq', '$Content-Type', 'image/png'],
      ['content-length-range', 1234, 1234],
    ]),
  );
  // Exact key and type only: no starts-with condition that would widen the scope.
  expect(policy.conditions.filter((c) => c[0] !== 'eq' && c[0] !== 'content-length-range')).toEqual(
    [],
  );

  // Downloads: path-style URL of exactly this key, presigned for the configured TTL.
  const ref = await rawUpload(alice, randomBytes(1234), 'image/png');
  const chatId = (await alice.ok({ t: 'createChat', members: ['m3-bob'] })).chatId as string;
  await alice.ok({ t: 'send', chatId, clientMsgId: 'c1', attachments: [ref] });
  const t0 = Date.now();
  const dl = (await alice.ok({ t: 'downloadUrl', key: ref.key })) as {
    url: string;
    expiresAt: number;
  };
  const url = new URL(dl.url);
  expect(`${url.origin}${url.pathname}`).toBe(`${cluster.s3!.endpoint}/${BUCKET}/${ref.key}`);
  expect(url.searchParams.get('X-Amz-Expires')).toBe(String(TTL_SEC));
  expect(url.searchParams.get('X-Amz-SignedHeaders')).toBe('host');
  expect(url.searchParams.get('X-Amz-Signature')).toMatch(/^[0-9a-f]{64}$/);
  expect(dl.expiresAt).toBeGreaterThanOrEqual(t0 + TTL_SEC * 1000);
  expect(dl.expiresAt).toBeLessThanOrEqual(Date.now() + TTL_SEC * 1000);
});

it('answers UNAVAILABLE for media while storage is down, and text chat goes on', async () => {
  const [aliceId, bobId] = await usersOnDistinctNodes('m4', 2);
  const alice = await rawUser(aliceId!);
  const bob = await rawUser(bobId!);
  const chatId = (await alice.ok({ t: 'createChat', members: [bobId] })).chatId as string;
  const ref = await rawUpload(alice, randomBytes(500), 'application/octet-stream');
  const before = await messageCount();

  await cluster.s3!.stop();
  try {
    expect(await alice.request({ t: 'uploadTarget', mime: 'image/png', size: 10 })).toMatchObject({
      t: 'err',
      code: 'UNAVAILABLE',
    });
    expect(
      await alice.request({ t: 'send', chatId, clientMsgId: 'down-1', attachments: [ref] }),
    ).toMatchObject({ t: 'err', code: 'UNAVAILABLE' });
    expect(await messageCount()).toBe(before);

    const text = await alice.ok({ t: 'send', chatId, clientMsgId: 'down-2', body: 'still here' });
    await bob.next((f) => f.t === 'evt' && f.kind === 'message' && f.messageId === text.messageId);
  } finally {
    await cluster.s3!.start();
  }
  // Back: the same attachment goes through.
  await waitFor(async () =>
    expect(
      await alice.request({ t: 'send', chatId, clientMsgId: 'up-1', attachments: [ref] }),
    ).toMatchObject({ t: 'ok' }),
  );
});
