import { CloseCode, jsonCodec } from '@chat/protocol';
import type { WireData } from '@chat/protocol';
import { PendingPushes } from '../src/pending-pushes';
import type { SessionPolicy, SocketPort } from '../src/session';
import { Session } from '../src/session';
import { SessionRegistry } from '../src/sessions';
import { TokenBucket } from '../src/token-bucket';

class FakeSocket implements SocketPort {
  sent: WireData[] = [];
  buffered = 0;
  ended: { code: number; reason: string } | undefined;
  send(data: WireData): void {
    if (this.ended) throw new Error('send after end');
    this.sent.push(data);
  }
  bufferedAmount(): number {
    return this.buffered;
  }
  end(code: number, reason: string): void {
    this.ended = { code, reason };
  }
  frames(): Array<Record<string, unknown>> {
    return this.sent.map((d) => JSON.parse(d as string) as Record<string, unknown>);
  }
}

const policy: SessionPolicy = {
  heartbeatMs: 1000,
  heartbeatTimeoutMs: 500,
  ackTimeoutMs: 300,
  maxPushTries: 3,
  ratePerSec: 10,
  rateBurst: 5,
  rateStrikes: 3,
  maxBufferedBytes: 1000,
  maxPendingPushes: 4,
};

/** One sweep of the node: timeouts, then a ping with `latestSeq` if one is due. */
function beat(session: Session, now: number, latestSeq: number): void {
  if (session.tick(now)) {
    session.startPing(now);
    session.ping(latestSeq);
  }
}

function readySession(
  socket = new FakeSocket(),
  now = 0,
): { session: Session; socket: FakeSocket } {
  const session = new Session('alice', 'd1', jsonCodec, socket, policy, now);
  session.ready = true;
  return { session, socket };
}

describe('TokenBucket', () => {
  it('allows a burst, then refills at the rate', () => {
    const bucket = new TokenBucket(10, 5, 0);
    for (let i = 0; i < 5; i++) expect(bucket.take(0)).toBe(true);
    expect(bucket.take(0)).toBe(false);
    expect(bucket.waitMs(0)).toBe(100);
    expect(bucket.take(100)).toBe(true);
    expect(bucket.take(100)).toBe(false);
    expect(bucket.take(10_000)).toBe(true);
  });
});

describe('PendingPushes', () => {
  it('keeps seq order, ignores duplicates and acks cumulatively', () => {
    const p = new PendingPushes();
    p.add(3, 'c', 0);
    p.add(1, 'a', 0);
    p.add(2, 'b', 0);
    p.add(2, 'b', 0);
    expect(p.size).toBe(3);
    p.ackUpTo(2);
    expect(p.size).toBe(1);
    expect(p.retryAll(5).map((i) => i.seq)).toEqual([3]);
    expect(p.maxTries()).toBe(2);
  });

  it('is overdue only after the timeout', () => {
    const p = new PendingPushes();
    p.add(1, 'a', 100);
    expect(p.isOverdue(399, 300)).toBe(false);
    expect(p.isOverdue(400, 300)).toBe(true);
  });
});

describe('Session', () => {
  it('pings at the heartbeat interval and closes with 4002 when no pong comes', () => {
    const { session, socket } = readySession();
    beat(session, 999, 7);
    expect(socket.sent).toHaveLength(0);
    beat(session, 1000, 7);
    expect(socket.frames()).toEqual([{ t: 'ping', seq: 7 }]);
    beat(session, 1499, 7);
    expect(socket.ended).toBeUndefined();
    beat(session, 1500, 7);
    expect(socket.ended?.code).toBe(CloseCode.TIMEOUT);
  });

  it('stays open while pongs come back', () => {
    const { session, socket } = readySession();
    for (let t = 1000; t <= 10_000; t += 250) {
      beat(session, t, 1);
      session.onPong();
    }
    expect(socket.ended).toBeUndefined();
    expect(socket.frames().filter((f) => f.t === 'ping').length).toBeGreaterThanOrEqual(9);
  });

  it('pushes unacked events again after the ack timeout, then closes with 4002', () => {
    const { session, socket } = readySession();
    session.push(1, '{"t":"evt","seq":1}', 0);
    beat(session, 299, 1);
    expect(socket.sent).toHaveLength(1);
    beat(session, 300, 1);
    expect(socket.sent).toHaveLength(2);
    beat(session, 600, 1);
    expect(socket.sent).toHaveLength(3);
    expect(socket.ended).toBeUndefined();
    beat(session, 900, 1);
    expect(socket.ended?.code).toBe(CloseCode.TIMEOUT);
  });

  it('stops re-pushing once acked', () => {
    const { session, socket } = readySession();
    session.push(1, 'a', 0);
    session.push(2, 'b', 0);
    session.onAck(2);
    beat(session, 999, 2);
    expect(socket.sent).toEqual(['a', 'b']);
    expect(socket.ended).toBeUndefined();
  });

  it('stops pushing past the buffer bound and resumes with a ping when drained', () => {
    const { session, socket } = readySession();
    socket.buffered = 2000;
    session.push(1, 'a', 0);
    expect(socket.sent).toHaveLength(0);
    socket.buffered = 0;
    session.push(2, 'b', 0);
    expect(socket.sent).toHaveLength(0); // still lagging until a drain is seen
    expect(session.onDrain()).toBe(true);
    session.push(3, 'c', 0);
    expect(socket.sent).toEqual(['c']);
  });

  it('pauses pushes when too many are unacked, and resumes on ack', () => {
    const { session, socket } = readySession();
    for (let seq = 1; seq <= 6; seq++) session.push(seq, `e${seq}`, 0);
    expect(socket.sent).toEqual(['e1', 'e2', 'e3', 'e4']);
    expect(session.onAck(4).resumed).toBe(true);
    session.push(7, 'e7', 0);
    expect(socket.sent).toEqual(['e1', 'e2', 'e3', 'e4', 'e7']);
  });

  it('reports the messages from others an ack covers, pushed or synced', () => {
    const { session } = readySession();
    const m = (n: number): { chatId: string; messageId: string; from: string } => ({
      chatId: 'c',
      messageId: String(n),
      from: 'bob',
    });
    session.push(1, 'a', 0, m(1));
    session.push(2, 'b', 0); // not a message from someone else
    session.noteSynced(3, m(3));
    session.push(4, 'd', 0, m(4));
    expect(session.onAck(3).delivered.map((d) => d.messageId)).toEqual(['1', '3']);
    expect(session.onAck(3).delivered).toEqual([]);
    expect(session.onAck(9).delivered.map((d) => d.messageId)).toEqual(['4']);
  });

  it('refuses frames over the rate and asks to close after repeated strikes', () => {
    const { session } = readySession();
    const results = Array.from({ length: 9 }, () => session.admit(0));
    expect(results).toEqual(['ok', 'ok', 'ok', 'ok', 'ok', 'refuse', 'refuse', 'refuse', 'close']);
    expect(session.admit(1000)).toBe('ok');
  });

  it('never touches the socket after close', () => {
    const { session, socket } = readySession();
    session.close(CloseCode.GOING_AWAY, 'bye');
    session.push(1, 'a', 0);
    session.send({ t: 'ping', seq: 1 });
    beat(session, 10_000, 1);
    expect(socket.sent).toHaveLength(0);
  });
});

