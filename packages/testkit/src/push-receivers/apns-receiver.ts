import { createPublicKey, randomUUID } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { createSecureServer } from 'node:http2';
import type { Http2ServerRequest, Http2ServerResponse, Http2Session } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { FaultScript } from './faults';
import { JwtRejected, nowSeconds, verifyJwt } from './jws';
import { readBody } from './read-body';

export interface ApnsReceiverOptions {
  /** TLS certificate and key of the receiver (issued by the test's local CA for localhost). */
  readonly tls: { readonly cert: string; readonly key: string };
  /** The provider's token signing key: public part (PEM, SPKI) or the private key (its public part is used). */
  readonly verificationKey: string;
  readonly keyId: string;
  readonly teamId: string;
  /** Bundle ids the key may push to (apns-topic). */
  readonly topics: readonly string[];
}

/** One notification APNs accepted. */
export interface ApnsDelivery {
  readonly deviceToken: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly payload: { readonly aps: Record<string, unknown> } & Record<string, unknown>;
}

/** One request APNs refused, with the reason it gave. */
export interface ApnsRefusal {
  readonly status: number;
  readonly reason: string;
}

export interface ApnsReceiver {
  /** https://localhost:<port> */
  readonly url: string;
  readonly delivered: readonly ApnsDelivery[];
  readonly refused: readonly ApnsRefusal[];
  readonly faults: FaultScript;
  close(): Promise<void>;
}

const PUSH_TYPES = new Set([
  'alert',
  'background',
  'location',
  'voip',
  'complication',
  'fileprovider',
  'mdm',
  'liveactivity',
  'pushtotalk',
  'widgets',
]);
const MAX_PAYLOAD_BYTES = 4096;
const MAX_COLLAPSE_ID_BYTES = 64;
/** Apple refuses provider tokens older than one hour. */
const TOKEN_MAX_AGE_S = 3600;
const REASON_BY_STATUS: Readonly<Record<number, string>> = {
  410: 'Unregistered',
  429: 'TooManyRequests',
  500: 'InternalServerError',
  503: 'ServiceUnavailable',
};

class Refusal extends Error {
  constructor(
    readonly status: number,
    readonly reason: string,
  ) {
    super(reason);
  }
}

/**
 * A local APNs: HTTP/2 over TLS, `POST /3/device/<token>`, checked against Apple's documented
 * request contract (headers, JSON payload with `aps`, ES256 provider token with kid/iss/iat)
 * and answering with APNs status codes and `{"reason": ...}` documents.
 */
