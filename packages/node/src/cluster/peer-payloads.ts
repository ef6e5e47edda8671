/**
 * Validation of what peers send in RPC requests. A peer passed the cluster handshake, but its
 * payloads still reach devices and the node's state: each is rebuilt here from the fields it
 * should have, with their types checked, so that nothing else (a `t` that would retype a
 * frame, a non-string id, an object where a number belongs) gets through. Pure.
 */
import type { AttachmentRef, InboxEvent } from '@chat/protocol';
import { ChatError, isValidId } from '@chat/protocol';
import type { Handler, PeerInfo } from '@chat/rpc';
import type { Delivery, ReceiptNotice } from '@chat/store';
import type { TypingItem } from '../presence';
import type { Logger } from 'pino';
import type { DeliverRequest } from './rpc-methods';

/** Chat and message ids are opaque to the node: as clients may send them (validate.ts). */
const MAX_OPAQUE_ID_CHARS = 64;
const CHAT_CHANGES: ReadonlySet<string> = new Set(['created', 'membersAdded', 'membersRemoved']);
const RECEIPT_STATUSES: ReadonlySet<string> = new Set(['delivered', 'read']);

type Fields = Record<string, unknown>;

function bad(what: string): ChatError {
  return new ChatError('BAD_REQUEST', `invalid ${what} from peer`);
}

function record(v: unknown, what: string): Fields {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw bad(what);
  return v as Fields;
}

function list(v: unknown, what: string): unknown[] {
  if (!Array.isArray(v)) throw bad(what);
  return v;
}

function id(v: unknown, what: string): string {
  if (!isValidId(v)) throw bad(what);
  return v;
}

function ids(v: unknown, what: string): string[] {
  return list(v, what).map((x) => id(x, what));
}

function opaqueId(v: unknown, what: string): string {
  if (typeof v !== 'string' || v.length === 0 || v.length > MAX_OPAQUE_ID_CHARS || v.includes('\0'))
    throw bad(what);
  return v;
}

function optionalOpaqueId(v: unknown, what: string): string | null {
  return v === null ? null : opaqueId(v, what);
}

function count(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw bad(what);
  return v;
}

function text(v: unknown, what: string): string {
  if (typeof v !== 'string') throw bad(what);
  return v;
}

function attachment(v: unknown): AttachmentRef {
  const a = record(v, 'attachment');
  return {
    key: text(a['key'], 'attachment key'),
    mime: text(a['mime'], 'attachment mime'),
    size: count(a['size'], 'attachment size'),
  };
}

/** An inbox event with exactly the fields of its kind. */
export function inboxEventFromPeer(v: unknown): InboxEvent {
  const e = record(v, 'event');
  const seq = count(e['seq'], 'event seq');
  const ts = count(e['ts'], 'event ts');
  const chatId = opaqueId(e['chatId'], 'event chatId');
  switch (e['kind']) {
    case 'message': {
      const body = e['body'];
      return {
        seq,
        kind: 'message',
        chatId,
        messageId: opaqueId(e['messageId'], 'event messageId'),
        from: id(e['from'], 'event from'),
        body: body === null ? null : text(body, 'event body'),
        attachments: list(e['attachments'], 'event attachments').map(attachment),
        ts,
      };
    }
    case 'chat': {
      const change = e['change'];
      if (typeof change !== 'string' || !CHAT_CHANGES.has(change)) throw bad('chat change');
      return {
        seq,
        kind: 'chat',
        chatId,
        change: change as 'created' | 'membersAdded' | 'membersRemoved',
        members: ids(e['members'], 'chat members'),
        by: id(e['by'], 'chat change by'),
        ...(e['admin'] === true ? { admin: true as const } : {}),
        ts,
      };
    }
    case 'receipt': {
      const status = e['status'];
      if (typeof status !== 'string' || !RECEIPT_STATUSES.has(status)) throw bad('receipt status');
      return {
        seq,
        kind: 'receipt',
        chatId,
        messageId: opaqueId(e['messageId'], 'receipt messageId'),
        user: id(e['user'], 'receipt user'),
        status: status as 'delivered' | 'read',
        ts,
      };
    }
    default:
      throw bad('event kind');
  }
}

export function deliverRequestFromPeer(v: unknown): DeliverRequest {
  const deliveries = list(record(v, 'deliver request')['deliveries'], 'deliveries').map(
    (item): Delivery => {
      const d = record(item, 'delivery');
      return { userId: id(d['userId'], 'delivery userId'), event: inboxEventFromPeer(d['event']) };
    },
  );
  return { deliveries };
}

export function receiptNoticesFromPeer(v: unknown): { notices: ReceiptNotice[] } {
  const notices = list(record(v, 'receipts request')['notices'], 'notices').map(
    (item): ReceiptNotice => {
      const n = record(item, 'receipt notice');
      return {
        chatId: opaqueId(n['chatId'], 'notice chatId'),
        reader: id(n['reader'], 'notice reader'),
        delivered: optionalOpaqueId(n['delivered'], 'notice delivered'),
        read: optionalOpaqueId(n['read'], 'notice read'),
        notify: ids(n['notify'], 'notice notify'),
      };
    },
  );
  return { notices };
}

export function presenceRequestFromPeer(v: unknown): { users: string[] } {
  return { users: ids(record(v, 'presence request')['users'], 'presence users') };
}

export function typingRequestFromPeer(v: unknown): { items: TypingItem[] } {
  const items = list(record(v, 'typing request')['items'], 'typing items').map(
    (item): TypingItem => {
      const t = record(item, 'typing item');
      return {
        chatId: opaqueId(t['chatId'], 'typing chatId'),
        user: id(t['user'], 'typing user'),
        to: ids(t['to'], 'typing recipients'),
      };
    },
  );
  return { items };
}

/**
 * Wraps an RPC handler so that it only ever sees a payload rebuilt by `parse`; a payload that
 * does not parse is answered BAD_REQUEST and logged with the peer that sent it.
 *
 * @example
 * server.handle(Deliver, fromPeer(deliverRequestFromPeer, (req) => push(req.deliveries)));
 */
export function validatedFromPeer(log: Logger) {
  return <Req, Res>(
      parse: (payload: unknown) => Req,
      handler: (req: Req) => Res,
    ): Handler<Req, Res> =>
    (payload: unknown, peer: PeerInfo): Res => {
      let req: Req;
      try {
        req = parse(payload);
      } catch (err) {
        log.warn({ peer: peer.nodeId, reason: (err as Error).message }, 'refused a peer request');
        throw err;
      }
      return handler(req);
    };
}
