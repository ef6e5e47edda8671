import type { EventFrame } from '@chat/protocol';
import { DeliveredEvents, eventKey } from '../src/delivered-events';

function message(seq: number, messageId: string, chatId = 'c1'): EventFrame {
  return {
    t: 'evt',
    seq,
    kind: 'message',
    chatId,
    messageId,
    from: 'bob',
    body: `body ${messageId}`,
    attachments: [],
    ts: 1000 + seq,
  };
}

describe('DeliveredEvents', () => {
  it('knows an event again by what it is, whatever its seq', () => {
    const delivered = new DeliveredEvents();
    expect(delivered.firstTime(message(4, 'm4'))).toBe(true);
    // After a restore: the same message under another seq, another message under its seq.
    expect(delivered.firstTime(message(2, 'm4'))).toBe(false);
    expect(delivered.firstTime(message(4, 'm9'))).toBe(true);
    // Message ids are per chat.
    expect(delivered.firstTime(message(5, 'm4', 'c2'))).toBe(true);
  });

  it('tells chat changes and receipts apart by their content', () => {
    const created: EventFrame = {
      t: 'evt',
      seq: 1,
      kind: 'chat',
      chatId: 'c1',
      change: 'created',
      members: ['ann', 'bob'],
      by: 'ann',
      ts: 5,
    };
    const added: EventFrame = { ...created, seq: 2, change: 'membersAdded', members: ['cy'] };
    const read: EventFrame = {
      t: 'evt',
      seq: 3,
      kind: 'receipt',
      chatId: 'c1',
      messageId: 'm1',
      user: 'bob',
      status: 'read',
      ts: 6,
    };
    const delivered = new DeliveredEvents();
    for (const evt of [created, added, read]) expect(delivered.firstTime(evt)).toBe(true);
    expect(delivered.firstTime({ ...created, seq: 7 })).toBe(false);
    expect(delivered.firstTime({ ...read, seq: 8 })).toBe(false);
    expect(delivered.firstTime({ ...read, seq: 9, status: 'delivered' })).toBe(true);
    expect(eventKey(created)).not.toBe(eventKey({ ...created, admin: true }));
  });

  it('remembers the most recent events only', () => {
    const delivered = new DeliveredEvents(3);
    for (let i = 1; i <= 4; i++) delivered.firstTime(message(i, `m${i}`));
    expect(delivered.size).toBe(3);
    expect(delivered.firstTime(message(9, 'm4'))).toBe(false);
    expect(delivered.firstTime(message(9, 'm1'))).toBe(true); // forgotten: the oldest went first
    expect(() => new DeliveredEvents(0)).toThrow(RangeError);
  });
});
