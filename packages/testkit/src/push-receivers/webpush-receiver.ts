import { createPublicKey, randomBytes, randomUUID } from 'node:crypto';
import { createServer } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DecryptionFailed, decryptAes128gcm, newSubscriptionKeys } from './aes128gcm';
import type { SubscriptionKeys } from './aes128gcm';
import { FaultScript } from './faults';
import { JwtRejected, nowSeconds, verifyJwt } from './jws';
import { readBody } from './read-body';

export interface WebPushReceiverOptions {
  /** TLS certificate and key of the receiver (issued by the test's local CA for localhost). */
  readonly tls: { readonly cert: string; readonly key: string };
}

/** A subscription as the browser hands it to the application (PushSubscription.toJSON()). */
export interface ReceiverSubscription {
  readonly endpoint: string;
  readonly keys: { readonly p256dh: string; readonly auth: string };
}

/** One message the push service accepted, decrypted with the subscription's private key. */
export interface WebPushDelivery {
  readonly subscriptionId: string;
  readonly ttl: number;
  readonly topic?: string;
  readonly urgency?: string;
  readonly vapid: {
    readonly subject: string;
    readonly publicKey: string;
    readonly expiresAt: number;
  };
  readonly plaintext: string;
}

export interface WebPushRefusal {
  readonly status: number;
  readonly reason: string;
}

export interface WebPushReceiver {
  /** https://localhost:<port> */
  readonly url: string;
  /**
   * A new subscription, as PushManager.subscribe() makes one. With `applicationServerKey`
   * (the VAPID public key, base64url) only messages signed with that key are accepted.
   */
  subscribe(applicationServerKey?: string): ReceiverSubscription;
  readonly delivered: readonly WebPushDelivery[];
  readonly refused: readonly WebPushRefusal[];
  /** Faults by subscription id: the last path segment of the endpoint. */
  readonly faults: FaultScript;
  close(): Promise<void>;
}

const MAX_BODY_BYTES = 4096;
const MAX_VAPID_LIFETIME_S = 24 * 3600;
const URGENCIES = new Set(['very-low', 'low', 'normal', 'high']);

interface Subscription {
  readonly keys: SubscriptionKeys;
  readonly applicationServerKey?: string;
}

class Refusal extends Error {
  constructor(
    readonly status: number,
    readonly reason: string,
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(reason);
  }
}

/**
 * A local push service (RFC 8030): `POST /push/<id>` checked for the VAPID authorization of
 * RFC 8292 (ES256 JWT with aud, exp, sub; the `k` key bound to the subscription), the TTL,
 * Topic and Urgency headers, and an aes128gcm body (RFC 8291) that it decrypts with the
 * subscription's private key.
 */
