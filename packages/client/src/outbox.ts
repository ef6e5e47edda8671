/**
 * Sends waiting for their `ok`. Delivery to the node is at-least-once: every (re)send of an
 * entry carries the same clientMsgId, and the node answers a repeat with the first messageId.
 * Entries are keyed by (chat, clientMsgId), as the node dedupes: the same clientMsgId in
 * another chat is another message. Pure bookkeeping: times are passed in, the caller owns
 * sockets and timers.
 */
import { ChatError } from '@chat/protocol';
import type { ErrorCode, SendRequest } from '@chat/protocol';
import type { BackoffSettings, RandomSource } from './backoff';
import { backoffDelay } from './backoff';

export interface SendResult {
  readonly messageId: string;
  readonly ts: number;
  /** True when the node had already stored a send with this clientMsgId. */
  readonly dup?: boolean;
}

/** A send request without its per-attempt request id. */
export type OutgoingSend = Omit<SendRequest, 'id'>;

/** The node's idempotency key of a send, less the sender (one outbox is one sender's). */
export function sendKey(chatId: string, clientMsgId: string): string {
  return `${chatId}\u0000${clientMsgId}`;
}

function keyOf(frame: OutgoingSend): string {
  return sendKey(frame.chatId, frame.clientMsgId);
}

/** What to do with a send after an `err` reply. */
export type SendErrorAction = 'retry' | 'reject';

const RETRIED: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'UNAVAILABLE',
  'RATE_LIMITED',
  'INTERNAL',
]);

/**
 * Transient failures are retried with the same clientMsgId (safe: the node dedupes); errors
 * about the request itself (BAD_REQUEST, NOT_MEMBER, NOT_FOUND, TOO_LARGE, LIMIT,
 * UNAUTHORIZED) would fail again, so they reject at once.
 */
export function sendErrorAction(code: ErrorCode): SendErrorAction {
  return RETRIED.has(code) ? 'retry' : 'reject';
}

export interface Waiter {
  resolve(result: SendResult): void;
  reject(err: Error): void;
}

interface Entry {
  readonly frame: OutgoingSend;
  readonly deadline: number;
  readonly waiters: Waiter[];
  failures: number;
  notBefore: number;
  /** Request id of the attempt on the wire, if any. */
  inFlight: number | undefined;
}

/**
 * @example
 * outbox.add({ t: 'send', chatId, clientMsgId, body }, now + 60_000, now, { resolve, reject });
 * for (const frame of outbox.due(now)) outbox.markSent(frame, sendWithNewId(frame));
 */
export class Outbox {
  private readonly entries = new Map<string, Entry>();
  private readonly byRequest = new Map<number, string>();

