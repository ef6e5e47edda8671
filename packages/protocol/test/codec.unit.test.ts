import { Unpackr, unpack } from 'msgpackr';
import type { Codec, ServerFrame } from '../src';
import {
  codecFor,
  codecs,
  decodeClientFrame,
  defaultLimits,
  JSON_SUBPROTOCOL,
  jsonCodec,
  MSGPACK_SUBPROTOCOL,
  msgpackCodec,
} from '../src';
import { chatErrorOf, strictMsgpackDecode } from './helpers';

const TS = 1_764_250_000_123; // milliseconds, beyond 32 bits

/** At least one frame of every server frame type of docs/protocol.md ("Server frames"). */
const serverFrames: ReadonlyArray<readonly [string, ServerFrame]> = [
  [
    'welcome',
    {
      t: 'welcome',
      user: 'alice',
      device: 'phone',
      node: 'node-1',
      epoch: 3,
      seq: 0,
      heartbeatMs: 25000,
    },
  ],
  ['ok createChat', { t: 'ok', id: 1, chatId: 'c-1' }],
  ['ok addMembers', { t: 'ok', id: 2 }],
  [
    'ok listChats',
    {
      t: 'ok',
      id: 4,
      chats: [
        { chatId: 'c-1', name: 'friends', members: ['alice', 'bob'] },
        { chatId: 'c-2', name: null, members: [] },
      ],
    },
  ],
  ['ok send', { t: 'ok', id: 5, messageId: 'msg-1', ts: TS }],
  ['ok send dup', { t: 'ok', id: 5, messageId: 'msg-1', ts: TS, dup: true }],
  ['ok sync', { t: 'ok', id: 6, seq: Number.MAX_SAFE_INTEGER, more: false }],
  ['ok lastSeen online', { t: 'ok', id: 8, online: true, lastSeen: TS }],
  ['ok lastSeen never', { t: 'ok', id: 8, online: false, lastSeen: null }],
  [
    'ok uploadTarget',
    {
      t: 'ok',
      id: 9,
      key: 'chats/c-1/x',
      url: 'https://s3.example/bucket',
      fields: { policy: 'abc', 'x-amz-signature': 'def' },
      expiresAt: TS,
    },
  ],
  ['ok downloadUrl', { t: 'ok', id: 10, url: 'https://s3.example/x?sig=1', expiresAt: TS }],
  ['err', { t: 'err', id: 11, code: 'NOT_MEMBER', message: 'not a member of this chat' }],
  ['err without id', { t: 'err', code: 'LIMIT', message: 'too many devices' }],
  [
    'evt message',
    {
      t: 'evt',
      seq: 1,
      kind: 'message',
      chatId: 'c-1',
      messageId: 'msg-1',
      from: 'alice',
      body: 'héllo 👋 שלום \u0000 "quoted" \\ \n',
      attachments: [{ key: 'k', mime: 'image/png', size: 2 ** 31 }],
      ts: TS,
    },
  ],
  [
    'evt message without body',
    {
      t: 'evt',
      seq: 2 ** 32 + 1,
      kind: 'message',
      chatId: 'c-1',
      messageId: 'msg-2',
      from: 'bob',
      body: null,
      attachments: [],
      ts: TS,
    },
  ],
  [
    'evt chat',
    {
      t: 'evt',
      seq: 3,
      kind: 'chat',
      chatId: 'c-1',
      change: 'membersAdded',
      members: ['carol'],
      by: 'alice',
      ts: TS,
    },
  ],
  [
    'evt receipt',
    {
      t: 'evt',
      seq: 4,
      kind: 'receipt',
      chatId: 'c-1',
      messageId: 'msg-1',
      user: 'bob',
      status: 'read',
      ts: TS,
    },
  ],
  ['typing', { t: 'typing', chatId: 'c-1', user: 'bob' }],
  ['ping', { t: 'ping', seq: 42 }],
  ['moved', { t: 'moved', node: 'node-2', url: 'ws://127.0.0.1:9002/ws', epoch: 4 }],
];

/** A default Unpackr reads maps as Map: turn them into objects, insisting on string keys. */
function mapsToObjects(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(mapsToObjects);
  if (!(value instanceof Map)) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of value) {
    if (typeof k !== 'string') throw new Error(`non-string key ${String(k)}`);
    out[k] = mapsToObjects(v);
  }
  return out;
}

function asBytes(data: string | Uint8Array): Uint8Array {
  return typeof data === 'string' ? new TextEncoder().encode(data) : data;
}

describe('codecFor', () => {
  it('maps each subprotocol to its codec and nothing else', () => {
    expect(codecFor(JSON_SUBPROTOCOL)).toBe(jsonCodec);
    expect(codecFor(MSGPACK_SUBPROTOCOL)).toBe(msgpackCodec);
    expect(codecFor('chat.v2.json')).toBeUndefined();
    expect(codecFor('')).toBeUndefined();
    expect(codecs).toStrictEqual([jsonCodec, msgpackCodec]);
  });

  it('describes the WebSocket message kind of each codec', () => {
    expect(jsonCodec.binary).toBe(false);
    expect(typeof jsonCodec.encode({ t: 'ping', seq: 1 })).toBe('string');
    expect(msgpackCodec.binary).toBe(true);
    expect(msgpackCodec.encode({ t: 'ping', seq: 1 })).toBeInstanceOf(Uint8Array);
  });
});

