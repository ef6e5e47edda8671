/**
 * The route service: answers from memory, kept current by an etcd watch. Stateless, so any
 * number of replicas can run behind a load balancer. It never proxies chat traffic.
 */
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ClusterView, TrustedProxies } from '@chat/cluster';
import { RouteTable } from '@chat/cluster';
import { signToken } from '@chat/protocol';
import { DASHBOARD_STREAM_PATH } from '@chat/protocol/dashboard-feed';
import type { WebAssets } from '@chat/web';
import type { Logger } from 'pino';
import { DashboardStream } from './dashboard-stream';
import { isOperatorToken, presentedToken } from './operator-token';
import type { FetchJson } from './node-figures';
import type { RegistryMetrics } from './metrics';
import type { HttpAnswer } from './routes';
import { VAPID_PUBLIC_KEY_PATH, ringAnswer, routeAnswer, vapidPublicKeyAnswer } from './routes';

export interface RegistryOptions {
  /** Where routes come from: a ClusterView (the part of it read here). */
  readonly view: Pick<ClusterView, 'snapshot' | 'onChange'>;
  readonly host: string;
  readonly port: number;
  readonly log: Logger;
  /** When set, `GET /v1/dev/token?user=&device=` mints device tokens: local runs only. */
  readonly devTokenSecret?: string;
  /**
   * Served at `GET /metrics` on the internal listener and fed with every request; no internal
   * listener without it.
   */
  readonly metrics?: RegistryMetrics;
  /** Interface of the internal listener (`/metrics`); default loopback. */
  readonly internalHost?: string;
  /** Port of the internal listener; 0 (the default) picks a free one. */
  readonly internalPort?: number;
  /**
   * When set, the dashboard page and its event stream answer 401 unless the request presents
   * this token (`?token=` or `Authorization: Bearer`); without it they are open (local runs).
   */
  readonly operatorToken?: string;
  /** Dashboard streams one client address may hold open at once (default 4). */
  readonly dashboardStreamsPerAddress?: number;
  /** Proxies whose X-Forwarded-For names the address a dashboard stream counts against. */
  readonly trustedProxies?: TrustedProxies;
  /**
   * The browser pages (`/chat/`, `/dashboard/`, `/assets/...`) and the dashboard's event stream
   * (`/v1/dashboard/stream`); 404 without them.
   */
  readonly web?: WebAssets;
  /**
   * The TLS edge's public origin (CHAT_EDGE_URL): routes then name `wss://<edge>/n/<node>/ws`
   * instead of the nodes' own URLs.
   */
  readonly edgeOrigin?: string;
  /**
   * The nodes' VAPID public key, served at `/v1/push/vapid-public-key` for the chat page's
   * "notify me"; that path answers 404 without it.
   */
  readonly webPushPublicKey?: string;
  /** How the dashboard asks nodes for `/v1/stats` (default: global fetch); for tests. */
  readonly fetchJson?: FetchJson;
}

export interface RunningRegistry {
  readonly port: number;
  readonly url: string;
  /** The internal listener (`/metrics`), when metrics are on. */
  readonly internalUrl: string | undefined;
  /** From now on `/readyz` answers 503, so load balancers stop sending requests here. */
  markStopping(): void;
  close(): Promise<void>;
}

const DEV_TOKEN_TTL_SEC = 24 * 3600;

