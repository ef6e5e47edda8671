/**
 * Where the client keeps sends waiting for their `ok`, so that they survive an app restart: a
 * new client with the same store sends them again, with the same clientMsgId, and the node
 * answers a repeat with the first messageId (`dup: true`) instead of storing it twice.
 */
import type { AttachmentRef } from '@chat/protocol';
import type { OutgoingSend } from './outbox';
import { sendKey } from './outbox';

/** A send as stored: what goes on the wire, without the per-attempt request id. */
export interface PendingSend {
  readonly chatId: string;
  readonly clientMsgId: string;
  readonly body?: string;
  readonly attachments?: readonly AttachmentRef[];
}

/**
 * A persistent outbox. Sends are keyed by (chatId, clientMsgId), as the node dedupes them.
 * `save` is called when the app calls `send()`, `remove` when the node acknowledged the send or
 * refused it for good; `load` once, by the first `connect()`. Calls are made one at a time, in
 * order, so a store need not guard against a `remove` overtaking its `save`. Errors are logged
 * and the send goes on (held in memory only).
 *
 * @example
 * // Browsers: one localStorage entry per send.
 * const prefix = 'chat-outbox:';
 * const store: OutboxStore = {
 *   load: () => Object.keys(localStorage).filter((k) => k.startsWith(prefix))
 *     .map((k) => JSON.parse(localStorage.getItem(k)!)),
 *   save: (s) => localStorage.setItem(prefix + s.chatId + ':' + s.clientMsgId, JSON.stringify(s)),
 *   remove: (chatId, id) => localStorage.removeItem(prefix + chatId + ':' + id),
 * };
 */
export interface OutboxStore {
  /** The sends saved and not removed, oldest first. */
  load(): readonly PendingSend[] | Promise<readonly PendingSend[]>;
  save(send: PendingSend): void | Promise<void>;
  remove(chatId: string, clientMsgId: string): void | Promise<void>;
}

/** The default: pending sends live as long as the process (and the client object) does. */
export class MemoryOutboxStore implements OutboxStore {
  private readonly sends = new Map<string, PendingSend>();

  load(): PendingSend[] {
    return [...this.sends.values()];
  }

  save(send: PendingSend): void {
    this.sends.set(sendKey(send.chatId, send.clientMsgId), send);
  }

  remove(chatId: string, clientMsgId: string): void {
    this.sends.delete(sendKey(chatId, clientMsgId));
  }
}

/** Skips what a store hands back that is not a send (a corrupt file, another app's entry). */
export function isPendingSend(value: unknown): value is PendingSend {
  if (typeof value !== 'object' || value === null) return false;
  const send = value as Partial<Record<keyof PendingSend, unknown>>;
  return typeof send.chatId === 'string' && typeof send.clientMsgId === 'string';
}

/**
 * A send as the store keeps it: its own copy of the fields of a send (or of a send frame, whose
 * type it leaves out), absent optional fields left out too. Spread it into `{ t: 'send' }` for
 * the frame again.
 */
export function pendingOf(send: PendingSend): Omit<OutgoingSend, 't'> {
  const { chatId, clientMsgId, body, attachments } = send;
  return {
    chatId,
    clientMsgId,
    ...(body === undefined ? {} : { body }),
    ...(attachments === undefined ? {} : { attachments: attachments.map((a) => ({ ...a })) }),
  };
}

/**
 * Runs a store's calls one after the other, in the order they were made, and logs failures:
 * a store that fails does not stop sends, it only stops them from being durable.
 */
export class StoreQueue {
  private tail: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly store: OutboxStore,
    private readonly onError: (err: unknown, op: string) => void,
  ) {}

  load(): Promise<readonly PendingSend[]> {
    return this.enqueue('load', () => this.store.load(), []);
  }

  /** Resolves (never rejects) once the store has the send, or failed to keep it. */
  save(send: PendingSend): Promise<void> {
    return this.enqueue('save', () => this.store.save(send), undefined);
  }

  remove(chatId: string, clientMsgId: string): void {
    void this.enqueue('remove', () => this.store.remove(chatId, clientMsgId), undefined);
  }

  private enqueue<T>(op: string, call: () => T | Promise<T>, fallback: T): Promise<T> {
    const result = this.tail.then(call).catch((err: unknown) => {
      this.onError(err, op);
      return fallback;
    });
    this.tail = result;
    return result;
  }
}
