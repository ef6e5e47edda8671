import type { ChatError, ClientFrame, ClientRequest, Limits, RequestType } from '../src';
import { compareIds, defaultLimits, requestIdOf, validateClientFrame } from '../src';
import { chatErrorOf } from './helpers';

const validate = (value: unknown, limits: Limits = defaultLimits): ClientFrame =>
  validateClientFrame(value, limits);

/** One well-formed request of every type (docs/protocol.md), with every optional field set. */
const validRequests: Readonly<Record<RequestType, ClientRequest>> = {
  createChat: { t: 'createChat', id: 1, members: ['bob', 'carol.x', 'd_e-9'], name: 'friends' },
  addMembers: { t: 'addMembers', id: 2, chatId: 'c-1', members: ['dave'] },
  removeMembers: { t: 'removeMembers', id: 3, chatId: 'c-1', members: ['dave', 'erin'] },
  listChats: { t: 'listChats', id: 4 },
  send: {
    t: 'send',
    id: 5,
    chatId: 'c-1',
    clientMsgId: 'm-1',
    body: 'hello 👋',
    attachments: [{ key: 'chats/c-1/a.png', mime: 'image/png', size: 1234 }],
  },
  sync: { t: 'sync', id: 6, after: 41, limit: 50 },
  read: { t: 'read', id: 7, chatId: 'c-1', messageId: 'msg-9' },
  lastSeen: { t: 'lastSeen', id: 8, user: 'bob' },
  block: { t: 'block', id: 21, user: 'mallory' },
  unblock: { t: 'unblock', id: 22, user: 'mallory' },
  listBlocked: { t: 'listBlocked', id: 23 },
  privacy: { t: 'privacy', id: 24, lastSeen: 'nobody' },
  uploadTarget: { t: 'uploadTarget', id: 9, mime: 'image/jpeg', size: 5_000_000 },
  downloadUrl: { t: 'downloadUrl', id: 10, key: 'chats/c-1/a.png' },
  pushRegister: { t: 'pushRegister', id: 31, target: { kind: 'fcm', token: 'abc:DEF_1-2.3' } },
  pushRemove: { t: 'pushRemove', id: 32 },
  pushSettings: { t: 'pushSettings', id: 33, previews: true },
};

const requestTypes = Object.keys(validRequests) as RequestType[];

/** The same requests with only the required fields. */
const minimalRequests: Readonly<Record<RequestType, ClientRequest>> = {
  createChat: { t: 'createChat', id: 11, members: [] },
  addMembers: validRequests.addMembers,
  removeMembers: validRequests.removeMembers,
  listChats: validRequests.listChats,
  send: { t: 'send', id: 15, chatId: 'c', clientMsgId: 'm', body: '' },
  sync: { t: 'sync', id: 16, after: 0 },
  read: validRequests.read,
  lastSeen: validRequests.lastSeen,
  block: validRequests.block,
  unblock: validRequests.unblock,
  listBlocked: validRequests.listBlocked,
  privacy: { t: 'privacy', id: 25 },
  uploadTarget: validRequests.uploadTarget,
  downloadUrl: validRequests.downloadUrl,
  pushRegister: validRequests.pushRegister,
  pushRemove: validRequests.pushRemove,
  pushSettings: { t: 'pushSettings', id: 34 },
};

/** Fields whose absence must be refused, per type. */
const requiredFields: Readonly<Record<RequestType, readonly string[]>> = {
  createChat: ['members'],
  addMembers: ['chatId', 'members'],
  removeMembers: ['chatId', 'members'],
  listChats: [],
  send: ['chatId', 'clientMsgId'],
  sync: ['after'],
  read: ['chatId', 'messageId'],
  lastSeen: ['user'],
  block: ['user'],
  unblock: ['user'],
  listBlocked: [],
  privacy: [],
  uploadTarget: ['mime', 'size'],
  downloadUrl: ['key'],
  pushRegister: ['target'],
  pushRemove: [],
  pushSettings: [],
};

