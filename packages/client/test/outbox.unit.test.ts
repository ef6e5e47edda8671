import { ChatError } from '@chat/protocol';
import type { OutgoingSend, SendResult } from '../src/outbox';
import { Outbox, sendErrorAction } from '../src/outbox';

interface Settled {
  result?: SendResult;
  error?: Error;
}

function waiter(into: Settled) {
  return {
    resolve: (r: SendResult) => (into.result = r),
    reject: (e: Error) => (into.error = e),
  };
}

const settings = { baseMs: 100, maxMs: 1000 };

/** A send's identity as the outbox keys it (the body does not count). */
function inChat(chatId: string, clientMsgId: string): OutgoingSend {
  return { t: 'send', chatId, clientMsgId };
}

describe('Outbox', () => {
  it('resends after a lost connection with the same clientMsgId', () => {
    const box = new Outbox(settings, () => 0.5);
    const s: Settled = {};
    box.add({ t: 'send', chatId: 'c', clientMsgId: 'k1', body: 'hi' }, 60_000, 0, waiter(s));
    const [first] = box.due(0);
    expect(first?.clientMsgId).toBe('k1');
    box.markSent(inChat('c', 'k1'), 1);
    expect(box.due(0)).toEqual([]); // in flight
    box.lost(1);
    expect(box.owns(1)).toBe(false);
    const [again] = box.due(0);
    expect(again).toEqual({ t: 'send', chatId: 'c', clientMsgId: 'k1', body: 'hi' });
    box.markSent(inChat('c', 'k1'), 7);
    expect(box.succeeded(1, { messageId: 'x', ts: 1 })).toBe(false); // stale attempt
    expect(box.succeeded(7, { messageId: 'm1', ts: 5, dup: true })).toBe(true);
    expect(s.result).toEqual({ messageId: 'm1', ts: 5, dup: true });
    expect(box.size).toBe(0);
  });

  it('keeps the send order when several are due', () => {
    const box = new Outbox(settings, () => 0);
    for (const k of ['a', 'b', 'c']) {
      box.add({ t: 'send', chatId: 'c', clientMsgId: k, body: k }, 1000, 0, waiter({}));
    }
    expect(box.due(0).map((f) => f.clientMsgId)).toEqual(['a', 'b', 'c']);
  });

  it('retries UNAVAILABLE and timeouts with backoff, then rejects at the deadline', () => {
    const box = new Outbox(settings, () => 0.5);
    const s: Settled = {};
    box.add({ t: 'send', chatId: 'c', clientMsgId: 'k', body: 'x' }, 1000, 0, waiter(s));
    box.markSent(inChat('c', 'k'), 1);
    expect(box.failed(1, new ChatError('UNAVAILABLE', 'db down'), 10)).toBe('retry');
    expect(box.due(10)).toEqual([]);
    expect(box.nextWakeup()).toBe(60); // 10 + 0.5 * 100
    expect(box.due(60).map((f) => f.clientMsgId)).toEqual(['k']);
    box.markSent(inChat('c', 'k'), 2);
    expect(box.timedOut(2, 100)).toBe('retry');
    expect(box.nextWakeup()).toBe(200); // 100 + 0.5 * 200
    expect(s.error).toBeUndefined();
    expect(box.expire(999)).toBe(0);
    expect(box.expire(1000)).toBe(1);
    expect(s.error).toBeInstanceOf(ChatError);
    expect((s.error as ChatError).code).toBe('UNAVAILABLE');
  });

  it('rejects request errors at once', () => {
    for (const code of ['BAD_REQUEST', 'NOT_MEMBER', 'NOT_FOUND', 'TOO_LARGE', 'LIMIT'] as const) {
      const box = new Outbox(settings, () => 0.5);
      const s: Settled = {};
      box.add({ t: 'send', chatId: 'c', clientMsgId: 'k', body: 'x' }, 1000, 0, waiter(s));
      box.markSent(inChat('c', 'k'), 1);
      expect(box.failed(1, new ChatError(code, 'no'), 5)).toBe('reject');
      expect((s.error as ChatError).code).toBe(code);
      expect(box.size).toBe(0);
    }
    expect(sendErrorAction('UNAVAILABLE')).toBe('retry');
    expect(sendErrorAction('RATE_LIMITED')).toBe('retry');
  });

  it('rejects a retryable failure that comes after the deadline', () => {
    const box = new Outbox(settings, () => 0.5);
    const s: Settled = {};
    box.add({ t: 'send', chatId: 'c', clientMsgId: 'k', body: 'x' }, 100, 0, waiter(s));
    box.markSent(inChat('c', 'k'), 1);
    expect(box.failed(1, new ChatError('UNAVAILABLE', 'down'), 150)).toBe('reject');
    expect((s.error as ChatError).message).toBe('down');
  });

  it('lets a second send with the same clientMsgId share the first one’s reply', () => {
    const box = new Outbox(settings, () => 0.5);
    const a: Settled = {};
    const b: Settled = {};
    box.add({ t: 'send', chatId: 'c', clientMsgId: 'k', body: 'x' }, 1000, 0, waiter(a));
    box.add({ t: 'send', chatId: 'c', clientMsgId: 'k', body: 'x' }, 1000, 0, waiter(b));
    expect(box.due(0)).toHaveLength(1);
    box.markSent(inChat('c', 'k'), 3);
    box.succeeded(3, { messageId: 'm', ts: 1 });
    expect(a.result).toEqual({ messageId: 'm', ts: 1 });
    expect(b.result).toEqual({ messageId: 'm', ts: 1 });
  });

  it('keeps the same clientMsgId in two chats as two sends, each with its own reply', () => {
    const box = new Outbox(settings, () => 0.5);
    const toBob: Settled = {};
    const toCarol: Settled = {};
    box.add({ t: 'send', chatId: 'bob', clientMsgId: 'k', body: 'x' }, 1000, 0, waiter(toBob));
    box.add({ t: 'send', chatId: 'carol', clientMsgId: 'k', body: 'y' }, 1000, 0, waiter(toCarol));
    expect(box.due(0).map((f) => f.chatId)).toEqual(['bob', 'carol']);
    expect(box.has('bob', 'k') && box.has('carol', 'k')).toBe(true);
    box.markSent(inChat('bob', 'k'), 1);
    box.markSent(inChat('carol', 'k'), 2);
    box.succeeded(2, { messageId: 'm2', ts: 2 });
    expect(toCarol.result).toEqual({ messageId: 'm2', ts: 2 });
    expect(toBob.result).toBeUndefined();
    box.succeeded(1, { messageId: 'm1', ts: 1 });
    expect(toBob.result).toEqual({ messageId: 'm1', ts: 1 });
    expect(box.size).toBe(0);
  });

  it('rejects everything on rejectAll', () => {
    const box = new Outbox(settings, () => 0.5);
    const s: Settled = {};
    box.add({ t: 'send', chatId: 'c', clientMsgId: 'k', body: 'x' }, 1000, 0, waiter(s));
    box.markSent(inChat('c', 'k'), 1);
    box.rejectAll(new Error('closed'));
    expect(s.error?.message).toBe('closed');
    expect(box.owns(1)).toBe(false);
  });
});
