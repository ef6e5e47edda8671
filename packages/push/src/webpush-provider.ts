import { createHash } from 'node:crypto';
import { Agent } from 'node:https';
import webPush from 'web-push';
import { pushData } from './payload';
import type { PushNotification, PushProvider, PushResult, PushTarget } from './provider';
import { isRetryableStatus, parseRetryAfter } from './retry-after';

/** The application server's VAPID identity (RFC 8292). */
export interface VapidKeys {
  /** Uncompressed P-256 public key, base64url (what browsers get as applicationServerKey). */
  readonly publicKey: string;
  /** Private key, base64url (read from a file or secret by the caller; never logged). */
  readonly privateKey: string;
  /** Contact for the push service: a mailto: or https: URL. */
  readonly subject: string;
}

export interface WebPushProviderOptions {
  readonly vapid: VapidKeys;
  /** Extra trusted CA certificates, PEM (tests and private push services). */
  readonly ca?: string;
  /** An attempt without an answer within this many ms ends as `retry`. */
  readonly requestTimeoutMs: number;
}

/** RFC 8030 §5.4: a Topic is at most 32 characters of the base64url alphabet. */
const MAX_TOPIC_LENGTH = 32;

/** The Topic header for a collapse id: itself when it fits, else a digest (same id, same topic). */
function webPushTopic(collapseId: string): string {
  if (collapseId.length <= MAX_TOPIC_LENGTH && /^[A-Za-z0-9_-]+$/.test(collapseId))
    return collapseId;
  return createHash('sha256').update(collapseId).digest('base64url').slice(0, MAX_TOPIC_LENGTH);
}

/** What a failed web-push request carries (WebPushError, or a socket error without a status). */
interface WebPushFailure {
  statusCode?: number;
  /** Node's system error code (ECONNREFUSED, ECONNRESET...): the request never got an answer. */
  code?: string;
  headers?: Record<string, string | string[] | undefined>;
  message?: string;
}

/** Maps a failed delivery to what the outbox does next; 404 and 410 mean the subscription is gone (RFC 8030 §6.2). */
export function webPushFailureResult(err: unknown, nowMs: number): PushResult {
  const failure = err as WebPushFailure;
  const status = failure.statusCode;
  if (status === undefined) {
    const message = failure.message ?? String(err);
    // web-push reports its socket timeout as a plain Error; anything else without a code is
    // its own validation of the subscription or keys, which no retry will fix.
    if (failure.code !== undefined || /timeout/i.test(message)) {
      return { outcome: 'retry', reason: `webpush transport: ${message}` };
    }
    return { outcome: 'failed', reason: `webpush request: ${message}` };
  }
  const label = `webpush ${status}`;
  if (status === 404 || status === 410) return { outcome: 'gone', reason: label };
  if (isRetryableStatus(status)) {
    const header = failure.headers?.['retry-after'];
    const retryAfterMs = parseRetryAfter(Array.isArray(header) ? header[0] : header, nowMs);
    return retryAfterMs === undefined
      ? { outcome: 'retry', reason: label }
      : { outcome: 'retry', reason: label, retryAfterMs };
  }
  return { outcome: 'failed', reason: label };
}

/**
 * Web Push through the `web-push` library: VAPID-signed, payload encrypted with aes128gcm for
 * the subscription's keys, the chat's collapse id as the Topic so a newer one replaces an
 * undelivered older one.
 *
 * @example
 * const wp = createWebPushProvider({ vapid, requestTimeoutMs: 10_000 });
 * await wp.send({ kind: 'webpush', endpoint, keys: { p256dh, auth } }, n);
 */
export function createWebPushProvider(options: WebPushProviderOptions): PushProvider {
  const agent = new Agent({
    keepAlive: true,
    ...(options.ca === undefined ? {} : { ca: options.ca }),
  });
  return {
    kind: 'webpush',
    async send(target: PushTarget, notification: PushNotification): Promise<PushResult> {
      if (target.kind !== 'webpush')
        return { outcome: 'failed', reason: `not a webpush target: ${target.kind}` };
      try {
        await webPush.sendNotification(
          { endpoint: target.endpoint, keys: target.keys },
          JSON.stringify(pushData(notification)),
          {
            vapidDetails: options.vapid,
            TTL: notification.ttlSeconds,
            topic: webPushTopic(notification.collapseId),
            urgency: 'high',
            contentEncoding: 'aes128gcm',
            agent,
            timeout: options.requestTimeoutMs,
          },
        );
        return { outcome: 'sent' };
      } catch (err) {
        return webPushFailureResult(err, Date.now());
      }
    },
    async close(): Promise<void> {
      agent.destroy();
    },
  };
}

/**
 * A fresh VAPID key pair (web-push's generator) for local runs and tests; deployments make
 * theirs once (`npx web-push generate-vapid-keys`) and keep the private key in a secret.
 */
export function generateVapidKeys(subject: string): VapidKeys {
  return { ...webPush.generateVAPIDKeys(), subject };
}
