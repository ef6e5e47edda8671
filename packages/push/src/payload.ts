import type { PushPayload } from '@chat/protocol';
import type { PushNotification } from './provider';

/**
 * What the device receives, the same fields for every provider (@chat/protocol's PushPayload,
 * docs/protocol.md 5.8): `title` only when the user allowed previews (the outbox decides; a
 * provider never adds anything).
 */
export function pushData(notification: PushNotification): PushPayload {
  const data: PushPayload = {
    chatId: notification.chatId,
    collapseId: notification.collapseId,
    badge: notification.badge,
  };
  return notification.title === undefined ? data : { ...data, title: notification.title };
}
