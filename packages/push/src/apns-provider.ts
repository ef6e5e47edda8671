import { createHash } from 'node:crypto';
import { Notification, Provider } from '@parse/node-apn';
import type { ResponseFailure } from '@parse/node-apn';
import { pushData } from './payload';
import type { PushNotification, PushProvider, PushResult, PushTarget } from './provider';
import { isRetryableStatus } from './retry-after';

/** Token-based (ES256 JWT) APNs credentials and where to send. */
export interface ApnsProviderOptions {
  /** The .p8 signing key, PEM (read from a file by the caller; never logged). */
  readonly signingKey: string;
  readonly keyId: string;
  readonly teamId: string;
  /** Endpoints per environment; default Apple's production and sandbox hosts. */
  readonly urls: { readonly production: string; readonly sandbox: string };
  /** Extra trusted CA certificates, PEM (tests and private gateways). */
  readonly ca?: string;
  /** An attempt that gets no answer within this many ms ends as `retry`. */
  readonly requestTimeoutMs: number;
}

export const APNS_URLS = {
  production: 'https://api.push.apple.com',
  sandbox: 'https://api.sandbox.push.apple.com',
} as const;

/** APNs documents apns-collapse-id as at most 64 bytes. */
const MAX_COLLAPSE_ID_BYTES = 64;

/** Reasons APNs gives for a token that will never work again (410 is always one of them). */
const GONE_REASONS = new Set(['Unregistered', 'BadDeviceToken', 'DeviceTokenNotForTopic']);

/** The collapse id as sent: longer ids are hashed so that equal ids still collapse. */
function apnsCollapseId(collapseId: string): string {
  if (Buffer.byteLength(collapseId) <= MAX_COLLAPSE_ID_BYTES) return collapseId;
  return `h.${createHash('sha256').update(collapseId).digest('base64url')}`;
}

/** Maps one failed APNs answer (or transport error) to what the outbox does next. */
export function apnsFailureResult(failure: ResponseFailure): PushResult {
  const status = failure.status;
  const reason = failure.response?.reason;
  if (status === undefined) {
    // No answer: timeout, reset or refused connection. Transient by nature.
    return {
      outcome: 'retry',
      reason: `apns transport: ${failure.error?.message ?? 'no response'}`,
    };
  }
  const label = `apns ${status}${reason ? ` ${reason}` : ''}`;
  if (status === 410 || (reason !== undefined && GONE_REASONS.has(reason))) {
    return { outcome: 'gone', reason: label };
  }
  // APNs does not document Retry-After, and node-apn drops it: the outbox's backoff applies.
  if (isRetryableStatus(status)) return { outcome: 'retry', reason: label };
  return { outcome: 'failed', reason: label };
}

/**
 * APNs over HTTP/2 with token auth, through @parse/node-apn (one connection per environment,
 * opened on first use). The library's own retries are off: the outbox owns retry timing.
 *
 * @example
 * const apns = createApnsProvider({ signingKey, keyId, teamId, urls: APNS_URLS, requestTimeoutMs: 10_000 });
 * await apns.send({ kind: 'apns', token, topic: 'com.example.chat', environment: 'production' }, n);
 */
export function createApnsProvider(options: ApnsProviderOptions): PushProvider {
  const clients = new Map<'production' | 'sandbox', Provider>();

  function clientFor(environment: 'production' | 'sandbox'): Provider {
    const existing = clients.get(environment);
    if (existing) return existing;
    const url = new URL(options.urls[environment]);
    const client = new Provider({
      token: { key: Buffer.from(options.signingKey), keyId: options.keyId, teamId: options.teamId },
      address: url.hostname,
      port: url.port === '' ? 443 : Number(url.port),
      production: environment === 'production',
      ...(options.ca === undefined ? {} : { ca: [Buffer.from(options.ca)] }),
      requestTimeout: options.requestTimeoutMs,
      connectionRetryLimit: 0,
    });
    clients.set(environment, client);
    return client;
  }

  return {
    kind: 'apns',
    async send(target: PushTarget, notification: PushNotification): Promise<PushResult> {
      if (target.kind !== 'apns')
        return { outcome: 'failed', reason: `not an apns target: ${target.kind}` };
      const data = pushData(notification);
      const note = new Notification();
      note.topic = target.topic;
      note.pushType = 'alert';
      note.priority = 10;
      note.collapseId = apnsCollapseId(data.collapseId);
      note.expiry = Math.floor(Date.now() / 1000) + notification.ttlSeconds;
      note.badge = data.badge;
      if (data.title !== undefined) note.aps.alert = { title: data.title };
      note.payload = { chatId: data.chatId, collapseId: data.collapseId };
      const { failed } = await clientFor(target.environment).send(note, target.token);
      const failure = failed[0];
      return failure === undefined ? { outcome: 'sent' } : apnsFailureResult(failure);
    },
    async close(): Promise<void> {
      const all = [...clients.values()];
      clients.clear();
      await Promise.all(all.map((client) => client.shutdown()));
    },
  };
}
