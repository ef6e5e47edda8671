/**
 * The registry's Prometheus metrics (prom-client, its own Registry): requests by route and
 * status, and the ring it routes by, read from the route table when scraped.
 *
 * @example
 * const metrics = new RegistryMetrics();
 * metrics.bind(() => table);
 */
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { RouteTable } from '@chat/cluster';
import { BUILD_INFO_LABELS, buildInfo } from '@chat/cluster';

/**
 * No label telling replicas apart: Prometheus adds `instance` (the scraped address) itself.
 */
export interface RegistryMetricsOptions {
  /** Also export prom-client's process and Node.js runtime metrics (default true). */
  readonly defaultMetrics?: boolean;
}

/** Routes counted by name; anything else is `other`, so a scan cannot blow up the label set. */
const ROUTES = new Set([
  '/v1/route',
  '/v1/ring',
  '/v1/dev/token',
  '/v1/dashboard/stream',
  '/healthz',
  '/readyz',
  '/metrics',
]);

export class RegistryMetrics {
  readonly registry = new Registry();
  private readonly requests: Counter<'route' | 'status'>;
  private table: (() => RouteTable) | undefined;

  constructor(options: RegistryMetricsOptions = {}) {
    const registers = [this.registry];
    if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry });
    new Gauge({
      name: 'chat_build_info',
      help: 'always 1; the labels say which release, Node.js and protocol this registry runs',
      labelNames: BUILD_INFO_LABELS,
      registers,
    }).set(buildInfo(), 1);
    const table = (): RouteTable | undefined => this.table?.();
    this.requests = new Counter({
      name: 'chat_registry_requests_total',
      help: 'HTTP requests answered, by route and status',
      labelNames: ['route', 'status'],
      registers,
    });
    new Gauge({
      name: 'chat_registry_ring_epoch',
      help: 'ring epoch the registry routes by (0 when no ring is configured)',
      registers,
      collect() {
        this.set(table()?.epoch ?? 0);
      },
    });
    new Gauge({
      name: 'chat_registry_live_members',
      help: 'ring members that are alive: the nodes users are routed to',
      registers,
      collect() {
        this.set(table()?.members.length ?? 0);
      },
    });
    new Gauge({
      name: 'chat_registry_live_nodes',
      help: 'chat nodes registered in etcd (members or not)',
      registers,
      collect() {
        this.set(table()?.nodes.size ?? 0);
      },
    });
  }

  /** Where the ring gauges read from. */
  bind(table: () => RouteTable): void {
    this.table = table;
  }

  countRequest(pathname: string, status: number): void {
    this.requests.inc({ route: ROUTES.has(pathname) ? pathname : 'other', status: String(status) });
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  scrape(): Promise<string> {
    return this.registry.metrics();
  }
}