export async function startRegistry(options: RegistryOptions): Promise<RunningRegistry> {
  let table = RouteTable.from(options.view.snapshot);
  const dispose = options.view.onChange(({ snapshot }) => {
    table = RouteTable.from(snapshot);
  });
  options.metrics?.bind(() => table);
  let stopping = false;
  const dashboard =
    options.web === undefined
      ? undefined
      : new DashboardStream({
          source: options.view,
          log: options.log.child({ component: 'dashboard' }),
          ...(options.dashboardStreamsPerAddress
            ? { maxClientsPerAddress: options.dashboardStreamsPerAddress }
            : {}),
          ...(options.fetchJson ? { fetchJson: options.fetchJson } : {}),
          ...(options.trustedProxies ? { trustedProxies: options.trustedProxies } : {}),
        });

  const answer = (method: string | undefined, url: URL): HttpAnswer => {
    if (method !== 'GET')
      return { status: 405, body: { error: 'BAD_REQUEST', message: 'only GET' } };
    switch (url.pathname) {
      case '/v1/route':
        return routeAnswer(table, url.searchParams.get('user'), options.edgeOrigin);
      case '/v1/ring':
        return ringAnswer(table, options.view.snapshot.ring?.config.members ?? []);
      case VAPID_PUBLIC_KEY_PATH:
        return vapidPublicKeyAnswer(options.webPushPublicKey);
      case '/healthz':
        return { status: 200, body: { ok: true, revision: options.view.snapshot.revision } };
      case '/readyz': {
        // Routes are answered from memory: ready once the cluster state was read, until stop.
        const loaded = options.view.snapshot.revision > 0;
        const ready = loaded && !stopping;
        const reason = stopping ? 'shutting down' : 'cluster state not read from etcd yet';
        return {
          status: ready ? 200 : 503,
          body: ready
            ? { ready, epoch: table.epoch, liveMembers: table.members.length }
            : { ready, reason },
        };
      }
      case '/v1/dev/token':
        return devToken(
          options.devTokenSecret,
          url.searchParams.get('user'),
          url.searchParams.get('device'),
        );
      default:
        return { status: 404, body: { error: 'NOT_FOUND', message: `no route ${url.pathname}` } };
    }
  };

  const sendJson = (res: ServerResponse, reply: HttpAnswer): void => {
    res.writeHead(reply.status, {
      'content-type': 'application/json',
      'x-content-type-options': 'nosniff',
      // Browser clients ask the registry from their own origin.
      'access-control-allow-origin': '*',
      'cache-control': 'no-store',
      ...reply.headers,
    });
    res.end(JSON.stringify(reply.body));
  };

  const handle = (req: IncomingMessage, res: ServerResponse, url: URL): void => {
    const metrics = options.metrics;
    const get = req.method === 'GET';
    const operatorToken = options.operatorToken;
    if (
      operatorToken !== undefined &&
      OPERATOR_PATHS.has(url.pathname) &&
      !isOperatorToken(operatorToken, presentedToken(req, url))
    ) {
      const reply: HttpAnswer = {
        status: 401,
        body: { error: 'UNAUTHORIZED', message: 'the dashboard needs the operator token' },
        headers: { 'www-authenticate': 'Bearer realm="dashboard"' },
      };
      sendJson(res, reply);
      metrics?.countRequest(url.pathname, reply.status);
      return;
    }
    if (dashboard !== undefined && get && url.pathname === DASHBOARD_STREAM_PATH) {
      dashboard.attach(req, res);
      metrics?.countRequest(DASHBOARD_STREAM_PATH, res.statusCode);
      return;
    }
    const asset = get ? webAsset(options.web, url.pathname, options.devTokenSecret) : undefined;
    if (asset !== undefined) {
      res.writeHead(asset.status, asset.headers).end(asset.body);
      metrics?.countRequest(url.pathname, asset.status);
      return;
    }
    const reply = answer(req.method, url);
    sendJson(res, reply);
    metrics?.countRequest(url.pathname, reply.status);
  };

  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let url: URL;
    try {
      // Node passes the request target as sent: `//[` and the like do not parse.
      url = new URL(req.url ?? '/', 'http://registry');
    } catch {
      sendJson(res, {
        status: 400,
        body: { error: 'BAD_REQUEST', message: 'malformed request target' },
      });
      options.metrics?.countRequest('', 400);
      return;
    }
    try {
      handle(req, res, url);
    } catch (err) {
      // A throw here would otherwise end the process: answer this request, keep serving.
      options.log.error({ err }, 'request failed');
      if (res.headersSent) res.destroy();
      else sendJson(res, { status: 500, body: { error: 'INTERNAL', message: 'internal error' } });
      options.metrics?.countRequest(url.pathname, 500);
    }
  });
  await listen(server, options.host, options.port);
  const internal =
    options.metrics === undefined
      ? undefined
      : await startInternalListener(
          options.metrics,
          options.internalHost ?? '127.0.0.1',
          options.internalPort ?? 0,
          options.log,
        ).catch((err: unknown) => {
          server.close();
          throw err;
        });
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    url: `http://${options.host}:${port}`,
    internalUrl: internal?.url,
    markStopping: () => {
      stopping = true;
    },
    close: async () => {
      dispose();
      // Open event streams would otherwise keep server.close() waiting forever.
      dashboard?.close();
      await Promise.all(
        [server, internal?.server].map(
          (s) => new Promise<void>((resolve) => (s ? s.close(() => resolve()) : resolve())),
        ),
      );
    },
  };
}

