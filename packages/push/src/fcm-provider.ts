import { Agent } from 'node:https';
import { JWT } from 'google-auth-library';
import { httpsFetch } from './https-fetch';
import { pushData } from './payload';
import type { PushNotification, PushProvider, PushResult, PushTarget } from './provider';
import { isRetryableStatus, parseRetryAfter } from './retry-after';

/** The fields of a Google service-account key file that FCM needs. */
export interface FcmServiceAccount {
  readonly projectId: string;
  readonly clientEmail: string;
  /** PEM (read from the key file by the caller; never logged). */
  readonly privateKey: string;
  readonly privateKeyId?: string;
}

export interface FcmProviderOptions {
  readonly serviceAccount: FcmServiceAccount;
  /** Base URL of the FCM HTTP v1 API; default https://fcm.googleapis.com. */
  readonly fcmUrl: string;
  /** OAuth 2.0 token endpoint for the JWT-bearer grant; default Google's. */
  readonly tokenUrl: string;
  /** Extra trusted CA certificates, PEM (tests and private gateways). */
  readonly ca?: string;
  /** An attempt (token exchange or send) without an answer within this many ms ends as `retry`. */
  readonly requestTimeoutMs: number;
}

export const FCM_URL = 'https://fcm.googleapis.com';
export const GOOGLE_TOKEN_URL = 'https://oauth2.googleapis.com/token';
export const FCM_SCOPE = 'https://www.googleapis.com/auth/firebase.messaging';

/** FCM v1 error body: google.rpc.Status with FCM details. */
interface FcmErrorBody {
  error?: {
    status?: string;
    details?: Array<{ '@type'?: string; errorCode?: string }>;
  };
}

/** What a failed request carries, whatever threw it (gaxios, node-fetch, an abort). */
interface HttpFailure {
  readonly status?: number;
  readonly retryAfter?: string;
  readonly body?: unknown;
  readonly message: string;
}

const FCM_ERROR_TYPE = 'type.googleapis.com/google.firebase.fcm.v1.FcmError';
const BAD_REQUEST_TYPE = 'type.googleapis.com/google.rpc.BadRequest';

/**
 * Maps a failed send to what the outbox does next. UNREGISTERED is a token gone; so is
 * INVALID_ARGUMENT when FCM names the token (an FcmError detail) rather than a field of the
 * message (a BadRequest detail) — FCM's error-code page gives these two shapes.
 */
export function fcmFailureResult(failure: HttpFailure, nowMs: number): PushResult {
  if (failure.status === undefined) {
    return { outcome: 'retry', reason: `fcm transport: ${failure.message}` };
  }
  const details = (failure.body as FcmErrorBody | undefined)?.error?.details ?? [];
  const errorCode = details.find((d) => d['@type'] === FCM_ERROR_TYPE)?.errorCode;
  const label = `fcm ${failure.status}${errorCode ? ` ${errorCode}` : ''}`;
  if (errorCode === 'UNREGISTERED') return { outcome: 'gone', reason: label };
  if (errorCode === 'INVALID_ARGUMENT' && !details.some((d) => d['@type'] === BAD_REQUEST_TYPE)) {
    return { outcome: 'gone', reason: label };
  }
  if (isRetryableStatus(failure.status)) {
    const retryAfterMs = parseRetryAfter(failure.retryAfter, nowMs);
    return retryAfterMs === undefined
      ? { outcome: 'retry', reason: label }
      : { outcome: 'retry', reason: label, retryAfterMs };
  }
  return { outcome: 'failed', reason: label };
}

/** Reads status, Retry-After and body off a gaxios error without trusting its shape. */
function httpFailure(err: unknown): HttpFailure {
  const e = err as {
    message?: string;
    response?: { status?: number; data?: unknown; headers?: { get?(name: string): string | null } };
  };
  const retryAfter = e.response?.headers?.get?.('retry-after') ?? undefined;
  return {
    message: e.message ?? String(err),
    ...(e.response?.status === undefined ? {} : { status: e.response.status }),
    ...(retryAfter === undefined || retryAfter === null ? {} : { retryAfter }),
    ...(e.response?.data === undefined ? {} : { body: e.response.data }),
  };
}

