import type { EventFrame, ReceiptsFrame } from '@chat/protocol';
import { ChatModel, MESSAGES_PER_CHAT } from '../src/chat/model';
import type { SavedStateV1 } from '../src/chat/model';

let seq = 0;
function message(chatId: string, messageId: string, from: string, body: string, ts: number) {
  return {
    t: 'evt',
    seq: ++seq,
    kind: 'message',
    chatId,
    messageId,
    from,
    body,
    attachments: [],
    ts,
  } satisfies EventFrame;
}
function receipt(messageId: string, user: string, status: 'delivered' | 'read') {
  return {
    t: 'evt',
    seq: ++seq,
    kind: 'receipt',
    chatId: 'c1',
    messageId,
    user,
    status,
    ts: 1,
  } satisfies EventFrame;
}
function marks(chatId: string, user: string, delivered?: string, read?: string): ReceiptsFrame {
  return {
    t: 'receipts',
    chatId,
    user,
    ...(delivered === undefined ? {} : { delivered }),
    ...(read === undefined ? {} : { read }),
  };
}
function created(chatId: string, members: string[]) {
  return {
    t: 'evt',
    seq: ++seq,
    kind: 'chat',
    chatId,
    change: 'created',
    members,
    by: members[0] ?? '',
    ts: 1,
  } satisfies EventFrame;
}

beforeEach(() => {
  seq = 0;
});

test('messages are kept once, in time order, and count as unread unless the chat is open', () => {
  const model = new ChatModel('alice');
  model.apply(created('c1', ['alice', 'bob']), undefined);
  model.apply(message('c1', 'm2', 'bob', 'second', 200), undefined);
  model.apply(message('c1', 'm1', 'bob', 'first (late)', 100), undefined);
  // The same message again (a resend after a reconnect) is not shown twice.
  model.apply({ ...message('c1', 'm1', 'bob', 'first (late)', 100) }, undefined);
  expect(model.messagesOf('c1').map((m) => m.body)).toEqual(['first (late)', 'second']);
  expect(model.chat('c1')?.unread).toBe(2);
  model.apply(message('c1', 'm3', 'bob', 'third', 300), 'c1');
  expect(model.chat('c1')?.unread).toBe(2);
});

test('events at or below the last seq are skipped (a reload resumes exactly)', () => {
  const model = new ChatModel('alice');
  const evt = message('c1', 'm1', 'bob', 'hi', 1);
  model.apply(evt, undefined);
  expect(model.lastSeq).toBe(evt.seq);
  const reloaded = new ChatModel('alice', model.save());
  reloaded.apply({ ...evt, messageId: 'other' }, undefined);
  expect(reloaded.messagesOf('c1').map((m) => m.messageId)).toEqual(['m1']);
});

test('ticks of an own message: pending, sent, delivered to all, read by all (groups too)', () => {
  const model = new ChatModel('alice');
  model.apply(created('c1', ['alice', 'bob', 'carol']), undefined);
  model.addPending('c1', 'k1', 'hello', [], 10);
  const mine = () => model.messagesOf('c1')[0]!;
  expect(model.ticks(mine())).toBe('pending');
  model.confirmSent('c1', 'k1', '1005', 11);
  expect(model.ticks(mine())).toBe('sent');
  model.applyReceipts(marks('c1', 'bob', '1005'));
  expect(model.ticks(mine())).toBe('sent');
  // A watermark past the message covers it (numerically: 999 < 1005 < 10000).
  model.applyReceipts(marks('c1', 'carol', '999'));
  expect(model.ticks(mine())).toBe('sent');
  model.applyReceipts(marks('c1', 'carol', '10000'));
  expect(model.ticks(mine())).toBe('delivered');
  model.applyReceipts(marks('c1', 'bob', undefined, '1005'));
  expect(model.ticks(mine())).toBe('delivered');
  // Watermarks never go back: an older frame arriving late changes nothing.
  model.applyReceipts(marks('c1', 'carol', '1', '1'));
  model.applyReceipts(marks('c1', 'carol', undefined, '20000'));
  expect(model.ticks(mine())).toBe('read');
  // A receipt event of an older server counts for its message and everything before it.
  model.confirmSent('c1', 'k2', '1000', 9);
  expect(model.ticks(model.messagesOf('c1')[0]!)).toBe('read');
});

test('a receipt event from an older server is a watermark at its message', () => {
  const model = new ChatModel('alice');
  model.apply(created('c1', ['alice', 'bob']), undefined);
  model.addPending('c1', 'k1', 'one', [], 10);
  model.confirmSent('c1', 'k1', '100', 10);
  model.addPending('c1', 'k2', 'two', [], 11);
  model.confirmSent('c1', 'k2', '200', 11);
  model.apply(receipt('200', 'bob', 'delivered'), undefined);
  expect(model.messagesOf('c1').map((m) => model.ticks(m))).toEqual(['delivered', 'delivered']);
  model.apply(receipt('100', 'bob', 'read'), undefined);
  expect(model.messagesOf('c1').map((m) => model.ticks(m))).toEqual(['read', 'delivered']);
});

