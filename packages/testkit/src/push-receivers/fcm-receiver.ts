import { createPublicKey, randomBytes } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { createServer } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { FaultScript } from './faults';
import { JwtRejected, nowSeconds, verifyJwt } from './jws';
import { readBody } from './read-body';

export interface FcmReceiverOptions {
  /** TLS certificate and key of the receiver (issued by the test's local CA for localhost). */
  readonly tls: { readonly cert: string; readonly key: string };
  readonly projectId: string;
  /** The service account: its email and its key (public part, or the private key whose public part is used). */
  readonly clientEmail: string;
  readonly verificationKey: string;
  readonly privateKeyId?: string;
}

/** One message FCM accepted. */
export interface FcmDelivery {
  readonly token: string;
  readonly message: Record<string, unknown>;
}

export interface FcmRefusal {
  readonly path: string;
  readonly status: number;
  readonly error: string;
}

export interface FcmReceiver {
  /** https://localhost:<port> (the FCM base URL). */
  readonly url: string;
  /** The OAuth 2.0 token endpoint: `${url}/token`. */
  readonly tokenUrl: string;
  readonly delivered: readonly FcmDelivery[];
  readonly refused: readonly FcmRefusal[];
  /** Access tokens handed out by the token endpoint. */
  readonly tokensIssued: () => number;
  /** Faults of messages:send. */
  readonly faults: FaultScript;
  /** Faults of the token endpoint (statuses answer as OAuth errors). */
  readonly tokenFaults: FaultScript;
  close(): Promise<void>;
}

const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
const FCM_SCOPE = 'https://www.googleapis.com/auth/firebase.messaging';
const FCM_ERROR_TYPE = 'type.googleapis.com/google.firebase.fcm.v1.FcmError';
const BAD_REQUEST_TYPE = 'type.googleapis.com/google.rpc.BadRequest';
const ACCESS_TOKEN_TTL_S = 3600;

const MESSAGE_FIELDS = new Set([
  'name',
  'data',
  'notification',
  'android',
  'webpush',
  'apns',
  'fcm_options',
  'token',
  'topic',
  'condition',
]);
const ANDROID_FIELDS = new Set([
  'collapse_key',
  'priority',
  'ttl',
  'restricted_package_name',
  'data',
  'notification',
  'fcm_options',
  'direct_boot_ok',
]);
const ANDROID_NOTIFICATION_FIELDS = new Set([
  'title',
  'body',
  'icon',
  'color',
  'sound',
  'tag',
  'click_action',
  'body_loc_key',
  'body_loc_args',
  'title_loc_key',
  'title_loc_args',
  'channel_id',
  'ticker',
  'sticky',
  'event_time',
  'local_only',
  'notification_priority',
  'default_sound',
  'default_vibrate_timings',
  'default_light_settings',
  'vibrate_timings',
  'visibility',
  'notification_count',
  'light_settings',
  'image',
]);
/** google.rpc status names by HTTP status, as FCM's v1 errors carry them. */
const STATUS_NAME: Readonly<Record<number, string>> = {
  400: 'INVALID_ARGUMENT',
  401: 'UNAUTHENTICATED',
  403: 'PERMISSION_DENIED',
  404: 'NOT_FOUND',
  429: 'RESOURCE_EXHAUSTED',
  500: 'INTERNAL',
  503: 'UNAVAILABLE',
};
/** FcmError codes by HTTP status (FCM's error-code table). */
const FCM_CODE: Readonly<Record<number, string>> = {
  400: 'INVALID_ARGUMENT',
  403: 'SENDER_ID_MISMATCH',
  404: 'UNREGISTERED',
  429: 'QUOTA_EXCEEDED',
  500: 'INTERNAL',
  503: 'UNAVAILABLE',
};

class Refusal extends Error {
  constructor(
    readonly status: number,
    readonly document: unknown,
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(JSON.stringify(document));
  }
}

/** An FCM v1 error: google.rpc.Status with an FcmError (or BadRequest, for a bad field) detail. */
function fcmError(status: number, message: string, badField?: string): Refusal {
  const detail =
    badField === undefined
      ? { '@type': FCM_ERROR_TYPE, errorCode: FCM_CODE[status] ?? 'UNSPECIFIED_ERROR' }
      : { '@type': BAD_REQUEST_TYPE, fieldViolations: [{ field: badField, description: message }] };
  return new Refusal(status, {
    error: { code: status, message, status: STATUS_NAME[status] ?? 'UNKNOWN', details: [detail] },
  });
}