const badOpaqueIds = [5, '', 'x'.repeat(65), null, {}, ['c-1'], true];
const badUserIds = [5, '', 'x'.repeat(65), 'has space', 'ümlaut', 'a/b', null, ['bob']];
const badCounts = [-1, 1.5, '1', null, true, Number.NaN, Infinity, 2 ** 53, {}];
const badMemberLists = ['bob', null, {}, [1], ['bad id'], [''], ['x'.repeat(65)], ['ok', null]];

// null in an optional field is left out on purpose: whether it means "absent" is not settled.
/** Values that are wrong for a field, per type and field: each must give BAD_REQUEST. */
const wrongValues: Readonly<Record<RequestType, Readonly<Record<string, readonly unknown[]>>>> = {
  createChat: { members: badMemberLists, name: [5, ['n'], 'x'.repeat(129)] },
  addMembers: { chatId: badOpaqueIds, members: badMemberLists },
  removeMembers: { chatId: badOpaqueIds, members: badMemberLists },
  listChats: {},
  send: {
    chatId: badOpaqueIds,
    clientMsgId: badOpaqueIds,
    body: [5, ['hi'], {}],
    attachments: [
      'a',
      {},
      [null],
      [[]],
      ['k'],
      [{ key: 'k', mime: 'm' }],
      [{ key: 1, mime: 'm', size: 1 }],
      [{ key: 'k', mime: 2, size: 1 }],
      [{ key: 'k', mime: 'm', size: -1 }],
      [{ key: 'k', mime: 'm', size: '1' }],
      [{ key: 'k'.repeat(513), mime: 'm', size: 1 }],
      [{ key: 'k', mime: 'm'.repeat(128), size: 1 }],
    ],
  },
  sync: { after: badCounts, limit: [0, ...badCounts.filter((v) => v !== null)] },
  read: { chatId: badOpaqueIds, messageId: badOpaqueIds },
  lastSeen: { user: badUserIds },
  block: { user: badUserIds },
  unblock: { user: badUserIds },
  listBlocked: {},
  privacy: { lastSeen: [5, 'friends', 'Everyone', '', ['nobody'], {}] },
  uploadTarget: { mime: [5, null, 'm'.repeat(128)], size: badCounts },
  downloadUrl: { key: [5, null, {}, 'k'.repeat(513)] },
  pushRegister: { target: [5, null, 'fcm', {}, { kind: 'fcm' }, { kind: 'webpush' }] },
  pushRemove: {},
  pushSettings: { previews: [5, 'true', {}, []] },
};

function expectBadRequest(value: unknown, id: number | undefined): ChatError {
  const err = chatErrorOf(() => validate(value));
  expect(err.code).toBe('BAD_REQUEST');
  if (id === undefined) expect(err.context).not.toHaveProperty('id');
  else expect(err.context).toStrictEqual({ id });
  return err;
}

