/**
 * What the service worker shows for a push (pure, unit-tested). The nodes' Web Push payload is
 * the JSON of @chat/protocol's `PushPayload`: `{chatId, collapseId, badge, title?}`, with
 * `title` only when the user allowed previews. Content-free otherwise: "New message" and the
 * count.
 */
import { readPushPayload } from '@chat/protocol';

/** Title of a notification whose payload names no sender (previews off). */
export const DEFAULT_TITLE = 'New message';

export interface ShownNotification {
  readonly title: string;
  readonly options: {
    readonly body?: string;
    /** The chat's collapse id: a newer notification for the chat replaces the older one. */
    readonly tag?: string;
    readonly data: { readonly chatId?: string };
  };
}

/**
 * The notification for a push payload (its text, or null for a push without one); anything
 * that is not the nodes' JSON still shows the default, since a push must always show something
 * (`userVisibleOnly`).
 *
 * @example
 * notificationFor('{"chatId":"c1","collapseId":"c1","badge":3}');
 * // { title: 'New message', options: { body: '3 unread', tag: 'c1', data: { chatId: 'c1' } } }
 */
export function notificationFor(payload: string | null): ShownNotification {
  const { chatId, collapseId, badge, title } = readPushPayload(payload);
  return {
    title: title ?? DEFAULT_TITLE,
    options: {
      ...(badge !== undefined && badge > 0 ? { body: `${badge} unread` } : {}),
      ...(collapseId === undefined ? {} : { tag: collapseId }),
      data: chatId === undefined ? {} : { chatId },
    },
  };
}
