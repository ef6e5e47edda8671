/**
 * The push payload (docs/protocol.md 5.8): what a device receives in a notification, the same
 * fields from every provider (APNs custom keys, FCM data, the Web Push message's JSON). Enough
 * to show a badge and open the chat, never message content; `title` ("New message from ...")
 * only when the user allowed previews. Browser-safe: the chat page's service worker reads it.
 */
export interface PushPayload {
  readonly chatId: string;
  /** The same for a chat on every node and attempt: a newer notification replaces the older. */
  readonly collapseId: string;
  /** The device's unread messages (capped). */
  readonly badge: number;
  readonly title?: string;
}

/**
 * The fields of a push payload that are well formed, from its JSON text (null, foreign or
 * broken text gives none): a push must always show something, so a reader takes what it can.
 *
 * @example
 * readPushPayload('{"chatId":"c1","collapseId":"k","badge":3}'); // { chatId: 'c1', collapseId: 'k', badge: 3 }
 */
export function readPushPayload(text: string | null): Partial<PushPayload> {
  let data: Record<string, unknown> = {};
  try {
    const parsed: unknown = text === null ? null : JSON.parse(text);
    if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) {
      data = parsed as Record<string, unknown>;
    }
  } catch {
    // Not JSON: no fields.
  }
  const nonEmpty = (v: unknown): string | undefined =>
    typeof v === 'string' && v !== '' ? v : undefined;
  const chatId = nonEmpty(data['chatId']);
  const collapseId = nonEmpty(data['collapseId']);
  const title = nonEmpty(data['title']);
  const badge = data['badge'];
  return {
    ...(chatId === undefined ? {} : { chatId }),
    ...(collapseId === undefined ? {} : { collapseId }),
    ...(typeof badge === 'number' && Number.isInteger(badge) && badge >= 0 ? { badge } : {}),
    ...(title === undefined ? {} : { title }),
  };
}