describe('validateClientFrame: requests', () => {
  it.each(requestTypes)('accepts a complete %s request unchanged', (t) => {
    const frame = validRequests[t];
    expect(validate(structuredClone(frame))).toStrictEqual(frame);
  });

  it.each(requestTypes)('accepts a %s request with only its required fields', (t) => {
    const frame = minimalRequests[t];
    expect(validate(structuredClone(frame))).toStrictEqual(frame);
  });

  it('accepts a send with attachments but no body, and id 0', () => {
    const frame = {
      t: 'send',
      id: 0,
      chatId: 'c',
      clientMsgId: 'm',
      attachments: [{ key: 'k', mime: 'application/pdf', size: 0 }],
    };
    expect(validate(frame)).toStrictEqual(frame);
  });

  it('refuses a send with neither body nor attachments', () => {
    const base = { t: 'send', id: 21, chatId: 'c', clientMsgId: 'm' };
    expectBadRequest(base, 21);
    expectBadRequest({ ...base, attachments: [] }, 21);
  });

  const missing = requestTypes.flatMap((t) => requiredFields[t].map((field) => [t, field]));
  it.each(missing)('refuses %s without %s, with the request id', (t, field) => {
    const frame: Record<string, unknown> = { ...validRequests[t as RequestType] };
    delete frame[field];
    expectBadRequest(frame, validRequests[t as RequestType].id);
  });

  const wrong = requestTypes.flatMap((t) =>
    Object.entries(wrongValues[t]).flatMap(([field, values]) =>
      values.map((value) => [t, field, value] as const),
    ),
  );
  it.each(wrong)('refuses %s with %s = %p, with the request id', (t, field, value) => {
    const frame = { ...validRequests[t], [field]: value };
    expectBadRequest(frame, validRequests[t].id);
  });

  it.each(requestTypes)('refuses %s without a usable id, with no id in the context', (t) => {
    for (const id of [undefined, -1, 1.5, '1', null, 2 ** 53, [1]]) {
      const frame: Record<string, unknown> = { ...validRequests[t], id };
      if (id === undefined) delete frame.id;
      expectBadRequest(frame, undefined);
    }
  });

  it('treats null in an optional field as absent, as msgpack clients send nil', () => {
    expect(validate({ t: 'createChat', id: 1, members: ['bob'], name: null })).toEqual({
      t: 'createChat',
      id: 1,
      members: ['bob'],
    });
    expect(validate({ t: 'sync', id: 2, after: 3, limit: null })).toEqual({
      t: 'sync',
      id: 2,
      after: 3,
    });
    expect(
      validate({ t: 'send', id: 3, chatId: 'c', clientMsgId: 'm', body: 'b', attachments: null }),
    ).toEqual({
      t: 'send',
      id: 3,
      chatId: 'c',
      clientMsgId: 'm',
      body: 'b',
    });
    expect(
      chatErrorOf(() => validate({ t: 'send', id: 4, chatId: 'c', clientMsgId: 'm', body: null }))
        .code,
    ).toBe('BAD_REQUEST');
    expect(chatErrorOf(() => validate({ t: 'sync', id: 5, after: null })).code).toBe('BAD_REQUEST');
  });

  it('clamps a sync limit above the maximum to the maximum', () => {
    expect(validate({ t: 'sync', id: 1, after: 0, limit: 10_000 })).toStrictEqual({
      t: 'sync',
      id: 1,
      after: 0,
      limit: defaultLimits.maxSyncLimit,
    });
  });
});

describe('validateClientFrame: fire-and-forget frames', () => {
  it.each([
    { t: 'ack', seq: 0 },
    { t: 'ack', seq: 12345 },
    { t: 'pong', seq: 7 },
    { t: 'typing', chatId: 'c-1' },
  ])('accepts %p', (frame) => {
    expect(validate({ ...frame })).toStrictEqual(frame);
  });

  it.each([
    { t: 'ack' },
    { t: 'ack', seq: -1 },
    { t: 'ack', seq: '3' },
    { t: 'ack', seq: 1.5 },
    { t: 'pong', seq: null },
    { t: 'pong' },
    { t: 'typing' },
    { t: 'typing', chatId: '' },
    { t: 'typing', chatId: 3 },
    { t: 'typing', chatId: 'x'.repeat(65) },
  ])('refuses %p with BAD_REQUEST', (frame) => {
    expect(chatErrorOf(() => validate(frame)).code).toBe('BAD_REQUEST');
  });
});

describe('validateClientFrame: frame shape and type', () => {
  it.each([null, undefined, 0, 42, 'ack', true, [], [{ t: 'ack', seq: 1 }]])(
    'refuses the non-object frame %p',
    (value) => {
      expectBadRequest(value, undefined);
    },
  );

  it.each(['nope', 'Send', 'ok', 'err', 'evt', 'welcome', 'constructor', 'toString', '__proto__'])(
    'refuses the unknown type %p, with the request id',
    (t) => {
      expectBadRequest({ t, id: 31 }, 31);
    },
  );

  it('refuses an unknown type without an id', () => {
    expectBadRequest({ t: 'nope' }, undefined);
  });

  it.each([{}, { id: 4 }, { t: 5, id: 4 }, { t: null, id: 4 }, { t: ['send'], id: 4 }])(
    'refuses %p (t missing or not a string), with the id when readable',
    (frame) => {
      expectBadRequest(frame, 'id' in frame ? 4 : undefined);
    },
  );
});