describe.each<[string, Codec]>([
  ['json', jsonCodec],
  ['msgpack', msgpackCodec],
])('%s codec', (_name, codec) => {
  it.each(serverFrames)('round-trips a %s frame', (_label, frame) => {
    const wire = codec.encode(frame);
    expect(codec.decode(wire)).toStrictEqual(frame);
  });

  it('decodes the same frame from a string/Uint8Array, a Buffer and an ArrayBuffer', () => {
    const frame = { t: 'ack', seq: 9 };
    const bytes = asBytes(codec.encode(frame));
    const copy = new Uint8Array(bytes); // its own, exactly sized ArrayBuffer
    expect(codec.decode(Buffer.from(bytes))).toStrictEqual(frame);
    expect(codec.decode(copy.buffer)).toStrictEqual(frame);
    expect(decodeClientFrame(codec, copy.buffer, defaultLimits)).toStrictEqual(frame);
  });

  it('leaves out properties whose value is undefined, as JSON does', () => {
    const frame = { t: 'err', id: undefined, code: 'BAD_REQUEST', message: 'x' };
    expect(codec.decode(codec.encode(frame))).toStrictEqual({
      t: 'err',
      code: 'BAD_REQUEST',
      message: 'x',
    });
  });

  it('decodes every client request it encodes', () => {
    const frames = [
      { t: 'createChat', id: 1, members: ['bob'], name: 'n' },
      { t: 'send', id: 2, chatId: 'c', clientMsgId: 'm', body: 'x'.repeat(4096) },
      { t: 'sync', id: 3, after: 2 ** 40, limit: 5 },
      { t: 'typing', chatId: 'c' },
    ];
    for (const frame of frames) {
      expect(decodeClientFrame(codec, codec.encode(frame), defaultLimits)).toStrictEqual(frame);
    }
  });

  it('refuses a body of 4097 characters with TOO_LARGE', () => {
    const frame = { t: 'send', id: 2, chatId: 'c', clientMsgId: 'm', body: 'x'.repeat(4097) };
    const err = chatErrorOf(() => decodeClientFrame(codec, codec.encode(frame), defaultLimits));
    expect(err.code).toBe('TOO_LARGE');
    expect(err.context).toStrictEqual({ id: 2 });
  });

  it('refuses more than 100 members with LIMIT', () => {
    const members = Array.from({ length: 101 }, (_, i) => `u${i}`);
    const err = chatErrorOf(() =>
      decodeClientFrame(codec, codec.encode({ t: 'createChat', id: 3, members }), defaultLimits),
    );
    expect(err.code).toBe('LIMIT');
  });

  it.each([null, 7, 'ack', [], [{ t: 'ack', seq: 1 }]])(
    'refuses the non-object frame %p with BAD_REQUEST',
    (value) => {
      const wire = codec.encode(value as object);
      expect(chatErrorOf(() => decodeClientFrame(codec, wire, defaultLimits)).code).toBe(
        'BAD_REQUEST',
      );
    },
  );

  it('decodes a frame of exactly maxFrameBytes, and refuses one byte more with TOO_LARGE', () => {
    const limit = asBytes(codec.encode({ t: 'ack', seq: 1, pad: 'x'.repeat(200) })).length;
    const limits = { ...defaultLimits, maxFrameBytes: limit };
    const fits = codec.encode({ t: 'ack', seq: 1, pad: 'x'.repeat(200) });
    const over = codec.encode({ t: 'ack', seq: 1, pad: 'x'.repeat(201) });
    expect(decodeClientFrame(codec, fits, limits)).toStrictEqual({ t: 'ack', seq: 1 });
    const err = chatErrorOf(() => decodeClientFrame(codec, over, limits));
    expect(err.code).toBe('TOO_LARGE');
  });

  it('checks the size before decoding: oversized garbage is TOO_LARGE, not BAD_REQUEST', () => {
    const garbage = new Uint8Array(defaultLimits.maxFrameBytes + 1).fill(0xc1);
    expect(chatErrorOf(() => decodeClientFrame(codec, garbage, defaultLimits)).code).toBe(
      'TOO_LARGE',
    );
    expect(chatErrorOf(() => decodeClientFrame(codec, garbage.buffer, defaultLimits)).code).toBe(
      'TOO_LARGE',
    );
    const small = new Uint8Array(10).fill(0xc1);
    expect(chatErrorOf(() => decodeClientFrame(codec, small, defaultLimits)).code).toBe(
      'BAD_REQUEST',
    );
  });

  it('still decodes after refusing a deeply nested frame', () => {
    const depth = defaultLimits.maxFrameBytes / 2 - 1; // deep enough to overflow a recursive reader
    const nested =
      codec === jsonCodec
        ? '['.repeat(depth) + ']'.repeat(depth)
        : Uint8Array.from([...new Array<number>(depth).fill(0x91), 0xc0]);
    expect(chatErrorOf(() => decodeClientFrame(codec, nested, defaultLimits)).code).toBe(
      'BAD_REQUEST',
    );
    const ok = codec.encode({ t: 'ack', seq: 5 });
    expect(decodeClientFrame(codec, ok, defaultLimits)).toStrictEqual({ t: 'ack', seq: 5 });
  });
});