export async function startWebPushReceiver(
  options: WebPushReceiverOptions,
): Promise<WebPushReceiver> {
  const subscriptions = new Map<string, Subscription>();
  const delivered: WebPushDelivery[] = [];
  const refused: WebPushRefusal[] = [];
  const faults = new FaultScript();
  const server = createServer({ cert: options.tls.cert, key: options.tls.key });
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    void handle(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `https://localhost:${(server.address() as AddressInfo).port}`;

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req);
    try {
      const match = /^\/push\/([A-Za-z0-9-]+)$/.exec(req.url ?? '');
      if (req.method !== 'POST' || !match) throw new Refusal(404, 'no such push resource');
      const id = match[1]!;
      if (faults.isGone(id)) throw new Refusal(410, 'subscription expired');
      const subscription = subscriptions.get(id);
      if (subscription === undefined) throw new Refusal(404, 'no such subscription');
      const delivery = verify(id, subscription, req, body);
      const fault = faults.take();
      if (fault?.kind === 'hang') return;
      if (fault?.kind === 'status') {
        throw new Refusal(
          fault.status,
          'scripted fault',
          fault.retryAfter === undefined ? {} : { 'retry-after': fault.retryAfter },
        );
      }
      delivered.push(delivery);
      res.writeHead(201, { location: `${url}/message/${randomUUID()}`, ttl: String(delivery.ttl) });
      res.end();
    } catch (err) {
      if (!(err instanceof Refusal)) throw err;
      refused.push({ status: err.status, reason: err.reason });
      res.writeHead(err.status, { 'content-type': 'text/plain', ...err.headers });
      res.end(err.reason);
    }
  }

  function verify(
    id: string,
    subscription: Subscription,
    req: IncomingMessage,
    body: Buffer,
  ): WebPushDelivery {
    const vapid = verifyVapid(String(req.headers['authorization'] ?? ''), subscription);
    const ttlHeader = req.headers['ttl'];
    if (typeof ttlHeader !== 'string' || !/^\d+$/.test(ttlHeader))
      throw new Refusal(400, 'TTL header missing or not a number');
    const topic = req.headers['topic'];
    if (
      topic !== undefined &&
      (typeof topic !== 'string' || !/^[A-Za-z0-9_-]{1,32}$/.test(topic))
    ) {
      throw new Refusal(400, 'Topic must be at most 32 base64url characters');
    }
    const urgency = req.headers['urgency'];
    if (urgency !== undefined && (typeof urgency !== 'string' || !URGENCIES.has(urgency)))
      throw new Refusal(400, 'bad Urgency');
    if (body.length > MAX_BODY_BYTES) throw new Refusal(413, 'payload too large');
    if (req.headers['content-encoding'] !== 'aes128gcm')
      throw new Refusal(415, 'Content-Encoding must be aes128gcm');
    let plaintext: Buffer;
    try {
      plaintext = decryptAes128gcm(body, subscription.keys);
    } catch (err) {
      if (err instanceof DecryptionFailed) throw new Refusal(400, `cannot decrypt: ${err.message}`);
      throw err;
    }
    return {
      subscriptionId: id,
      ttl: Number(ttlHeader),
      ...(topic === undefined ? {} : { topic }),
      ...(urgency === undefined ? {} : { urgency }),
      vapid,
      plaintext: plaintext.toString('utf8'),
    };
  }

  function verifyVapid(
    authorization: string,
    subscription: Subscription,
  ): WebPushDelivery['vapid'] {
    const match = /^vapid (.+)$/i.exec(authorization);
    if (!match) throw new Refusal(401, 'Authorization must use the vapid scheme');
    const params = new Map<string, string>();
    for (const part of match[1]!.split(',')) {
      const eq = part.indexOf('=');
      if (eq > 0) params.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
    }
    const token = params.get('t');
    const publicKey = params.get('k');
    if (token === undefined || publicKey === undefined)
      throw new Refusal(401, 'vapid needs t and k');
    const raw = Buffer.from(publicKey, 'base64url');
    if (raw.length !== 65 || raw[0] !== 0x04)
      throw new Refusal(401, 'k is not an uncompressed P-256 key');
    if (
      subscription.applicationServerKey !== undefined &&
      publicKey !== subscription.applicationServerKey
    ) {
      throw new Refusal(403, 'k is not the key this subscription was made with');
    }
    let claims: Record<string, unknown>;
    try {
      const key = createPublicKey({
        key: {
          kty: 'EC',
          crv: 'P-256',
          x: raw.subarray(1, 33).toString('base64url'),
          y: raw.subarray(33).toString('base64url'),
        },
        format: 'jwk',
      });
      claims = verifyJwt(token, key, 'ES256').claims;
    } catch (err) {
      if (err instanceof JwtRejected) throw new Refusal(403, `vapid token: ${err.message}`);
      throw new Refusal(401, 'k is not a point on P-256');
    }
    const { aud, exp, sub } = claims;
    if (aud !== url) throw new Refusal(403, `vapid aud ${String(aud)} is not ${url}`);
    const now = nowSeconds();
    if (typeof exp !== 'number' || exp <= now || exp > now + MAX_VAPID_LIFETIME_S) {
      throw new Refusal(403, 'vapid exp must be in the future and within 24 hours');
    }
    if (typeof sub !== 'string' || !/^(mailto:|https:)/.test(sub))
      throw new Refusal(403, 'vapid sub must be mailto: or https:');
    return { subject: sub, publicKey, expiresAt: exp };
  }

  return {
    url,
    subscribe(applicationServerKey?: string): ReceiverSubscription {
      const id = randomUUID();
      const keys = newSubscriptionKeys(randomBytes(16));
      subscriptions.set(
        id,
        applicationServerKey === undefined ? { keys } : { keys, applicationServerKey },
      );
      return {
        endpoint: `${url}/push/${id}`,
        keys: {
          p256dh: keys.ecdh.getPublicKey().toString('base64url'),
          auth: keys.authSecret.toString('base64url'),
        },
      };
    },
    delivered,
    refused,
    faults,
    async close(): Promise<void> {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