describe('validateClientFrame: limits', () => {
  const send = (body: string): unknown => ({
    t: 'send',
    id: 41,
    chatId: 'c',
    clientMsgId: 'm',
    body,
  });
  const members = (n: number): string[] => Array.from({ length: n }, (_, i) => `user${i}`);

  it('accepts a body of exactly 4096 characters', () => {
    const body = 'x'.repeat(4096);
    expect(validate(send(body))).toMatchObject({ body });
  });

  it('refuses a body of 4097 characters with TOO_LARGE and the request id', () => {
    const err = chatErrorOf(() => validate(send('x'.repeat(4097))));
    expect(err.code).toBe('TOO_LARGE');
    expect(err.context).toStrictEqual({ id: 41 });
  });

  it('counts body length in UTF-16 code units', () => {
    expect(validate(send('😀'.repeat(2048)))).toMatchObject({ t: 'send' });
    expect(chatErrorOf(() => validate(send('😀'.repeat(2048) + 'x'))).code).toBe('TOO_LARGE');
  });

  it('honours a configured body limit', () => {
    const limits = { ...defaultLimits, maxBodyChars: 3 };
    expect(validate(send('abc'), limits)).toMatchObject({ body: 'abc' });
    expect(chatErrorOf(() => validate(send('abcd'), limits)).code).toBe('TOO_LARGE');
  });

  it.each(['createChat', 'addMembers', 'removeMembers'] as const)(
    '%s accepts 100 members and refuses 101 with LIMIT and the request id',
    (t) => {
      const ok = { ...validRequests[t], members: members(100) };
      expect(validate(ok)).toStrictEqual(ok);
      const err = chatErrorOf(() => validate({ ...validRequests[t], members: members(101) }));
      expect(err.code).toBe('LIMIT');
      expect(err.context).toStrictEqual({ id: validRequests[t].id });
    },
  );

  it('accepts 10 attachments and refuses 11 with TOO_LARGE', () => {
    const att = (n: number): unknown[] =>
      Array.from({ length: n }, (_, i) => ({ key: `k${i}`, mime: 'image/png', size: i }));
    const base = { t: 'send', id: 42, chatId: 'c', clientMsgId: 'm' };
    expect(validate({ ...base, attachments: att(10) })).toStrictEqual({
      ...base,
      attachments: att(10),
    });
    const err = chatErrorOf(() => validate({ ...base, attachments: att(11) }));
    expect(err.code).toBe('TOO_LARGE');
    expect(err.context).toStrictEqual({ id: 42 });
  });

  it('accepts a chat name of 128 characters and refuses 129', () => {
    const base = { t: 'createChat', id: 43, members: ['bob'] };
    expect(validate({ ...base, name: 'n'.repeat(128) })).toMatchObject({ name: 'n'.repeat(128) });
    expectBadRequest({ ...base, name: 'n'.repeat(129) }, 43);
  });
});

describe('validateClientFrame: output holds only known fields', () => {
  it('strips unknown fields from requests, notices and attachments', () => {
    expect(validate({ t: 'ack', seq: 1, id: 9, extra: 'x' })).toStrictEqual({ t: 'ack', seq: 1 });
    expect(validate({ t: 'listChats', id: 1, user: 'mallory', admin: true })).toStrictEqual({
      t: 'listChats',
      id: 1,
    });
    expect(
      validate({
        t: 'send',
        id: 2,
        chatId: 'c',
        clientMsgId: 'm',
        from: 'mallory',
        ts: 1,
        attachments: [{ key: 'k', mime: 'm', size: 1, url: 'http://evil' }],
      }),
    ).toStrictEqual({
      t: 'send',
      id: 2,
      chatId: 'c',
      clientMsgId: 'm',
      attachments: [{ key: 'k', mime: 'm', size: 1 }],
    });
  });

  it('returns fresh arrays, not the caller’s', () => {
    const input = { t: 'createChat', id: 1, members: ['bob'] };
    const out = validate(input) as { members: string[] };
    expect(out.members).toStrictEqual(['bob']);
    expect(out.members).not.toBe(input.members);
  });

  it('is not fooled or polluted by __proto__ and constructor keys', () => {
    const parsed: unknown = JSON.parse(
      '{"t":"ack","seq":1,"__proto__":{"polluted":true,"t":"send"},"constructor":{"prototype":{"polluted":true}}}',
    );
    const out = validate(parsed);
    expect(out).toStrictEqual({ t: 'ack', seq: 1 });
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();

    // Fields hidden behind __proto__ are not read as the frame's own fields.
    expectBadRequest(JSON.parse('{"__proto__":{"t":"ack","seq":1}}'), undefined);
    expectBadRequest(JSON.parse('{"t":"sync","id":3,"__proto__":{"after":1}}'), 3);
  });
});

