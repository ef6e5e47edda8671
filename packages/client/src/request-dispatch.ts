/**
 * Requests and sends on their way to the node. Each goes out on the session that carries them
 * now (`wire`) or waits for one; sends wait in the outbox (and its store) for their `ok`, with
 * retries and a deadline; replies settle them. When a session is lost its sends go out again on
 * the next one, resendable requests wait for it, others reject.
 */
import { ChatError } from '@chat/protocol';
import type {
  ClientFrame,
  ClientRequest,
  ErrFrame,
  ErrorCode,
  OkFields,
  RequestType,
} from '@chat/protocol';
import type { ChatClientEvents } from './client-events';
import { ConnectionError } from './errors';
import type { ResolvedOptions, TimerHandle } from './options';
import type { OutgoingSend, SendResult } from './outbox';
import { Outbox } from './outbox';
import { isPendingSend, pendingOf, StoreQueue } from './outbox-store';
import type { FrameSender, NextId, Reply, Session } from './session';
import type { TypedEvents } from './typed-events';

export type RequestBody<T extends RequestType> = Omit<Extract<ClientRequest, { t: T }>, 'id'>;
export type RequestFields<T extends RequestType> = Omit<RequestBody<T>, 't'>;

interface PendingRequest {
  readonly body: RequestBody<RequestType>;
  readonly resolve: (reply: Reply) => void;
  readonly reject: (err: Error) => void;
  timer: TimerHandle;
  /** Request id of the attempt on the wire. */
  id: number | undefined;
}

/** Requests that are safe to send again after the connection dropped before the reply. */
const RESENDABLE: ReadonlySet<RequestType> = new Set<RequestType>([
  'listChats',
  'read',
  'lastSeen',
  // Blocking, unblocking and setting a value twice end where doing it once does.
  'block',
  'unblock',
  'listBlocked',
  'privacy',
  // A device has one target: registering or removing it twice ends where once does.
  'pushRegister',
  'pushRemove',
  'pushSettings',
  'uploadTarget',
  'downloadUrl',
]);

/** What dispatching asks of the connection lifecycle. */
export interface DispatchHooks {
  /** The session requests and sends go on now, if there is one. */
  wire(): Session | undefined;
  /** The client stopped for good. */
  stopped(): boolean;
}

/**
 * @example
 * const dispatch = new RequestDispatch(opts, events, sendOn, nextId, hooks);
 * const { chats } = await dispatch.request('listChats', {});
 */
export class RequestDispatch {
  private readonly requests = new Map<number, PendingRequest>();
  private waiting: PendingRequest[] = [];
  private readonly outbox: Outbox;
  private readonly outboxStore: StoreQueue;
  private readonly sendTimers = new Map<number, TimerHandle>();
  private outboxTimer: TimerHandle | undefined;

  constructor(
    private readonly opts: ResolvedOptions,
    private readonly events: TypedEvents<ChatClientEvents>,
    private readonly sendOn: FrameSender,
    private readonly nextId: NextId,
    private readonly hooks: DispatchHooks,
  ) {
    this.outboxStore = new StoreQueue(opts.outboxStore, (err, op) =>
      opts.logger.warn({ err, op }, 'outbox store failed; the send is kept in memory only'),
    );
    this.outbox = new Outbox(
      { baseMs: opts.backoffBaseMs, maxMs: opts.backoffMaxMs },
      opts.random,
      (frame) => this.outboxStore.remove(frame.chatId, frame.clientMsgId),
    );
  }

  /** A request and its reply's fields; waits for a connection, up to `requestTimeoutMs`. */
  request<T extends RequestType>(t: T, fields: RequestFields<T>): Promise<OkFields[T]> {
    if (this.hooks.stopped()) return Promise.reject(new ConnectionError('client is closed'));
    const body = { ...fields, t } as unknown as RequestBody<RequestType>;
    return new Promise<OkFields[T]>((resolve, reject) => {
      const pending: PendingRequest = {
        body,
        resolve: resolve as (reply: Reply) => void,
        reject,
        id: undefined,
        timer: this.opts.clock.setTimeout(() => {
          this.forgetRequest(pending);
          reject(new ChatError('UNAVAILABLE', `${body.t} timed out`));
        }, this.opts.requestTimeoutMs),
      };
      this.dispatch(pending);
    });
  }

  /** A frame with no reply, on the session there is now; dropped while there is none. */
  notify(frame: ClientFrame): void {
    this.sendOn(this.hooks.wire(), frame);
  }

  /** Queues a send in the outbox; it goes on the wire once stored. */
  send(frame: OutgoingSend): Promise<SendResult> {
    const now = this.opts.clock.now();
    const result = new Promise<SendResult>((resolve, reject) => {
      this.outbox.add(frame, now + this.opts.sendDeadlineMs, now, { resolve, reject });
    });
    // On the wire only once stored: a send that reached the node is one the next run knows.
    void this.outboxStore.save(pendingOf(frame)).then(() => this.pumpOutbox());
    return result;
  }

