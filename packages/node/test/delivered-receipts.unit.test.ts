import type { ReceiptNotice } from '@chat/store';
import { DeliveredReceipts } from '../src/delivered-receipts';

const m = (chatId: string, messageId: string, from: string) => ({ chatId, messageId, from });

test('coalesces acked messages into one watermark per chat and reader, told to their senders', () => {
  const pushed: ReceiptNotice[][] = [];
  const receipts = new DeliveredReceipts((n) => pushed.push([...n]));
  receipts.delivered('bob', [
    m('c1', '100', 'alice'),
    m('c1', '102', 'alice'),
    m('c1', '101', 'carol'),
  ]);
  receipts.delivered('bob', [m('c1', '99', 'alice')]); // older: changes nothing
  receipts.delivered('bob', [m('c2', '7', 'bob')]); // his own: no receipt
  receipts.flushLive();
  expect(pushed).toEqual([
    [{ chatId: 'c1', reader: 'bob', delivered: '102', read: null, notify: ['alice', 'carol'] }],
  ]);
  receipts.flushLive();
  expect(pushed).toHaveLength(1); // nothing moved since

  // Numbers, not strings: 1000 is past 999.
  receipts.delivered('bob', [m('c1', '1000', 'alice')]);
  receipts.flushLive();
  expect(pushed[1]).toEqual([
    { chatId: 'c1', reader: 'bob', delivered: '1000', read: null, notify: ['alice'] },
  ]);

  // Written lazily: one mark per (chat, reader) with every sender told since the last write.
  expect(receipts.takeForPersist()).toEqual([
    { chatId: 'c1', reader: 'bob', upto: '1000', notify: ['alice', 'carol'] },
  ]);
  expect(receipts.takeForPersist()).toEqual([]);
});

test('a failed write is given back and merged into the next one', () => {
  const receipts = new DeliveredReceipts(() => undefined);
  receipts.delivered('bob', [m('c1', '5', 'alice')]);
  receipts.flushLive();
  const marks = receipts.takeForPersist();
  receipts.delivered('bob', [m('c1', '6', 'dave')]);
  receipts.restore(marks);
  expect(receipts.takeForPersist()).toEqual([
    { chatId: 'c1', reader: 'bob', upto: '6', notify: ['dave', 'alice'] },
  ]);
});

test('pushes a (chat, reader) watermark at most once per interval, then the latest', () => {
  const pushed: ReceiptNotice[][] = [];
  const receipts = new DeliveredReceipts((n) => pushed.push([...n]), { minIntervalMs: 1000 });
  receipts.delivered('bob', [m('c1', '1', 'alice')]);
  receipts.flushLive(10_000);
  receipts.delivered('bob', [m('c1', '2', 'alice')]);
  receipts.delivered('dan', [m('c1', '2', 'alice')]);
  receipts.flushLive(10_250); // bob's moved again too soon; dan's is new
  expect(pushed.map((n) => n.map((x) => `${x.reader}:${x.delivered}`))).toEqual([
    ['bob:1'],
    ['dan:2'],
  ]);
  receipts.delivered('bob', [m('c1', '3', 'alice')]);
  receipts.flushLive(10_900);
  expect(pushed).toHaveLength(2);
  receipts.flushLive(11_000); // a second after the last: the latest, once
  expect(pushed[2]).toEqual([
    { chatId: 'c1', reader: 'bob', delivered: '3', read: null, notify: ['alice'] },
  ]);
});

test('written slice by slice, by chat: each watermark once, in its chat slice', () => {
  const receipts = new DeliveredReceipts(() => undefined);
  const chats = Array.from({ length: 40 }, (_, i) => `chat-${i}`);
  for (const chat of chats) receipts.delivered('bob', [m(chat, '1', 'alice')]);
  const perSlice = Array.from({ length: 10 }, (_, index) =>
    receipts.takeForPersist({ index, of: 10 }).map((mark) => mark.chatId),
  );
  expect(perSlice.flat().sort()).toEqual([...chats].sort());
  // Spread: no slice takes them all, and most slices take some.
  expect(Math.max(...perSlice.map((s) => s.length))).toBeLessThan(chats.length / 2);
  expect(perSlice.filter((s) => s.length > 0).length).toBeGreaterThanOrEqual(6);
  expect(receipts.takeForPersist()).toEqual([]);
});
