import type { EventFrame } from '@chat/protocol';
import { ChatModel, MESSAGES_PER_CHAT } from '../src/chat/model';

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
  model.confirmSent('c1', 'k1', 'm1', 11);
  expect(model.ticks(mine())).toBe('sent');
  model.apply(receipt('m1', 'bob', 'delivered'), undefined);
  expect(model.ticks(mine())).toBe('sent');
  model.apply(receipt('m1', 'carol', 'delivered'), undefined);
  expect(model.ticks(mine())).toBe('delivered');
  model.apply(receipt('m1', 'bob', 'read'), undefined);
  expect(model.ticks(mine())).toBe('delivered');
  model.apply(receipt('m1', 'carol', 'read'), undefined);
  expect(model.ticks(mine())).toBe('read');
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
  model.apply(message('c1', 'm1', 'bob', 'one', 1), undefined);
  model.apply(message('c1', 'm2', 'bob', 'two', 2), undefined);
  model.addPending('c1', 'k1', 'mine', [], 3);
  expect(model.open('c1')).toBe('m2');
  expect(model.chat('c1')?.unread).toBe(0);
  model.markedRead('m2');
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

test('the saved copy keeps the latest messages of each chat and their receipts only', () => {
  const model = new ChatModel('alice');
  for (let i = 0; i < MESSAGES_PER_CHAT + 20; i++) {
    model.apply(message('c1', `m${i}`, 'alice', `n${i}`, i), undefined);
    model.apply(receipt(`m${i}`, 'bob', 'delivered'), undefined);
  }
  const saved = model.save();
  expect(saved.messages['c1']).toHaveLength(MESSAGES_PER_CHAT);
  expect(saved.messages['c1']?.[0]?.body).toBe('n20');
  expect(Object.keys(saved.receipts)).toHaveLength(MESSAGES_PER_CHAT);
  expect(saved.receipts['m0']).toBeUndefined();
  expect(JSON.parse(JSON.stringify(saved))).toEqual(saved);
});
