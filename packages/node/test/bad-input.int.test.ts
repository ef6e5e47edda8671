/**
 * Malformed, unknown, oversized and fuzzed input: each frame gets its documented error or close
 * code, the node stays up, other users are unaffected and nothing is written that should not be.
 */
import type { Codec, ServerFrame } from '@chat/protocol';
import { defaultLimits, jsonCodec, msgpackCodec, validateClientFrame } from '@chat/protocol';
import type { SingleNode } from '@chat/testkit';
import { RawClient, countRows, prng, startSingleNode, waitFor } from '@chat/testkit';

let h: SingleNode;
const open: RawClient[] = [];

beforeAll(async () => {
  // A generous rate limit: this file measures validation, not the rate limiter.
  h = await startSingleNode({ env: { CHAT_RATE_PER_SEC: '100000', CHAT_RATE_BURST: '100000' } });
});
afterEach(async () => {
  await Promise.all(open.splice(0).map((c) => c.close()));
});
afterAll(async () => {
  await h.close();
});

const SEEDS: object[] = [
  { t: 'send', id: 1, chatId: 'no-such-chat', clientMsgId: 'c1', body: 'hello' },
  { t: 'sync', id: 2, after: 0, limit: 10 },
  { t: 'ack', seq: 0 },
  { t: 'pong', seq: 0 },
  { t: 'typing', chatId: 'x' },
  { t: 'listChats', id: 3 },
  { t: 'read', id: 4, chatId: 'c', messageId: '1' },
  { t: 'block', id: 5, user: 'stranger' },
  { t: 'listBlocked', id: 6 },
  { t: 'privacy', id: 7, lastSeen: 'nobody' },
];

function mutate(bytes: Uint8Array, rnd: () => number): Uint8Array {
  const out = Uint8Array.from(bytes);
  const kind = Math.floor(rnd() * 4);
  if (kind === 0) return out.slice(0, Math.floor(rnd() * out.length));
  if (kind === 1) {
    for (let i = 0; i < 1 + rnd() * 4; i++)
      out[Math.floor(rnd() * out.length)] = Math.floor(rnd() * 256);
    return out;
  }
  if (kind === 2)
    return Uint8Array.from({ length: Math.floor(rnd() * 64) }, () => Math.floor(rnd() * 256));
  const junk = new TextEncoder().encode(JSON.stringify([[[[{ t: 'send' }]]]]));
  return new Uint8Array([...out.slice(0, Math.floor(rnd() * out.length)), ...junk]);
}