export async function startApnsReceiver(options: ApnsReceiverOptions): Promise<ApnsReceiver> {
  const publicKey: KeyObject = createPublicKey(options.verificationKey);
  const delivered: ApnsDelivery[] = [];
  const refused: ApnsRefusal[] = [];
  const faults = new FaultScript();
  const sessions = new Set<Http2Session>();
  const server = createSecureServer({ cert: options.tls.cert, key: options.tls.key });
  server.on('session', (session) => {
    sessions.add(session);
    session.on('close', () => sessions.delete(session));
  });
  server.on('request', (req: Http2ServerRequest, res: Http2ServerResponse) => {
    void handle(req, res);
  });

  async function handle(req: Http2ServerRequest, res: Http2ServerResponse): Promise<void> {
    const apnsId = headerValue(req, 'apns-id') ?? randomUUID();
    const body = await readBody(req);
    try {
      const delivery = verifyRequest(req, body);
      if (faults.isGone(delivery.deviceToken)) throw new Refusal(410, 'Unregistered');
      const fault = faults.take();
      if (fault?.kind === 'hang') return;
      if (fault?.kind === 'status') {
        if (fault.retryAfter !== undefined) res.setHeader('retry-after', fault.retryAfter);
        throw new Refusal(fault.status, REASON_BY_STATUS[fault.status] ?? 'InternalServerError');
      }
      delivered.push(delivery);
      res.writeHead(200, { 'apns-id': apnsId });
      res.end();
    } catch (err) {
      if (!(err instanceof Refusal)) throw err;
      refused.push({ status: err.status, reason: err.reason });
      const document: Record<string, unknown> = { reason: err.reason };
      if (err.status === 410) document['timestamp'] = Date.now();
      res.writeHead(err.status, { 'apns-id': apnsId, 'content-type': 'application/json' });
      res.end(JSON.stringify(document));
    }
  }

  function verifyRequest(req: Http2ServerRequest, body: Buffer): ApnsDelivery {
    if (req.method !== 'POST') throw new Refusal(405, 'MethodNotAllowed');
    const match = /^\/3\/device\/([^/]+)$/.exec(req.url);
    if (!match) throw new Refusal(404, 'BadPath');
    const deviceToken = match[1]!;
    if (!/^(?:[0-9a-fA-F]{2}){32,100}$/.test(deviceToken)) throw new Refusal(400, 'BadDeviceToken');

    verifyProviderToken(headerValue(req, 'authorization'));

    const topic = headerValue(req, 'apns-topic');
    if (topic === undefined) throw new Refusal(400, 'MissingTopic');
    if (!options.topics.includes(topic)) throw new Refusal(400, 'TopicDisallowed');
    const pushType = headerValue(req, 'apns-push-type');
    if (pushType === undefined || !PUSH_TYPES.has(pushType))
      throw new Refusal(400, 'InvalidPushType');
    const priority = headerValue(req, 'apns-priority');
    if (priority !== undefined && !['1', '5', '10'].includes(priority))
      throw new Refusal(400, 'BadPriority');
    if (pushType === 'background' && priority === '10') throw new Refusal(400, 'BadPriority');
    const collapseId = headerValue(req, 'apns-collapse-id');
    if (collapseId !== undefined && Buffer.byteLength(collapseId) > MAX_COLLAPSE_ID_BYTES) {
      throw new Refusal(400, 'BadCollapseId');
    }
    const expiration = headerValue(req, 'apns-expiration');
    if (expiration !== undefined && !/^\d+$/.test(expiration))
      throw new Refusal(400, 'BadExpirationDate');
    const apnsId = headerValue(req, 'apns-id');
    if (
      apnsId !== undefined &&
      !/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(apnsId)
    ) {
      throw new Refusal(400, 'BadMessageId');
    }

    if (body.length === 0) throw new Refusal(400, 'PayloadEmpty');
    if (body.length > MAX_PAYLOAD_BYTES) throw new Refusal(413, 'PayloadTooLarge');
    const payload = parseObject(body);
    const aps = payload?.['aps'];
    if (payload === undefined || typeof aps !== 'object' || aps === null || Array.isArray(aps)) {
      throw new Refusal(400, 'PayloadEmpty');
    }
    const apsFields = aps as Record<string, unknown>;
    if (
      pushType === 'alert' &&
      !('alert' in apsFields || 'badge' in apsFields || 'sound' in apsFields)
    ) {
      throw new Refusal(400, 'PayloadEmpty');
    }
    if ('badge' in apsFields && !Number.isInteger(apsFields['badge']))
      throw new Refusal(400, 'PayloadEmpty');

    const headers: Record<string, string> = {};
    for (const name of [
      'apns-topic',
      'apns-push-type',
      'apns-priority',
      'apns-collapse-id',
      'apns-expiration',
    ]) {
      const v = headerValue(req, name);
      if (v !== undefined) headers[name] = v;
    }
    return { deviceToken, headers, payload: payload as ApnsDelivery['payload'] };
  }

  function verifyProviderToken(authorization: string | undefined): void {
    const bearer =
      authorization === undefined ? undefined : /^bearer (.+)$/i.exec(authorization)?.[1];
    if (bearer === undefined) throw new Refusal(403, 'MissingProviderToken');
    let claims: Record<string, unknown>;
    try {
      const jwt = verifyJwt(bearer, publicKey, 'ES256');
      if (jwt.header['kid'] !== options.keyId) throw new JwtRejected('kid');
      claims = jwt.claims;
    } catch (err) {
      if (err instanceof JwtRejected) throw new Refusal(403, 'InvalidProviderToken');
      throw err;
    }
    if (claims['iss'] !== options.teamId) throw new Refusal(403, 'InvalidProviderToken');
    const iat = claims['iat'];
    if (typeof iat !== 'number' || iat > nowSeconds() + 60)
      throw new Refusal(403, 'InvalidProviderToken');
    if (nowSeconds() - iat > TOKEN_MAX_AGE_S) throw new Refusal(403, 'ExpiredProviderToken');
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `https://localhost:${port}`,
    delivered,
    refused,
    faults,
    async close(): Promise<void> {
      for (const session of sessions) session.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function headerValue(req: Http2ServerRequest, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function parseObject(body: Buffer): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(body.toString('utf8'));
    return typeof value === 'object' && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}
