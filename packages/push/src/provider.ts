/**
 * The contract between the push outbox (which decides what to send to whom, and when) and the
 * provider clients (which know how to talk to APNs, FCM and Web Push). The outbox never sees a
 * provider's wire format; a provider never sees the outbox's retry policy.
 */

/** Where one device is reached when it is not connected; stored per device. */
export type PushTarget =
  | { kind: 'apns'; token: string; topic: string; environment: 'sandbox' | 'production' }
  | { kind: 'fcm'; token: string }
  | { kind: 'webpush'; endpoint: string; keys: { p256dh: string; auth: string } };

export type PushKind = PushTarget['kind'];

/** What the user is told. Content-free unless the user allowed previews. */
export interface PushNotification {
  /** One notification per chat per device per window: APNs collapse id, FCM collapse key, Web Push topic. */
  collapseId: string;
  chatId: string;
  /** Unread events for the user, shown as the app badge. */
  badge: number;
  /** Present only when the user allowed previews, e.g. "New message from Ada". */
  title?: string;
  /** Seconds the provider may keep trying to reach the device. */
  ttlSeconds: number;
}

/** What became of one attempt; the outbox turns it into done, retry later or drop the target. */
export type PushResult =
  | { outcome: 'sent' }
  /** Try again later; at `retryAfterMs` from now when the provider said so (Retry-After). */
  | { outcome: 'retry'; reason: string; retryAfterMs?: number }
  /** The provider says the target no longer exists (APNs 410/Unregistered, FCM UNREGISTERED, Web Push 404/410). */
  | { outcome: 'gone'; reason: string }
  /** Will never succeed as sent (bad request, bad credentials): not retried. */
  | { outcome: 'failed'; reason: string };

export interface PushProvider {
  readonly kind: PushKind;
  send(target: PushTarget, notification: PushNotification): Promise<PushResult>;
  close(): Promise<void>;
}
