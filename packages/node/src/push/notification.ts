/**
 * What a push notification says (issue 18): which chat (by a collapse id, so that the device
 * and the provider keep one notification per chat), the unread badge, and, only when the user
 * allowed previews, who wrote. Never the message body.
 */
import { createHash } from 'node:crypto';
import type { PushNotification } from '@chat/push';

/**
 * The same for a chat on every node and attempt, so a notification sent twice (a node died
 * after sending, before recording it) replaces itself. Web Push topics allow at most 32
 * characters of the base64url alphabet; APNs collapse ids 64 bytes: 32 base64url characters of
 * the chat id's SHA-256 fit both.
 */
export function collapseIdOf(chatId: string): string {
  return createHash('sha256').update(chatId).digest('base64url').slice(0, 32);
}

export interface NotificationInput {
  readonly chatId: string;
  readonly from: string | null;
  readonly badge: number;
  readonly previews: boolean;
  readonly ttlSeconds: number;
}

export function notificationFor(input: NotificationInput): PushNotification {
  const base = {
    collapseId: collapseIdOf(input.chatId),
    chatId: input.chatId,
    badge: input.badge,
    ttlSeconds: input.ttlSeconds,
  };
  return input.previews && input.from !== null
    ? { ...base, title: `New message from ${input.from}` }
    : base;
}
