/**
 * The inbox events of a stored message or chat change, one per recipient, as the user step
 * takes them. Used by the node that stored it and by a sweeper finishing a dead node's work,
 * so both append exactly the same events.
 */
import type { AttachmentRef, ChatEvent } from '@chat/protocol';
import type { FanoutEvent } from './user-step';

export interface StoredMessage {
  readonly chatId: string;
  readonly messageId: string;
  readonly senderId: string;
  readonly body: string | null;
  readonly attachments: readonly AttachmentRef[];
  readonly ts: number;
}

/**
 * One event per recipient other than the sender, plus the sender's own copy for their other
 * devices: appended only if the sender has a device other than `senderDevice` (the sending
 * device has the message from its `ok`). Without a device (a sweeper does not know it), the
 * copy is appended whenever the sender has any device.
 */
export function messageEvents(
  message: StoredMessage,
  recipients: readonly string[],
  senderDevice: string | undefined,
  origin: string | null,
): FanoutEvent[] {
  const event = {
    seq: 0,
    kind: 'message' as const,
    chatId: message.chatId,
    messageId: message.messageId,
    from: message.senderId,
    body: message.body,
    attachments: [...message.attachments],
    ts: message.ts,
  };
  const events: FanoutEvent[] = [];
  for (const userId of recipients) {
    if (userId === message.senderId) continue;
    events.push({ userId, event, messageId: message.messageId, origin });
  }
  events.push({
    userId: message.senderId,
    event,
    messageId: message.messageId,
    origin,
    unlessOnlyDevice: senderDevice ?? '',
  });
  return events;
}

export interface StoredChatChange {
  readonly chatId: string;
  /** messages.id of the change within the chat. */
  readonly messageId: string;
  readonly change: ChatEvent['change'];
  /** The members the change is about (all of them for `created`). */
  readonly members: readonly string[];
  readonly by: string;
  readonly admin?: boolean;
  /** Everyone told: the members before and after the change. */
  readonly recipients: readonly string[];
  readonly ts: number;
}

/**
 * One `chat` event per recipient; members the change adds get the chat in their chat list,
 * members it removes lose it.
 */
export function chatChangeEvents(change: StoredChatChange, origin: string | null): FanoutEvent[] {
  const event = {
    seq: 0,
    kind: 'chat' as const,
    chatId: change.chatId,
    change: change.change,
    members: [...change.members],
    by: change.by,
    ...(change.admin === true ? { admin: true as const } : {}),
    ts: change.ts,
  };
  const about = new Set(change.members);
  return [...change.recipients].sort().map((userId): FanoutEvent => {
    const membership =
      change.change === 'membersRemoved'
        ? about.has(userId)
          ? 'remove'
          : undefined
        : about.has(userId)
          ? 'add'
          : undefined;
    return {
      userId,
      event,
      messageId: change.messageId,
      origin,
      ...(membership === undefined ? {} : { membership }),
    };
  });
}