describe.each<[string, Codec]>([
  ['json', jsonCodec],
  ['msgpack', msgpackCodec],
])('bad input over %s', (name, codec) => {
  const connect = async (user: string): Promise<RawClient> => {
    const c = await RawClient.ready({ url: h.node.url, codec, user: `${name}-${user}` });
    open.push(c);
    return c;
  };

  it.each([
    ['unknown type', { t: 'explode', id: 7 }, 'BAD_REQUEST', 7],
    ['missing chatId', { t: 'send', id: 8, clientMsgId: 'x', body: 'b' }, 'BAD_REQUEST', 8],
    [
      'wrong-typed body',
      { t: 'send', id: 9, chatId: 'c', clientMsgId: 'x', body: 42 },
      'BAD_REQUEST',
      9,
    ],
    ['wrong-typed after', { t: 'sync', id: 10, after: '0' }, 'BAD_REQUEST', 10],
    ['negative after', { t: 'sync', id: 11, after: -1 }, 'BAD_REQUEST', 11],
    ['members not an array', { t: 'createChat', id: 12, members: 'bob' }, 'BAD_REQUEST', 12],
    ['bad member id', { t: 'createChat', id: 13, members: ['bad id'] }, 'BAD_REQUEST', 13],
    [
      'too many members',
      { t: 'createChat', id: 14, members: Array.from({ length: 101 }, (_, i) => `m${i}`) },
      'LIMIT',
      14,
    ],
    [
      'body too long',
      { t: 'send', id: 15, chatId: 'c', clientMsgId: 'x', body: 'x'.repeat(4097) },
      'TOO_LARGE',
      15,
    ],
    ['request without id', { t: 'listChats' }, 'BAD_REQUEST', undefined],
  ])('answers %s with its code', async (_label, frame, code, id) => {
    const c = await connect('v');
    c.sendFrame(frame);
    const err = await c.next((f) => f.t === 'err');
    expect(err).toMatchObject({ t: 'err', code });
    expect((err as { id?: number }).id).toBe(id);
  });

  it('answers undecodable bytes and non-objects with BAD_REQUEST', async () => {
    const c = await connect('garbage');
    c.sendBytes(codec.binary ? new Uint8Array([0xc1, 0xff, 0x00]) : '{"t":"send",');
    c.sendBytes(codec.binary ? codec.encode([1, 2, 3]) : '[1,2,3]');
    await waitFor(() =>
      expect(c.frames.filter((f) => f.t === 'err' && f.code === 'BAD_REQUEST')).toHaveLength(2),
    );
  });

  it('refuses U+0000 in client strings with BAD_REQUEST, not failing the others of a read batch', async () => {
    const alice = await connect('nul-a');
    const bob = await connect('nul-b');
    const mallory = await connect('nul-m');
    const chatId = (await alice.ok({ t: 'createChat', members: [`${name}-nul-b`] }))
      .chatId as string;
    const sent = await alice.ok({ t: 'send', chatId, clientMsgId: 'n1', body: 'hi' });
    // Both reads land in the same read window: the poisoned one must not take bob's down.
    const [good, poisoned] = await Promise.all([
      bob.request({ t: 'read', chatId, messageId: sent.messageId }),
      mallory.request({ t: 'read', chatId: `${chatId}\u0000`, messageId: sent.messageId }),
    ]);
    expect(good).toMatchObject({ t: 'ok' });
    expect(poisoned).toMatchObject({ t: 'err', code: 'BAD_REQUEST' });
    expect((poisoned as { message: string }).message).toContain('chatId');
    const count = (): Promise<number> =>
      countRows(h.sql, 'SELECT count(*) AS n FROM messages WHERE chat_id = $1', [chatId]);
    const before = await count();
    for (const [frame, field] of [
      [{ t: 'read', chatId, messageId: '1\u0000' }, 'messageId'],
      [{ t: 'send', chatId, clientMsgId: 'n2', body: 'a\u0000b' }, 'body'],
      [{ t: 'send', chatId, clientMsgId: 'n\u00003', body: 'x' }, 'clientMsgId'],
      [{ t: 'createChat', members: [`${name}-nul-b`], name: 'x\u0000' }, 'name'],
    ] as const) {
      const reply = await alice.request(frame);
      expect(reply).toMatchObject({ t: 'err', code: 'BAD_REQUEST' });
      expect((reply as { message: string }).message).toContain(field);
    }
    expect(await count()).toBe(before);
  });

  it('answers a frame over 64 KiB with TOO_LARGE and stays usable', async () => {
    const c = await connect('big');
    c.sendFrame({ t: 'send', id: 1, chatId: 'c', clientMsgId: 'x', body: 'y'.repeat(70 * 1024) });
    expect(await c.next((f) => f.t === 'err')).toMatchObject({ code: 'TOO_LARGE' });
    expect(await c.ok({ t: 'listChats' })).toMatchObject({ chats: [] });
  });

  it('closes with 4000 on the wrong frame kind', async () => {
    const c = await connect('kind');
    c.sendBytes(codec.binary ? '{"t":"listChats","id":1}' : new Uint8Array([0x80]));
    expect((await c.closed).code).toBe(4000);
  });

  it('survives 10,000 random and mutated frames while others chat, writing nothing', async () => {
    const alice = await connect('alice');
    const bob = await connect('bob');
    const chatId = (await alice.ok({ t: 'createChat', members: [`${name}-bob`] })).chatId as string;
    const fuzzer = await connect('fuzzer');
    const messagesBefore = await countRows(h.sql, 'SELECT count(*) AS n FROM messages');
    const chatsBefore = await countRows(h.sql, 'SELECT count(*) AS n FROM chats');

    const rnd = prng(name === 'json' ? 1234 : 5678);
    const seeds = SEEDS.map((s) => {
      const data = codec.encode(s);
      return typeof data === 'string' ? new TextEncoder().encode(data) : data;
    });
    let expectedErrors = 0;
    for (let i = 0; i < 10_000; i++) {
      const bytes = mutate(seeds[Math.floor(rnd() * seeds.length)]!, rnd);
      const wire = codec.binary ? bytes : new TextDecoder().decode(bytes);
      let invalid = false;
      try {
        const frame = validateClientFrame(codec.decode(wire), defaultLimits);
        // Valid requests answer err too here: the fuzzer is in no chat (send and read get
        // NOT_FOUND or NOT_MEMBER, lastSeen NOT_FOUND), and this node has no object storage
        // (uploadTarget and downloadUrl get BAD_REQUEST).
        invalid =
          frame.t === 'send' ||
          frame.t === 'read' ||
          frame.t === 'lastSeen' ||
          frame.t === 'uploadTarget' ||
          frame.t === 'downloadUrl';
      } catch {
        invalid = true;
      }
      if (invalid) expectedErrors++;
      fuzzer.sendBytes(wire);
      if (i % 1000 === 0) {
        const ok = await alice.ok({
          t: 'send',
          chatId,
          clientMsgId: `during-${i}`,
          body: `at ${i}`,
        });
        await bob.next(
          (f) => f.t === 'evt' && f.kind === 'message' && f.messageId === ok.messageId,
        );
      }
    }
    const isErr = (f: ServerFrame): boolean => f.t === 'err';
    await waitFor(
      () => expect(fuzzer.frames.filter(isErr).length).toBeGreaterThanOrEqual(expectedErrors),
      30_000,
    );
    expect(fuzzer.frames.every((f) => ['welcome', 'ok', 'err', 'evt', 'ping'].includes(f.t))).toBe(
      true,
    );
    expect(await fetch(`${h.node.httpUrl}/healthz`).then((r) => r.status)).toBe(200);
    expect(await countRows(h.sql, 'SELECT count(*) AS n FROM messages')).toBe(messagesBefore + 10);
    // createChat frames produced by mutation may legitimately create chats for the fuzzer only.
    expect(
      await countRows(h.sql, 'SELECT count(*) AS n FROM chats WHERE created_by <> $1', [
        `${name}-fuzzer`,
      ]),
    ).toBe(chatsBefore);
  }, 120_000);
});
