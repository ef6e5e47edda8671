/**
 * The pure parts of the chat page's "notify me" (Web Push, issue 18): whether the browser can
 * do it, the registry's VAPID key, and the browser's PushSubscription as the SDK's push target.
 * No DOM and no browser globals here: they are passed in, so all of it is unit-tested in Node.
 */
import type { PushTargetSpec } from '@chat/protocol';
import { isVapidPublicKey } from '@chat/protocol';

/** Where the registry serves the nodes' VAPID public key (404 when Web Push is off). */
export const VAPID_KEY_PATH = '/v1/push/vapid-public-key';

/** The service worker that shows the notifications; its directory is its scope. */
export const PUSH_WORKER_URL = '/chat/sw.js';
export const PUSH_WORKER_SCOPE = '/chat/';

/**
 * Whether the browser has what "notify me" needs: a service worker, the Push API and
 * notifications (Safari before 16.4 and insecure origins lack some of them).
 *
 * @example
 * browserCanPush(navigator, window); // true in Chrome on http://127.0.0.1
 */
export function browserCanPush(nav: object, win: object): boolean {
  return 'serviceWorker' in nav && 'PushManager' in win && 'Notification' in win;
}

/** The button shows only when the browser can push and the cluster sends Web Push. */
export function offersNotifications(
  nav: object,
  win: object,
  vapidKey: string | undefined,
): boolean {
  return vapidKey !== undefined && browserCanPush(nav, win);
}

/**
 * The nodes' VAPID public key from the registry, or undefined when the cluster sends no Web
 * Push (404), the answer is not a key, or the registry cannot be asked.
 */
export async function fetchVapidKey(
  origin: string,
  fetchFn: (url: string) => Promise<{ ok: boolean; json(): Promise<unknown> }>,
): Promise<string | undefined> {
  try {
    const res = await fetchFn(`${origin}${VAPID_KEY_PATH}`);
    if (!res.ok) return undefined;
    const body = (await res.json()) as { publicKey?: unknown };
    return typeof body.publicKey === 'string' && isVapidPublicKey(body.publicKey)
      ? body.publicKey
      : undefined;
  } catch {
    return undefined;
  }
}

/**
 * base64url (padded or not) to bytes: `applicationServerKey` wants the raw key, and the
 * registry hands it out as text.
 */
export function base64UrlToBytes(text: string): Uint8Array<ArrayBuffer> {
  if (!/^[A-Za-z0-9_-]*={0,2}$/.test(text) || text.replace(/=+$/, '').length % 4 === 1) {
    throw new Error('not base64url');
  }
  const base64 = text.replace(/=+$/, '').replace(/-/g, '+').replace(/_/g, '/');
  const binary = atob(base64.padEnd(Math.ceil(base64.length / 4) * 4, '='));
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

/** Whether an existing subscription was made for `key`: keys change with every `npm start`. */
export function sameKey(subscriptionKey: ArrayBuffer | null | undefined, key: Uint8Array): boolean {
  if (subscriptionKey === null || subscriptionKey === undefined) return false;
  const bytes = new Uint8Array(subscriptionKey);
  return bytes.length === key.length && bytes.every((b, i) => b === key[i]);
}

/** What `PushSubscription.toJSON()` gives (the DOM type marks every field optional). */
export interface SubscriptionJson {
  readonly endpoint?: string | null;
  readonly keys?: Readonly<Record<string, string>>;
}

/**
 * The browser's subscription as the target `client.registerPush` sends; throws when the
 * browser left out the endpoint or a key (the node would refuse it anyway).
 *
 * @example
 * await client.registerPush(pushTargetOf(subscription.toJSON()));
 */
export function pushTargetOf(json: SubscriptionJson): PushTargetSpec {
  const endpoint = json.endpoint;
  const p256dh = json.keys?.['p256dh'];
  const auth = json.keys?.['auth'];
  if (typeof endpoint !== 'string' || endpoint === '') {
    throw new Error('the browser gave a push subscription without an endpoint');
  }
  if (typeof p256dh !== 'string' || typeof auth !== 'string') {
    throw new Error('the browser gave a push subscription without its p256dh and auth keys');
  }
  return { kind: 'webpush', endpoint, keys: { p256dh, auth } };
}

/** What the page says next to the button; `data-state` carries the state for tests. */
export type NotifyState = 'off' | 'asking' | 'on' | 'blocked' | 'dismissed' | 'error';

export function notifyStatusText(state: NotifyState, error?: string): string {
  switch (state) {
    case 'off':
      return '';
    case 'asking':
      return 'turning on…';
    case 'on':
      return 'notifications on';
    case 'blocked':
      return 'blocked by the browser';
    case 'dismissed':
      return 'not allowed (ask again with the button)';
    case 'error':
      return `notifications failed: ${error ?? 'unknown error'}`;
  }
}

/** The state a `Notification.requestPermission()` answer leads to, or undefined to go on. */
export function permissionState(permission: string): NotifyState | undefined {
  if (permission === 'granted') return undefined;
  return permission === 'denied' ? 'blocked' : 'dismissed';
}