function oauthError(error: string, description: string): Refusal {
  return new Refusal(400, { error, error_description: description });
}

/**
 * A local FCM: the OAuth 2.0 token endpoint for a service account's JWT-bearer grant (RS256
 * assertion checked for iss/aud/scope/iat/exp) and `POST /v1/projects/<id>/messages:send`
 * checked for the bearer token and the v1 message body, answering in FCM's v1 error shape.
 */
export async function startFcmReceiver(options: FcmReceiverOptions): Promise<FcmReceiver> {
  const publicKey: KeyObject = createPublicKey(options.verificationKey);
  const delivered: FcmDelivery[] = [];
  const refused: FcmRefusal[] = [];
  const faults = new FaultScript();
  const tokenFaults = new FaultScript();
  const accessTokens = new Map<string, number>();
  const server = createServer({ cert: options.tls.cert, key: options.tls.key });
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    void handle(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `https://localhost:${(server.address() as AddressInfo).port}`;
  const tokenUrl = `${url}/token`;
  const sendPath = `/v1/projects/${options.projectId}/messages:send`;

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req);
    const path = req.url ?? '';
    try {
      if (req.method !== 'POST') throw fcmError(404, 'not found');
      if (path === '/token') {
        const fault = tokenFaults.take();
        if (fault?.kind === 'hang') return;
        if (fault?.kind === 'status') {
          throw new Refusal(fault.status, { error: 'temporarily_unavailable' });
        }
        const granted = grant(req, body);
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(granted));
        return;
      }
      if (path !== sendPath) throw fcmError(404, `no such path ${path}`);
      const delivery = verifySend(req, body);
      if (faults.isGone(delivery.token)) throw fcmError(404, 'Requested entity was not found.');
      const fault = faults.take();
      if (fault?.kind === 'hang') return;
      if (fault?.kind === 'status') {
        const refusal = fcmError(fault.status, 'scripted fault');
        throw new Refusal(
          refusal.status,
          refusal.document,
          fault.retryAfter === undefined ? {} : { 'retry-after': fault.retryAfter },
        );
      }
      delivered.push(delivery);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          name: `projects/${options.projectId}/messages/${randomBytes(8).toString('hex')}`,
        }),
      );
    } catch (err) {
      if (!(err instanceof Refusal)) throw err;
      refused.push({ path, status: err.status, error: err.message });
      res.writeHead(err.status, { 'content-type': 'application/json', ...err.headers });
      res.end(JSON.stringify(err.document));
    }
  }

  function grant(req: IncomingMessage, body: Buffer): object {
    if (!String(req.headers['content-type']).startsWith('application/x-www-form-urlencoded')) {
      throw oauthError('invalid_request', 'expected a form body');
    }
    const form = new URLSearchParams(body.toString('utf8'));
    if (form.get('grant_type') !== JWT_BEARER)
      throw oauthError('unsupported_grant_type', 'expected the JWT bearer grant');
    const assertion = form.get('assertion');
    if (assertion === null) throw oauthError('invalid_request', 'missing assertion');
    let claims: Record<string, unknown>;
    try {
      const jwt = verifyJwt(assertion, publicKey, 'RS256');
      if (
        options.privateKeyId !== undefined &&
        jwt.header['kid'] !== undefined &&
        jwt.header['kid'] !== options.privateKeyId
      ) {
        throw new JwtRejected('kid');
      }
      claims = jwt.claims;
    } catch (err) {
      if (err instanceof JwtRejected) throw oauthError('invalid_grant', 'Invalid JWT Signature.');
      throw err;
    }
    const now = nowSeconds();
    const { iss, aud, scope, iat, exp } = claims;
    if (iss !== options.clientEmail) throw oauthError('invalid_grant', 'Invalid issuer');
    if (aud !== tokenUrl) throw oauthError('invalid_grant', 'Invalid audience');
    if (typeof scope !== 'string' || !scope.split(' ').includes(FCM_SCOPE))
      throw oauthError('invalid_scope', 'firebase.messaging scope missing');
    if (typeof iat !== 'number' || typeof exp !== 'number')
      throw oauthError('invalid_grant', 'iat and exp required');
    if (iat > now + 60 || exp <= now || exp - iat > 3600)
      throw oauthError(
        'invalid_grant',
        'Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe.',
      );
    const accessToken = `ya29.local-${randomBytes(24).toString('base64url')}`;
    accessTokens.set(accessToken, now + ACCESS_TOKEN_TTL_S);
    return { access_token: accessToken, expires_in: ACCESS_TOKEN_TTL_S, token_type: 'Bearer' };
  }

  function verifySend(req: IncomingMessage, body: Buffer): FcmDelivery {
    const bearer = /^Bearer (.+)$/.exec(String(req.headers['authorization'] ?? ''))?.[1];
    const expires = bearer === undefined ? undefined : accessTokens.get(bearer);
    if (expires === undefined || expires <= nowSeconds()) {
      throw new Refusal(401, {
        error: {
          code: 401,
          message: 'Request had invalid authentication credentials.',
          status: 'UNAUTHENTICATED',
        },
      });
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(body.toString('utf8'));
    } catch {
      throw fcmError(400, 'Invalid JSON payload received.', 'message');
    }
    const message = (parsed as { message?: unknown } | null)?.message;
    if (!isObject(message)) throw fcmError(400, 'message is required', 'message');
    const unknown = (
      fields: Record<string, unknown>,
      allowed: ReadonlySet<string>,
      where: string,
    ): void => {
      const extra = Object.keys(fields).find((k) => !allowed.has(k));
      if (extra !== undefined)
        throw fcmError(
          400,
          `Invalid JSON payload received. Unknown name "${extra}" at '${where}'`,
          where,
        );
    };
    unknown(message, MESSAGE_FIELDS, 'message');
    const targets = ['token', 'topic', 'condition'].filter((k) => k in message);
    if (targets.length !== 1)
      throw fcmError(400, 'exactly one of token, topic, condition', 'message');
    const token = message['token'];
    if (typeof token !== 'string' || token === '')
      throw fcmError(400, 'The registration token is not a valid FCM registration token');
    checkStringMap(message['data'], 'message.data');
    const android = message['android'];
    if (android !== undefined) {
      if (!isObject(android)) throw fcmError(400, 'android must be an object', 'message.android');
      unknown(android, ANDROID_FIELDS, 'message.android');
      if (android['collapse_key'] !== undefined && typeof android['collapse_key'] !== 'string') {
        throw fcmError(400, 'collapse_key must be a string', 'message.android.collapse_key');
      }
      if (
        android['priority'] !== undefined &&
        !['NORMAL', 'HIGH'].includes(String(android['priority']))
      ) {
        throw fcmError(400, 'priority must be NORMAL or HIGH', 'message.android.priority');
      }
      if (android['ttl'] !== undefined && !/^\d+(\.\d{1,9})?s$/.test(String(android['ttl']))) {
        throw fcmError(400, 'ttl must be a duration like "3.5s"', 'message.android.ttl');
      }
      checkStringMap(android['data'], 'message.android.data');
      const notification = android['notification'];
      if (notification !== undefined) {
        if (!isObject(notification))
          throw fcmError(400, 'notification must be an object', 'message.android.notification');
        unknown(notification, ANDROID_NOTIFICATION_FIELDS, 'message.android.notification');
        const count = notification['notification_count'];
        if (count !== undefined && !Number.isInteger(count)) {
          throw fcmError(
            400,
            'notification_count must be an integer',
            'message.android.notification.notification_count',
          );
        }
      }
    }
    return { token, message };
  }

  return {
    url,
    tokenUrl,
    delivered,
    refused,
    tokensIssued: () => accessTokens.size,
    faults,
    tokenFaults,
    async close(): Promise<void> {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** FCM's data maps are string to string; a number there is refused (FCM's own example). */
function checkStringMap(value: unknown, where: string): void {
  if (value === undefined) return;
  if (!isObject(value)) throw fcmError(400, `${where} must be a map`, where);
  for (const [key, v] of Object.entries(value)) {
    if (typeof v !== 'string')
      throw fcmError(400, `Invalid value at '${where}[${key}]' (TYPE_STRING)`, `${where}[${key}]`);
  }
}
