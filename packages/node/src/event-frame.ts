/**
 * The `evt` frame of an inbox event, built field by field: whatever else an event object
 * carries (a peer's payload, a future store column) never reaches a device, and its `t` is
 * always `evt`.
 */
import type { EventFrame, InboxEvent } from '@chat/protocol';

export function eventFrame(event: InboxEvent): EventFrame {
  switch (event.kind) {
    case 'message':
      return {
        t: 'evt',
        seq: event.seq,
        kind: 'message',
        chatId: event.chatId,
        messageId: event.messageId,
        from: event.from,
        body: event.body,
        attachments: event.attachments.map((a) => ({ key: a.key, mime: a.mime, size: a.size })),
        ts: event.ts,
      };
    case 'chat':
      return {
        t: 'evt',
        seq: event.seq,
        kind: 'chat',
        chatId: event.chatId,
        change: event.change,
        members: [...event.members],
        by: event.by,
        ...(event.admin === true ? { admin: true as const } : {}),
        ts: event.ts,
      };
    case 'receipt':
      return {
        t: 'evt',
        seq: event.seq,
        kind: 'receipt',
        chatId: event.chatId,
        messageId: event.messageId,
        user: event.user,
        status: event.status,
        ts: event.ts,
      };
  }
}
