/**
 * Binds a ChatNode to uWebSockets.js: the upgrade (token, Origin, subprotocol), socket events,
 * and the probes (`/healthz`, `/readyz`). What only operators may see (`/metrics`, `/v1/stats`,
 * `/v1/owners`) is on the internal listener (internal-server.ts), not here.
 */
import type { Codec, Feature, TokenClaims, WireData } from '@chat/protocol';
import {
  FEATURES_PARAM,
  codecFor,
  httpStatusOf,
  isChatError,
  jsonCodec,
  parseFeatures,
} from '@chat/protocol';
import type { TemplatedApp, WebSocket } from 'uWebSockets.js';
import type { Logger } from 'pino';
import type { ChatNode } from './chat-node';
import type { Session, SocketPort } from './session';
import { loadNativeUws } from './uws';
import type { ListenOptions, RunningServer } from './uws-http';
import { answerLater, listenWithRetry, refuse } from './uws-http';

export { ListenError } from './uws-http';
export type { RunningServer } from './uws-http';

interface ConnData {
  claims: TokenClaims;
  codec: Codec;
  features: ReadonlySet<Feature>;
  port: UwsPort;
  session: Session | undefined;
}

/** SocketPort over a uWS WebSocket that is never touched after it closed. */
class UwsPort implements SocketPort {
  ws: WebSocket<ConnData> | undefined;
  closed = false;

  send(data: WireData, binary: boolean): void {
    const ws = this.ws;
    if (this.closed || ws === undefined) return;
    ws.cork(() => ws.send(data, binary));
  }

  bufferedAmount(): number {
    return this.closed || this.ws === undefined ? 0 : this.ws.getBufferedAmount();
  }

  end(code: number, reason: string): void {
    const ws = this.ws;
    if (this.closed || ws === undefined) return;
    this.closed = true;
    ws.cork(() => ws.end(code, reason));
  }
}

export interface ServerOptions extends ListenOptions {
  readonly maxFrameBytes: number;
  readonly maxBufferedBytes: number;
}

/** Operations endpoints of the public port; each answers 404 when absent. */
export interface OpsEndpoints {
  /** `GET /readyz`: 200 when ready, 503 otherwise, with the checks as JSON. */
  readonly readiness?: {
    check(): Promise<{
      readonly ready: boolean;
      readonly checks: Readonly<Record<string, string>>;
    }>;
  };
}

function pickCodec(header: string): Codec | undefined {
  if (header === '') return jsonCodec;
  for (const name of header.split(',')) {
    const codec = codecFor(name.trim());
    if (codec !== undefined) return codec;
  }
  return undefined;
}

function tokenFrom(query: string, authorization: string): string | undefined {
  const fromQuery = new URLSearchParams(query).get('token');
  if (fromQuery !== null) return fromQuery;
  const bearer = /^Bearer\s+(.+)$/i.exec(authorization);
  return bearer?.[1];
}

export function startServer(
  node: ChatNode,
  options: ServerOptions,
  log: Logger,
  ops: OpsEndpoints = {},
): Promise<RunningServer> {
  const uws = loadNativeUws();
  const app: TemplatedApp = uws.App();

  app.ws<ConnData>('/ws', {
    compression: uws.DISABLED,
    // Frames up to 4x the protocol limit reach the decoder, which answers TOO_LARGE; beyond
    // that uWS closes the connection itself.
    maxPayloadLength: options.maxFrameBytes * 4,
    // Pushes stop at maxBufferedBytes (Session); only a client that ignores that and keeps
    // requesting without reading ever reaches this hard bound, and is disconnected.
    maxBackpressure: options.maxBufferedBytes * 4,
    closeOnBackpressureLimit: 1,
    // Heartbeats are the node's own ping/pong frames, carrying the latest seq.
    idleTimeout: 0,
    sendPingsAutomatically: false,

    upgrade(res, req, context) {
      const origin = req.getHeader('origin');
      const protocolHeader = req.getHeader('sec-websocket-protocol');
      const token = tokenFrom(req.getQuery() ?? '', req.getHeader('authorization'));
      const key = req.getHeader('sec-websocket-key');
      const extensions = req.getHeader('sec-websocket-extensions');
      if (!node.isOriginAllowed(origin)) return refuse(res, 403, 'Forbidden');
      const codec = pickCodec(protocolHeader);
      if (codec === undefined) return refuse(res, 400, 'Bad Request');
      let claims: TokenClaims;
      try {
        claims = node.authenticate(token);
      } catch (err) {
        const code = isChatError(err) ? err.code : 'UNAUTHORIZED';
        return refuse(res, httpStatusOf[code], 'Unauthorized');
      }
      // Admission after authentication, so anonymous junk cannot use up the budget. The node's
      // own budget answers 503; one user's or one address's answers 429 (theirs alone).
      const peer = Buffer.from(res.getRemoteAddressAsText()).toString();
      const verdict = node.admit(claims.sub, peer, req.getHeader('x-forwarded-for'));
      if (verdict.scope !== undefined) {
        const retryAfter = { 'Retry-After': String(verdict.retryAfterSec) };
        return verdict.scope === 'node'
          ? refuse(res, 503, 'Service Unavailable', retryAfter)
          : refuse(res, 429, 'Too Many Requests', retryAfter);
      }
      const features = parseFeatures(new URLSearchParams(req.getQuery() ?? '').get(FEATURES_PARAM));
      const data: ConnData = { claims, codec, features, port: new UwsPort(), session: undefined };
      res.upgrade(data, key, protocolHeader === '' ? '' : codec.subprotocol, extensions, context);
    },
    open(ws) {
      const data = ws.getUserData();
      data.port.ws = ws;
      data.session = node.open(data.claims, data.codec, data.port, data.features);
    },
    message(ws, message, isBinary) {
      const { session } = ws.getUserData();
      if (session !== undefined) node.onMessage(session, message, isBinary);
    },
    drain(ws) {
      const { session } = ws.getUserData();
      if (session !== undefined) node.onDrain(session);
    },
    close(ws, code) {
      const data = ws.getUserData();
      data.port.closed = true;
      data.port.ws = undefined;
      if (data.session !== undefined) node.onClose(data.session, code);
    },
  });

  app.get('/healthz', (res) => {
    res.cork(() => res.writeHeader('content-type', 'application/json').end('{"ok":true}'));
  });
  const { readiness } = ops;
  if (readiness !== undefined) {
    app.get('/readyz', (res) =>
      answerLater(res, log, async () => {
        const { ready, checks } = await readiness.check();
        return {
          status: ready ? '200 OK' : '503 Service Unavailable',
          contentType: 'application/json',
          body: JSON.stringify({ ready, checks }),
        };
      }),
    );
  }
  app.any('/*', (res) => refuse(res, 404, 'Not Found'));

  return listenWithRetry(uws, app, options, log);
}