/** What the operator token guards: the dashboard page and its stream. */
const OPERATOR_PATHS: ReadonlySet<string> = new Set(['/dashboard/', DASHBOARD_STREAM_PATH]);

function listen(server: Server, host: string, port: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
}

/**
 * The registry's internal listener: `GET /metrics` only, on its own address (loopback by
 * default), so that the public port shows nothing an operator alone should see.
 */
async function startInternalListener(
  metrics: RegistryMetrics,
  host: string,
  port: number,
  log: Logger,
): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"NOT_FOUND"}');
      return;
    }
    metrics.countRequest('/metrics', 200);
    metrics.scrape().then(
      (text) => res.writeHead(200, { 'content-type': metrics.contentType }).end(text),
      (err: unknown) => {
        log.error({ err }, 'metrics failed');
        res.writeHead(500).end();
      },
    );
  });
  await listen(server, host, port);
  const bound = (server.address() as AddressInfo).port;
  return { server, url: `http://${host.includes(':') ? `[${host}]` : host}:${bound}` };
}

function devToken(
  secret: string | undefined,
  user: string | null,
  device: string | null,
): HttpAnswer {
  if (secret === undefined)
    return { status: 404, body: { error: 'NOT_FOUND', message: 'dev tokens are off' } };
  try {
    const token = signToken(
      {
        sub: user ?? '',
        dev: device ?? '',
        iat: Math.floor(Date.now() / 1000),
        exp: Math.floor(Date.now() / 1000) + DEV_TOKEN_TTL_SEC,
      },
      secret,
    );
    return { status: 200, body: { token } };
  } catch {
    return {
      status: 400,
      body: {
        error: 'BAD_REQUEST',
        message: 'user and device must be 1-64 characters of [A-Za-z0-9._-]',
      },
    };
  }
}

/**
 * A page or bundle of the web UI, a redirect from `/`, or undefined. `/` leads to the chat page
 * only when it can sign in (dev tokens on), else to the dashboard.
 */
function webAsset(
  web: WebAssets | undefined,
  path: string,
  devTokenSecret: string | undefined,
): { status: number; headers: Record<string, string>; body?: Buffer } | undefined {
  if (web === undefined) return undefined;
  if (path === '/') {
    const location = devTokenSecret === undefined ? '/dashboard/' : '/chat/';
    return { status: 302, headers: { location } };
  }
  const asset = web.get(path);
  if (asset === undefined) return undefined;
  // Bundles are rebuilt on every start: revalidate instead of caching stale code.
  const headers: Record<string, string> = {
    'content-type': asset.contentType,
    'cache-control': 'no-cache',
    'x-content-type-options': 'nosniff',
  };
  if (asset.contentType.startsWith('text/html')) {
    // No framing (clickjacking). Nothing else is restricted: the chat page loads images from the
    // S3 origin and opens WebSockets to nodes on other ports.
    headers['content-security-policy'] = "frame-ancestors 'none'";
    headers['x-frame-options'] = 'DENY';
  }
  return { status: 200, headers, body: asset.body };
}