/** The v1 message: data only (content-free) unless a title is allowed, collapsed per chat. */
function fcmMessage(token: string, notification: PushNotification): object {
  const data = pushData(notification);
  const android: Record<string, unknown> = {
    collapse_key: data.collapseId,
    priority: 'HIGH',
    ttl: `${notification.ttlSeconds}s`,
  };
  if (data.title !== undefined) {
    android['notification'] = {
      title: data.title,
      tag: data.collapseId,
      notification_count: data.badge,
    };
  }
  return {
    message: {
      token,
      data: { chatId: data.chatId, collapseId: data.collapseId, badge: String(data.badge) },
      android,
    },
  };
}

/**
 * FCM HTTP v1 with a service-account access token from google-auth-library (JWT-bearer grant,
 * cached and refreshed by the library).
 *
 * @example
 * const fcm = createFcmProvider({ serviceAccount, fcmUrl: FCM_URL, tokenUrl: GOOGLE_TOKEN_URL, requestTimeoutMs: 10_000 });
 * await fcm.send({ kind: 'fcm', token }, n);
 */
export function createFcmProvider(options: FcmProviderOptions): PushProvider {
  const { serviceAccount } = options;
  const agent = new Agent({
    keepAlive: true,
    ...(options.ca === undefined ? {} : { ca: options.ca }),
  });
  const auth = new JWT({
    email: serviceAccount.clientEmail,
    key: serviceAccount.privateKey,
    ...(serviceAccount.privateKeyId === undefined ? {} : { keyId: serviceAccount.privateKeyId }),
    scopes: [FCM_SCOPE],
    // The library signs for and posts to Google's endpoint; the assertion's audience follows
    // the configured endpoint, and the request is redirected to it below.
    additionalClaims: { aud: options.tokenUrl },
    transporterOptions: {
      fetchImplementation: httpsFetch(agent),
      timeout: options.requestTimeoutMs,
    },
  });
  auth.transporter.interceptors.request.add({
    resolved: async (request) => {
      if (String(request.url) !== GOOGLE_TOKEN_URL) return request;
      request.url = new URL(options.tokenUrl);
      // The library retries the token request itself (three times, each up to the timeout);
      // the outbox owns retries, and one attempt must end within requestTimeoutMs.
      request.retryConfig = { ...request.retryConfig, retry: 0, noResponseRetries: 0 };
      return request;
    },
  });
  const sendUrl = new URL(
    `/v1/projects/${encodeURIComponent(serviceAccount.projectId)}/messages:send`,
    options.fcmUrl,
  ).toString();

  return {
    kind: 'fcm',
    async send(target: PushTarget, notification: PushNotification): Promise<PushResult> {
      if (target.kind !== 'fcm')
        return { outcome: 'failed', reason: `not an fcm target: ${target.kind}` };
      try {
        await auth.getAccessToken();
      } catch (err) {
        const failure = httpFailure(err);
        // A refused grant (bad key, unknown account) will not heal by waiting.
        if (failure.status !== undefined && failure.status < 500 && failure.status !== 429) {
          return { outcome: 'failed', reason: `fcm token ${failure.status}` };
        }
        return { outcome: 'retry', reason: `fcm token: ${failure.status ?? failure.message}` };
      }
      try {
        await auth.request({
          url: sendUrl,
          method: 'POST',
          data: fcmMessage(target.token, notification),
          retry: false,
        });
        return { outcome: 'sent' };
      } catch (err) {
        return fcmFailureResult(httpFailure(err), Date.now());
      }
    },
    async close(): Promise<void> {
      agent.destroy();
    },
  };
}