  /** Queues the sends a previous run left in the outbox store, ahead of new ones. */
  async restore(): Promise<void> {
    const saved = await this.outboxStore.load();
    if (this.hooks.stopped() || saved.length === 0) return;
    const now = this.opts.clock.now();
    const frames = saved
      .filter(isPendingSend)
      .map((send): OutgoingSend => ({ t: 'send', ...pendingOf(send) }));
    this.opts.logger.info({ sends: frames.length }, 'resending sends left by an earlier run');
    this.outbox.restore(frames, now + this.opts.sendDeadlineMs, now, (frame) => {
      const send = pendingOf(frame);
      return {
        resolve: (result) => this.events.emit('restoredSend', { send, result }),
        reject: (error) => this.events.emit('restoredSend', { send, error }),
      };
    });
    this.pumpOutbox();
  }

  /** The reply (`ok` fields or `err`) to request or send `id`. */
  settle(id: number, reply: Reply | undefined, err: ErrFrame | undefined): void {
    const now = this.opts.clock.now();
    if (this.outbox.owns(id)) {
      this.clearSendTimer(id);
      if (reply !== undefined) {
        this.outbox.succeeded(id, reply as unknown as SendResult);
      } else if (err !== undefined) {
        this.outbox.failed(id, toChatError(err), now);
      }
      this.pumpOutbox();
      return;
    }
    const pending = this.requests.get(id);
    if (pending === undefined) return;
    this.requests.delete(id);
    this.opts.clock.clearTimeout(pending.timer);
    if (err !== undefined) pending.reject(toChatError(err));
    else pending.resolve(reply as Reply);
  }

  /**
   * The session is gone before the replies to what it carried: sends go out again on the next
   * one, resendable requests wait for it, others reject.
   */
  release(session: Session): void {
    for (const id of session.inFlight) {
      this.clearSendTimer(id);
      if (this.outbox.owns(id)) {
        this.outbox.lost(id);
        continue;
      }
      const pending = this.requests.get(id);
      if (pending === undefined) continue;
      this.requests.delete(id);
      pending.id = undefined;
      if (RESENDABLE.has(pending.body.t)) {
        this.waiting.push(pending);
      } else {
        this.opts.clock.clearTimeout(pending.timer);
        pending.reject(
          new ChatError('UNAVAILABLE', `connection lost before the reply to ${pending.body.t}`),
        );
      }
    }
    session.inFlight.clear();
  }

  /** Requests that wait for a connection, and the outbox, go out on the wire there is. */
  redispatch(): void {
    const waiting = this.waiting;
    this.waiting = [];
    for (const pending of waiting) this.dispatch(pending);
    this.pumpOutbox();
  }

  /** The client stopped for good: what waits rejects with `err` (the store keeps the sends). */
  stop(err: Error): void {
    if (this.outboxTimer !== undefined) this.opts.clock.clearTimeout(this.outboxTimer);
    this.outboxTimer = undefined;
    for (const pending of this.waiting) {
      this.opts.clock.clearTimeout(pending.timer);
      pending.reject(err);
    }
    this.waiting = [];
    this.outbox.rejectAll(err);
  }

  /** Puts a request on the wire, or keeps it for the next connection when there is none. */
  private dispatch(pending: PendingRequest): void {
    const session = this.hooks.wire();
    if (session === undefined) {
      this.waiting.push(pending);
      return;
    }
    const id = this.nextId();
    pending.id = id;
    this.requests.set(id, pending);
    session.inFlight.add(id);
    this.sendOn(session, { ...pending.body, id } as ClientFrame);
  }

  private forgetRequest(pending: PendingRequest): void {
    if (pending.id !== undefined) this.requests.delete(pending.id);
    this.waiting = this.waiting.filter((p) => p !== pending);
  }

  private clearSendTimer(id: number): void {
    const timer = this.sendTimers.get(id);
    if (timer !== undefined) this.opts.clock.clearTimeout(timer);
    this.sendTimers.delete(id);
  }

  private pumpOutbox(): void {
    if (this.hooks.stopped()) return;
    const { clock } = this.opts;
    if (this.outboxTimer !== undefined) clock.clearTimeout(this.outboxTimer);
    this.outboxTimer = undefined;
    this.outbox.expire(clock.now());
    const session = this.hooks.wire();
    if (session !== undefined) {
      for (const frame of this.outbox.due(clock.now())) {
        const id = this.nextId();
        this.outbox.markSent(frame, id);
        session.inFlight.add(id);
        this.sendOn(session, { ...frame, id });
        this.sendTimers.set(
          id,
          clock.setTimeout(() => {
            this.sendTimers.delete(id);
            this.outbox.timedOut(id, clock.now());
            this.pumpOutbox();
          }, this.opts.requestTimeoutMs),
        );
      }
    }
    const wake = this.outbox.nextWakeup();
    if (wake !== undefined) {
      this.outboxTimer = clock.setTimeout(
        () => {
          this.outboxTimer = undefined;
          this.pumpOutbox();
        },
        Math.max(0, wake - clock.now()),
      );
    }
  }
}

function toChatError(err: ErrFrame): ChatError {
  return new ChatError(err.code as ErrorCode, err.message ?? err.code);
}
