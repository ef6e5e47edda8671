/**
 * The node's internal listener, for operators and the cluster's own tools only: `/metrics`
 * (Prometheus), `/v1/stats` (the registry's dashboard, chatctl) and `/v1/owners` (which node
 * owns whom; tests and the bench). It binds its own address (CHAT_INTERNAL_HOST, loopback by
 * default), so none of this is reachable from where clients connect.
 */
import type { Logger } from 'pino';
import type { TemplatedApp } from 'uWebSockets.js';
import type { ChatNode } from './chat-node';
import { loadNativeUws } from './uws';
import type { ListenOptions, RunningServer } from './uws-http';
import { answerLater, listenWithRetry, refuse } from './uws-http';

/** Most user ids one `/v1/owners` request may ask about. */
const MAX_OWNER_QUERY = 1000;

export interface InternalEndpoints {
  /** `GET /metrics`: Prometheus text format; 404 when absent. */
  readonly metrics?: { readonly contentType: string; scrape(): Promise<string> };
}

/** @example const internal = await startInternalServer(node, { host, port, listenRetryMs }, log, { metrics }); */
export function startInternalServer(
  node: Pick<ChatNode, 'stats' | 'owners' | 'pushFigures'>,
  options: ListenOptions,
  log: Logger,
  endpoints: InternalEndpoints = {},
): Promise<RunningServer> {
  const uws = loadNativeUws();
  const app: TemplatedApp = uws.App();
  const { metrics } = endpoints;
  if (metrics !== undefined) {
    app.get('/metrics', (res) =>
      answerLater(res, log, async () => ({
        status: '200 OK',
        contentType: metrics.contentType,
        body: await metrics.scrape(),
      })),
    );
  }
  app.get('/v1/stats', (res) => {
    const memory = process.memoryUsage();
    const body = JSON.stringify({
      ...node.stats(),
      push: node.pushFigures(),
      rssBytes: memory.rss,
      heapUsedBytes: memory.heapUsed,
      externalBytes: memory.external,
    });
    res.cork(() => res.writeHeader('content-type', 'application/json').end(body));
  });
  app.get('/v1/owners', (res, req) => {
    const users = (new URLSearchParams(req.getQuery() ?? '').get('users') ?? '')
      .split(',')
      .filter((u) => u !== '')
      .slice(0, MAX_OWNER_QUERY);
    const body = JSON.stringify(node.owners(users));
    res.cork(() => res.writeHeader('content-type', 'application/json').end(body));
  });
  app.any('/*', (res) => refuse(res, 404, 'Not Found'));
  return listenWithRetry(uws, app, options, log);
}