describe('requestIdOf', () => {
  it.each([
    [{ id: 0 }, 0],
    [{ id: 17 }, 17],
    [{ id: -1 }, undefined],
    [{ id: 1.5 }, undefined],
    [{ id: '3' }, undefined],
    [{}, undefined],
    [null, undefined],
    ['{"id":1}', undefined],
    [7, undefined],
  ])('reads %p as %p', (value, expected) => {
    expect(requestIdOf(value)).toBe(expected);
  });
});

test('compareIds sorts ids naturally, digit runs as numbers', () => {
  expect(['node-10', 'node-2', 'a', 'node-1'].sort(compareIds)).toEqual([
    'a',
    'node-1',
    'node-2',
    'node-10',
  ]);
});

describe('validateClientFrame: NUL characters', () => {
  // Postgres text cannot hold U+0000: such a string must never get past validation.
  const nul = 'a\u0000b';
  const att = { key: 'k', mime: 'image/png', size: 1 };
  it.each<[string, Record<string, unknown>, string]>([
    ['read chatId', { t: 'read', id: 50, chatId: nul, messageId: '1' }, 'chatId'],
    ['read messageId', { t: 'read', id: 50, chatId: 'c', messageId: nul }, 'messageId'],
    ['send body', { t: 'send', id: 50, chatId: 'c', clientMsgId: 'm', body: nul }, 'body'],
    ['send chatId', { t: 'send', id: 50, chatId: nul, clientMsgId: 'm', body: 'x' }, 'chatId'],
    [
      'send clientMsgId',
      { t: 'send', id: 50, chatId: 'c', clientMsgId: nul, body: 'x' },
      'clientMsgId',
    ],
    [
      'attachment key',
      { t: 'send', id: 50, chatId: 'c', clientMsgId: 'm', attachments: [{ ...att, key: nul }] },
      'key',
    ],
    [
      'attachment mime',
      { t: 'send', id: 50, chatId: 'c', clientMsgId: 'm', attachments: [{ ...att, mime: nul }] },
      'mime',
    ],
    ['chat name', { t: 'createChat', id: 50, members: ['bob'], name: nul }, 'name'],
    ['addMembers chatId', { t: 'addMembers', id: 50, chatId: nul, members: ['bob'] }, 'chatId'],
    [
      'removeMembers chatId',
      { t: 'removeMembers', id: 50, chatId: nul, members: ['bob'] },
      'chatId',
    ],
    ['uploadTarget mime', { t: 'uploadTarget', id: 50, mime: nul, size: 1 }, 'mime'],
    ['downloadUrl key', { t: 'downloadUrl', id: 50, key: nul }, 'key'],
    ['member id', { t: 'createChat', id: 50, members: [nul] }, 'members'],
    ['lastSeen user', { t: 'lastSeen', id: 50, user: nul }, 'user'],
  ])('refuses a NUL in %s with BAD_REQUEST naming the field', (_what, frame, field) => {
    const err = chatErrorOf(() => validate(frame));
    expect(err.code).toBe('BAD_REQUEST');
    expect(err.message).toContain(field);
    expect(err.context).toStrictEqual({ id: 50 });
  });

  it('refuses a NUL in a typing chatId', () => {
    expect(chatErrorOf(() => validate({ t: 'typing', chatId: nul })).code).toBe('BAD_REQUEST');
  });

  it('names the NUL in the message', () => {
    const err = chatErrorOf(() => validate({ t: 'read', id: 1, chatId: 'c', messageId: '\u0000' }));
    expect(err.message).toBe('messageId must not contain the NUL character (U+0000)');
  });
});