test('an own message whose inbox event came before the send reply is shown once', () => {
  const model = new ChatModel('alice');
  model.addPending('c1', 'k1', 'hello', [], 10);
  model.apply(message('c1', 'm1', 'alice', 'hello', 11), undefined);
  model.confirmSent('c1', 'k1', 'm1', 11);
  expect(model.messagesOf('c1')).toHaveLength(1);
  expect(model.messagesOf('c1')[0]?.messageId).toBe('m1');
  model.addPending('c1', 'k2', 'lost', [], 12);
  model.failSend('c1', 'k2');
  expect(model.ticks(model.messagesOf('c1')[1]!)).toBe('failed');
});

test('opening a chat clears unread and names the newest message from others to mark read', () => {
  const model = new ChatModel('alice');
  model.apply(message('c1', '101', 'bob', 'one', 1), undefined);
  model.apply(message('c1', '102', 'bob', 'two', 2), undefined);
  model.addPending('c1', 'k1', 'mine', [], 3);
  expect(model.open('c1')).toBe('102');
  expect(model.chat('c1')?.unread).toBe(0);
  model.markedRead('c1', '102');
  expect(model.open('c1')).toBeUndefined();
  // Read on another device of mine (my own watermark arrives): nothing left to mark.
  model.apply(message('c1', '103', 'bob', 'three', 4), undefined);
  expect(model.open('c1')).toBe('103');
  model.applyReceipts(marks('c1', 'alice', '103', '103'));
  expect(model.open('c1')).toBeUndefined();
});

test('membership changes, leaving, and the server listing keep local unread counts', () => {
  const model = new ChatModel('alice');
  model.apply(created('g', ['bob', 'alice']), undefined);
  model.apply(message('g', 'm1', 'bob', 'hi', 5), undefined);
  model.mergeSummaries([
    { chatId: 'g', name: 'Team', members: ['alice', 'bob', 'carol'], lastMessageAt: 5 },
  ]);
  expect(model.chat('g')).toMatchObject({ name: 'Team', unread: 1, left: false });
  expect(model.title(model.chat('g')!)).toBe('Team');
  expect(model.peerOf('g')).toBeUndefined();
  model.apply(
    {
      t: 'evt',
      seq: ++seq,
      kind: 'chat',
      chatId: 'g',
      change: 'membersRemoved',
      members: ['alice'],
      by: 'bob',
      ts: 6,
    },
    undefined,
  );
  expect(model.chat('g')?.left).toBe(true);
});

test('the saved copy keeps the latest messages of each chat and the watermarks', () => {
  const model = new ChatModel('alice');
  model.apply(created('c1', ['alice', 'bob']), undefined);
  for (let i = 0; i < MESSAGES_PER_CHAT + 20; i++) {
    model.apply(message('c1', `${1000 + i}`, 'alice', `n${i}`, i), undefined);
  }
  model.applyReceipts(marks('c1', 'bob', '1100', '1050'));
  const saved = model.save();
  expect(saved.messages['c1']).toHaveLength(MESSAGES_PER_CHAT);
  expect(saved.messages['c1']?.[0]?.body).toBe('n20');
  expect(saved.marks).toEqual({ c1: { bob: { delivered: '1100', read: '1050' } } });
  expect(JSON.parse(JSON.stringify(saved))).toEqual(saved);
  const reloaded = new ChatModel('alice', saved);
  const ticks = reloaded.messagesOf('c1').map((m) => reloaded.ticks(m));
  expect(ticks[30]).toBe('read'); // 1050
  expect(ticks[31]).toBe('delivered'); // 1051
  expect(ticks[81]).toBe('sent'); // 1101
});

test('a copy saved before watermarks is read: its receipts become watermarks', () => {
  const v1: SavedStateV1 = {
    version: 1,
    lastSeq: 7,
    chats: [
      {
        chatId: 'c1',
        name: null,
        members: ['alice', 'bob'],
        lastMessageAt: 2,
        unread: 0,
        left: false,
      },
    ],
    messages: {
      c1: [
        { chatId: 'c1', messageId: '10', from: 'alice', body: 'a', attachments: [], ts: 1 },
        { chatId: 'c1', messageId: '20', from: 'alice', body: 'b', attachments: [], ts: 2 },
      ],
    },
    receipts: {
      '10': { delivered: ['bob'], read: ['bob'] },
      '20': { delivered: ['bob'], read: [] },
    },
  };
  const model = new ChatModel('alice', v1);
  expect(model.lastSeq).toBe(7);
  expect(model.messagesOf('c1').map((m) => model.ticks(m))).toEqual(['read', 'delivered']);
  expect(model.save().version).toBe(2);
});