  /**
   * @param onDone called when a send is over for good (acknowledged, refused or past its
   * deadline), not when `rejectAll` gives it up: a persistent outbox forgets it then.
   */
  constructor(
    private readonly backoff: BackoffSettings,
    private readonly random: RandomSource,
    private readonly onDone: (frame: OutgoingSend) => void = () => undefined,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  /** Whether a send with this clientMsgId to this chat is waiting for its `ok`. */
  has(chatId: string, clientMsgId: string): boolean {
    return this.entries.has(sendKey(chatId, clientMsgId));
  }

  /**
   * Queues a send. A second call with a clientMsgId already queued for the same chat waits for
   * the same `ok`; in another chat it is a send of its own.
   */
  add(frame: OutgoingSend, deadline: number, now: number, waiter: Waiter): void {
    const existing = this.entries.get(keyOf(frame));
    if (existing !== undefined) {
      existing.waiters.push(waiter);
      return;
    }
    this.entries.set(keyOf(frame), {
      frame,
      deadline,
      waiters: [waiter],
      failures: 0,
      notBefore: now,
      inFlight: undefined,
    });
  }

  /**
   * Sends an earlier run left pending (a persistent outbox): queued ahead of those added since,
   * as they were sent first. One already queued again (same chat and clientMsgId) keeps its
   * place and gets the waiter too.
   */
  restore(
    frames: readonly OutgoingSend[],
    deadline: number,
    now: number,
    waiterOf: (frame: OutgoingSend) => Waiter,
  ): void {
    const later = [...this.entries];
    this.entries.clear();
    for (const frame of frames) {
      const key = keyOf(frame);
      const queued = later.find(([k]) => k === key)?.[1];
      if (queued !== undefined) queued.waiters.push(waiterOf(frame));
      else if (!this.entries.has(key)) {
        this.entries.set(key, {
          frame,
          deadline,
          waiters: [waiterOf(frame)],
          failures: 0,
          notBefore: now,
          inFlight: undefined,
        });
      }
    }
    for (const [key, entry] of later) this.entries.set(key, entry);
  }

  /** Sends to put on the wire now, oldest first: not in flight and past their retry delay. */
  due(now: number): OutgoingSend[] {
    const out: OutgoingSend[] = [];
    for (const entry of this.entries.values()) {
      if (entry.inFlight === undefined && entry.notBefore <= now) out.push(entry.frame);
    }
    return out;
  }

  markSent(frame: OutgoingSend, requestId: number): void {
    const key = keyOf(frame);
    const entry = this.entries.get(key);
    if (entry === undefined) return;
    if (entry.inFlight !== undefined) this.byRequest.delete(entry.inFlight);
    entry.inFlight = requestId;
    this.byRequest.set(requestId, key);
  }

  /** Whether a request id belongs to a send attempt of this outbox. */
  owns(requestId: number): boolean {
    return this.byRequest.has(requestId);
  }

  /** The `ok` of an attempt: resolves everyone waiting on that send. */
  succeeded(requestId: number, result: SendResult): boolean {
    const entry = this.takeByRequest(requestId);
    if (entry === undefined) return false;
    this.entries.delete(keyOf(entry.frame));
    this.onDone(entry.frame);
    const settled: SendResult =
      result.dup === undefined
        ? { messageId: result.messageId, ts: result.ts }
        : { messageId: result.messageId, ts: result.ts, dup: result.dup };
    for (const w of entry.waiters) w.resolve(settled);
    return true;
  }

  /**
   * The `err` of an attempt: schedules a retry with backoff, or rejects when the error is final
   * or the deadline has passed. Returns what happened, or undefined for an unknown request.
   */
  failed(requestId: number, err: ChatError, now: number): SendErrorAction | undefined {
    const entry = this.takeByRequest(requestId);
    if (entry === undefined) return undefined;
    if (sendErrorAction(err.code) === 'reject') {
      this.settleWithError(entry, err);
      return 'reject';
    }
    return this.scheduleRetry(entry, err, now);
  }

  /** No reply in time: the attempt is abandoned and retried like an UNAVAILABLE. */
  timedOut(requestId: number, now: number): SendErrorAction | undefined {
    const entry = this.takeByRequest(requestId);
    if (entry === undefined) return undefined;
    const err = new ChatError('UNAVAILABLE', 'send timed out', {
      clientMsgId: entry.frame.clientMsgId,
    });
    return this.scheduleRetry(entry, err, now);
  }

  /**
   * The connection that carried this attempt dropped before its reply: the send goes out
   * again, as it is, on the next connection (the node dedupes it by clientMsgId).
   */
  lost(requestId: number): void {
    this.takeByRequest(requestId);
  }

  /** Rejects every send whose deadline has passed; returns how many. */
  expire(now: number): number {
    let n = 0;
    for (const entry of [...this.entries.values()]) {
      if (entry.deadline <= now) {
        this.settleWithError(
          entry,
          new ChatError('UNAVAILABLE', 'send deadline exceeded', {
            clientMsgId: entry.frame.clientMsgId,
          }),
        );
        n += 1;
      }
    }
    return n;
  }

  /** Earliest time something needs attention (a retry becoming due or a deadline). */
  nextWakeup(): number | undefined {
    let t: number | undefined;
    for (const entry of this.entries.values()) {
      const due =
        entry.inFlight === undefined ? Math.min(entry.notBefore, entry.deadline) : entry.deadline;
      if (t === undefined || due < t) t = due;
    }
    return t;
  }

  /** Rejects every send, which stays in a persistent outbox (the client is closing). */
  rejectAll(err: Error): void {
    for (const entry of [...this.entries.values()]) this.settleWithError(entry, err, false);
  }

  private scheduleRetry(entry: Entry, err: ChatError, now: number): SendErrorAction {
    if (now >= entry.deadline) {
      this.settleWithError(entry, err);
      return 'reject';
    }
    entry.notBefore = now + backoffDelay(entry.failures, this.backoff, this.random);
    entry.failures += 1;
    return 'retry';
  }

  private takeByRequest(requestId: number): Entry | undefined {
    const key = this.byRequest.get(requestId);
    if (key === undefined) return undefined;
    this.byRequest.delete(requestId);
    const entry = this.entries.get(key);
    if (entry !== undefined) entry.inFlight = undefined;
    return entry;
  }

  private settleWithError(entry: Entry, err: Error, done = true): void {
    this.entries.delete(keyOf(entry.frame));
    if (done) this.onDone(entry.frame);
    if (entry.inFlight !== undefined) this.byRequest.delete(entry.inFlight);
    for (const w of entry.waiters) w.reject(err);
  }
}