describe('Session.send typing', () => {
  it('sends server frames and takes nothing else (tsc checks the @ts-expect-error lines)', () => {
    const { session, socket } = readySession();
    session.send({ t: 'typing', chatId: 'c1', user: 'bob' });
    session.send({ t: 'err', code: 'LIMIT', message: 'too many' });
    // Never run: each line must be a type error, or tsc reports an unused directive.
    const misspelt = (): void => {
      // @ts-expect-error a frame type the protocol does not have
      session.send({ t: 'welcom', user: 'alice' });
      // @ts-expect-error an error code the protocol does not have
      session.send({ t: 'err', code: 'LIMITED', message: 'too many' });
      // @ts-expect-error a field of another frame
      session.send({ t: 'ping', seq: 1, chatId: 'c1' });
    };
    void misspelt;
    expect(socket.frames()).toEqual([
      { t: 'typing', chatId: 'c1', user: 'bob' },
      { t: 'err', code: 'LIMIT', message: 'too many' },
    ]);
  });
});

describe('SessionRegistry', () => {
  const make = (device: string): { session: Session; socket: FakeSocket } => {
    const socket = new FakeSocket();
    return { session: new Session('bob', device, jsonCodec, socket, policy, 0), socket };
  };

  it('replaces a second connection of the same device with 4008', () => {
    const reg = new SessionRegistry(3);
    const first = make('d1');
    const second = make('d1');
    expect(reg.add(first.session).ok).toBe(true);
    expect(reg.add(second.session)).toEqual({ ok: true, replaced: first.session });
    expect(first.socket.ended?.code).toBe(CloseCode.REPLACED);
    reg.remove(first.session); // the old socket's close must not unregister the new one
    expect([...reg.devicesOf('bob')]).toEqual([second.session]);
    expect(reg.connectionCount).toBe(1);
  });

  it('refuses a device beyond the limit', () => {
    const reg = new SessionRegistry(3);
    for (const d of ['a', 'b', 'c']) expect(reg.add(make(d).session).ok).toBe(true);
    expect(reg.add(make('d').session)).toEqual({ ok: false, reason: 'LIMIT' });
    expect(reg.connectionCount).toBe(3);
  });

  it('tracks the latest seq only upwards and forgets users with no devices', () => {
    const reg = new SessionRegistry(3);
    const a = make('a');
    reg.add(a.session);
    reg.noteSeq('bob', 5);
    reg.noteSeq('bob', 3);
    expect(reg.latestSeq('bob')).toBe(5);
    reg.remove(a.session);
    expect(reg.isOnline('bob')).toBe(false);
    expect(reg.latestSeq('bob')).toBe(0);
  });
});

describe('token expiry', () => {
  it('closes the session with 4003 once expiresAt passes, ready or not', () => {
    for (const ready of [true, false]) {
      const socket = new FakeSocket();
      const session = new Session('alice', 'd1', jsonCodec, socket, policy, 0, new Set(), 2000);
      session.ready = ready;
      session.tick(1999);
      expect(socket.ended).toBeUndefined();
      session.tick(2000);
      expect(socket.ended).toEqual({ code: CloseCode.UNAUTHORIZED, reason: 'token expired' });
      expect(session.isClosed).toBe(true);
    }
  });

  it('never expires without an expiry', () => {
    const { session, socket } = readySession();
    session.onPong();
    session.tick(Number.MAX_SAFE_INTEGER);
    expect(socket.ended?.code).not.toBe(CloseCode.UNAUTHORIZED);
  });
});