describe('json codec: malformed input', () => {
  it('counts the frame size in UTF-8 bytes, not characters', () => {
    const limits = { ...defaultLimits, maxFrameBytes: 100 };
    const text = JSON.stringify({ t: 'typing', chatId: 'é'.repeat(40) }); // 96 chars, 136 bytes
    expect(text.length).toBeLessThanOrEqual(100);
    expect(chatErrorOf(() => decodeClientFrame(jsonCodec, text, limits)).code).toBe('TOO_LARGE');
  });

  it.each([
    '',
    '{',
    '{"t":"ack","seq":1',
    "{'t':'ack'}",
    'undefined',
    'NaN',
    '{"t":"ack"}x',
    '\u0000',
  ])('refuses the text %p with BAD_REQUEST', (text) => {
    const err = chatErrorOf(() => decodeClientFrame(jsonCodec, text, defaultLimits));
    expect(err.code).toBe('BAD_REQUEST');
  });

  it('refuses bytes that are not UTF-8 with BAD_REQUEST', () => {
    const bytes = Uint8Array.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]);
    expect(chatErrorOf(() => jsonCodec.decode(bytes)).code).toBe('BAD_REQUEST');
  });
});

describe('msgpack codec', () => {
  it('refuses a text frame with BAD_REQUEST', () => {
    const err = chatErrorOf(() =>
      decodeClientFrame(msgpackCodec, '{"t":"ack","seq":1}', defaultLimits),
    );
    expect(err.code).toBe('BAD_REQUEST');
  });

  const valid = msgpackCodec.encode({ t: 'ack', seq: 1 }) as Uint8Array;
  it.each<[string, Uint8Array]>([
    ['empty', new Uint8Array(0)],
    ['truncated', valid.subarray(0, valid.length - 1)],
    ['trailing bytes', Uint8Array.from([...valid, 0xc0])],
    ['reserved byte 0xc1', Uint8Array.from([0xc1])],
    ['unknown extension', Uint8Array.from([0xd4, 0x55, 0x00])],
    [
      'string length past the end',
      Uint8Array.from([0x81, 0xa1, 0x74, 0xdb, 0xff, 0xff, 0xff, 0xff]),
    ],
    ['map length past the end', Uint8Array.from([0xdf, 0xff, 0xff, 0xff, 0xff])],
  ])('refuses %s input with BAD_REQUEST', (_label, bytes) => {
    const err = chatErrorOf(() => decodeClientFrame(msgpackCodec, bytes, defaultLimits));
    expect(err.code).toBe('BAD_REQUEST');
  });

  it.each(serverFrames)(
    'writes a %s frame as plain msgpack a vanilla decoder reads',
    (_l, frame) => {
      const bytes = msgpackCodec.encode(frame) as Uint8Array;
      expect(strictMsgpackDecode(bytes)).toStrictEqual(frame);
      expect(unpack(bytes)).toStrictEqual(frame);
      expect(mapsToObjects(new Unpackr().unpack(bytes))).toStrictEqual(frame);
    },
  );

  it('writes no extension types for undefined values', () => {
    const bytes = msgpackCodec.encode({
      t: 'err',
      id: undefined,
      code: 'LIMIT',
      message: 'm',
      a: [undefined],
    });
    expect(strictMsgpackDecode(bytes as Uint8Array)).toStrictEqual({
      t: 'err',
      code: 'LIMIT',
      message: 'm',
      a: [null],
    });
  });

  it('reads frames written by a vanilla encoder, including 64-bit integers and str8 keys', () => {
    // {"t":"sync","id":1,"after":2^40 as uint64} hand-written with the core types only.
    const bytes = Uint8Array.from([
      0x83, 0xa1, 0x74, 0xa4, 0x73, 0x79, 0x6e, 0x63, 0xd9, 0x02, 0x69, 0x64, 0x01, 0xa5, 0x61,
      0x66, 0x74, 0x65, 0x72, 0xcf, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00,
    ]);
    expect(decodeClientFrame(msgpackCodec, bytes, defaultLimits)).toStrictEqual({
      t: 'sync',
      id: 1,
      after: 2 ** 40,
    });
  });

  it('does not let a __proto__ map key set the prototype', () => {
    const hidden = msgpackCodec.encode(JSON.parse('{"__proto__":{"t":"ack","seq":1}}') as object);
    expect(chatErrorOf(() => decodeClientFrame(msgpackCodec, hidden, defaultLimits)).code).toBe(
      'BAD_REQUEST',
    );
    const extra = msgpackCodec.encode(
      JSON.parse('{"t":"ack","seq":2,"__proto__":{"polluted":true}}') as object,
    );
    const out = decodeClientFrame(msgpackCodec, extra, defaultLimits);
    expect(out).toStrictEqual({ t: 'ack', seq: 2 });
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});
