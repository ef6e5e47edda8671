/**
 * `GET /v1/dashboard/stream`: the dashboard's server-sent events (format:
 * `@chat/protocol/dashboard-feed`). One state is made per update and written to every open
 * stream; updates are coalesced to at most one per `minIntervalMs`. The nodes are polled only
 * while at least one stream is open.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ClusterChange, ClusterSnapshot, Disposer, TrustedProxies } from '@chat/cluster';
import { clientAddress, NO_TRUSTED_PROXIES, RouteTable } from '@chat/cluster';
import type { DashboardRing, DashboardState } from '@chat/protocol/dashboard-feed';
import type { Logger } from 'pino';
import { RingPictures, dashboardState } from './dashboard';
import type { FetchJson } from './node-figures';
import { NodeFiguresPoller } from './node-figures';

/** The part of a ClusterView the stream reads. */
export interface DashboardSource {
  readonly snapshot: ClusterSnapshot;
  onChange(listener: (change: ClusterChange) => void): Disposer;
}

export interface DashboardStreamOptions {
  readonly source: DashboardSource;
  readonly log?: Logger;
  /** How the nodes' `/v1/stats` are fetched (default: global fetch). */
  readonly fetchJson?: FetchJson;
  readonly now?: () => number;
  /** Least time between two states (default 250 ms: at most 4 per second). */
  readonly minIntervalMs?: number;
  /** A comment line this often keeps proxies from closing an idle stream (default 15 s). */
  readonly keepAliveMs?: number;
  /** Between two polls of the nodes' stats (default 1000 ms). */
  readonly pollIntervalMs?: number;
  /** Per-node answer timeout of a poll (default 800 ms). */
  readonly pollTimeoutMs?: number;
  /** Open streams allowed at once; more get 503 (default 64). */
  readonly maxClients?: number;
  /**
   * Open streams allowed at once from one client address; more get 429 (default 4), so that
   * one client cannot take every slot of `maxClients`.
   */
  readonly maxClientsPerAddress?: number;
  /** Proxies (the TLS edge) whose X-Forwarded-For says which client a stream is for. */
  readonly trustedProxies?: TrustedProxies;
  /**
   * A client whose socket buffer stays full this long is disconnected (default 10 s): one that
   * never reads would otherwise hold a slot for good. A live page reconnects by itself.
   */
  readonly congestedTimeoutMs?: number;
}

/** An open stream. `res` is never written after its `close` event. */
interface Client {
  readonly res: ServerResponse;
  /** The peer address it counts against. */
  readonly address: string;
  /** The ring key last written to it; the ring is written again only when it changes. */
  ringKey: string | undefined;
  /** Its socket buffer is full: skip states until it drains, then send the latest. */
  congested: boolean;
  /** Disconnects it unless it drains first; set while congested. */
  congestedTimer: NodeJS.Timeout | undefined;
  closed: boolean;
}

/** How long an EventSource waits before reconnecting (the `retry:` field). */
const RECONNECT_MS = 1000;

function event(name: string, data: unknown): string {
  return `event: ${name}\ndata: ${JSON.stringify(data)}\n\n`;
}

/**
 * @example
 * const stream = new DashboardStream({ source: view, log });
 * // in the request handler:
 * if (path === '/v1/dashboard/stream') return stream.attach(req, res);
 * // on shutdown, before server.close():
 * stream.close();
 */
export class DashboardStream {
  private readonly clients = new Set<Client>();
  /** Open streams per client address. */
  private readonly perAddress = new Map<string, number>();
  private readonly pictures = new RingPictures();
  private readonly poller: NodeFiguresPoller;
  private readonly now: () => number;
  private readonly minIntervalMs: number;
  private readonly keepAliveMs: number;
  private readonly maxClients: number;
  private readonly maxClientsPerAddress: number;
  private readonly trustedProxies: TrustedProxies;
  private readonly congestedTimeoutMs: number;
  private readonly dispose: Disposer;
  private table: RouteTable;
  private tableOf: ClusterSnapshot;
  private flushTimer: NodeJS.Timeout | undefined;
  private keepAliveTimer: NodeJS.Timeout | undefined;
  private lastFlushAt = Number.NEGATIVE_INFINITY;
  /** The last ring event, serialised once (~100 KB) for every client that needs it. */
  private ringEvent: { readonly key: string; readonly text: string } | undefined;
  private closed = false;

  constructor(private readonly options: DashboardStreamOptions) {
    this.now = options.now ?? Date.now;
    this.minIntervalMs = options.minIntervalMs ?? 250;
    this.keepAliveMs = options.keepAliveMs ?? 15_000;
    this.maxClients = options.maxClients ?? 64;
    this.maxClientsPerAddress = options.maxClientsPerAddress ?? 4;
    this.trustedProxies = options.trustedProxies ?? NO_TRUSTED_PROXIES;
    this.congestedTimeoutMs = options.congestedTimeoutMs ?? 10_000;
    this.tableOf = options.source.snapshot;
    this.table = RouteTable.from(this.tableOf);
    this.poller = new NodeFiguresPoller({
      nodes: () => options.source.snapshot.nodes.values(),
      onUpdate: () => this.schedule(),
      now: this.now,
      ...(options.fetchJson ? { fetchJson: options.fetchJson } : {}),
      ...(options.pollIntervalMs ? { intervalMs: options.pollIntervalMs } : {}),
      ...(options.pollTimeoutMs ? { timeoutMs: options.pollTimeoutMs } : {}),
      ...(options.log ? { log: options.log } : {}),
    });
    this.dispose = options.source.onChange(() => this.schedule());
  }

  /** Open streams. */
  get size(): number {
    return this.clients.size;
  }

  /** Whether the nodes are being polled (exactly while a stream is open). */
  get polling(): boolean {
    return this.poller.isRunning;
  }

  /**
   * Answers a request with the stream: headers, the ring and the current state at once, then
   * updates until the client goes away or {@link close} is called.
   */
  attach(req: IncomingMessage, res: ServerResponse): void {
    if (this.closed || this.clients.size >= this.maxClients) {
      res
        .writeHead(503, {
          'content-type': 'application/json',
          'x-content-type-options': 'nosniff',
          'retry-after': '5',
        })
        .end(JSON.stringify({ error: 'UNAVAILABLE', message: 'too many dashboards open' }));
      return;
    }
    const forwardedFor = req.headers['x-forwarded-for'];
    const address = clientAddress(
      req.socket.remoteAddress ?? '',
      Array.isArray(forwardedFor) ? forwardedFor.join(',') : (forwardedFor ?? ''),
      this.trustedProxies,
    );
    const fromAddress = this.perAddress.get(address) ?? 0;
    if (fromAddress >= this.maxClientsPerAddress) {
      res
        .writeHead(429, {
          'content-type': 'application/json',
          'x-content-type-options': 'nosniff',
          'retry-after': '5',
        })
        .end(
          JSON.stringify({
            error: 'RATE_LIMITED',
            message: 'too many dashboards open from this address',
          }),
        );
      return;
    }
    this.perAddress.set(address, fromAddress + 1);
    const client: Client = {
      res,
      address,
      ringKey: undefined,
      congested: false,
      congestedTimer: undefined,
      closed: false,
    };
    this.clients.add(client);
    const gone = (): void => this.detach(client);
    res.on('close', gone);
    req.on('close', gone);
    res.on('drain', () => {
      if (client.closed || !client.congested) return;
      client.congested = false;
      clearTimeout(client.congestedTimer);
      client.congestedTimer = undefined;
      this.send(client, this.currentState());
    });
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      // Proxies such as nginx would otherwise hold events back in their buffers.
      'x-accel-buffering': 'no',
      'x-content-type-options': 'nosniff',
    });
    this.write(client, `retry: ${RECONNECT_MS}\n\n`);
    this.send(client, this.currentState());
    if (this.clients.size === 1) this.firstOpened();
  }

  /**
   * Ends every stream and stops polling; later requests get 503. Idempotent. The sockets are
   * destroyed rather than ended: ending waits for a client that does not read, and would keep
   * `server.close()` from finishing. Pages reconnect by themselves.
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.dispose();
    for (const client of [...this.clients]) {
      this.detach(client);
      client.res.destroy();
    }
    this.stopTimers();
  }

  private firstOpened(): void {
    this.poller.start();
    this.keepAliveTimer = setInterval(() => {
      for (const client of this.clients)
        if (!client.congested) this.write(client, ': keep-alive\n\n');
    }, this.keepAliveMs);
    this.keepAliveTimer.unref();
  }

  private detach(client: Client): void {
    if (client.closed) return;
    client.closed = true;
    clearTimeout(client.congestedTimer);
    client.congestedTimer = undefined;
    this.clients.delete(client);
    const left = (this.perAddress.get(client.address) ?? 1) - 1;
    if (left > 0) this.perAddress.set(client.address, left);
    else this.perAddress.delete(client.address);
    if (this.clients.size === 0) this.stopTimers();
  }

  private stopTimers(): void {
    this.poller.stop();
    if (this.keepAliveTimer !== undefined) clearInterval(this.keepAliveTimer);
    this.keepAliveTimer = undefined;
    if (this.flushTimer !== undefined) clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
  }

  /** Something changed: send a state now, or when `minIntervalMs` has passed since the last. */
  private schedule(): void {
    if (this.closed || this.clients.size === 0 || this.flushTimer !== undefined) return;
    const wait = Math.max(0, this.lastFlushAt + this.minIntervalMs - this.now());
    this.flushTimer = setTimeout(() => this.flush(), wait);
    this.flushTimer.unref();
  }

  private flush(): void {
    this.flushTimer = undefined;
    this.lastFlushAt = this.now();
    const current = this.currentState();
    for (const client of [...this.clients]) if (!client.congested) this.send(client, current);
  }

  private currentState(): {
    ring: DashboardRing;
    ringText: string;
    state: DashboardState;
    text: string;
  } {
    const snapshot = this.options.source.snapshot;
    if (snapshot !== this.tableOf) {
      this.tableOf = snapshot;
      this.table = RouteTable.from(snapshot);
    }
    const picture = this.pictures.of(this.table);
    const state = dashboardState({
      snapshot,
      table: this.table,
      picture,
      figures: this.poller.figures(),
      polledAt: this.poller.polledAt,
      now: this.now(),
    });
    if (this.ringEvent?.key !== picture.ring.key)
      this.ringEvent = { key: picture.ring.key, text: event('ring', picture.ring) };
    return {
      ring: picture.ring,
      ringText: this.ringEvent.text,
      state,
      text: event('state', state),
    };
  }

  private send(client: Client, current: ReturnType<DashboardStream['currentState']>): void {
    if (client.ringKey !== current.ring.key) {
      client.ringKey = current.ring.key;
      if (!this.write(client, current.ringText)) return;
    }
    this.write(client, current.text);
  }

  /** Writes unless the stream is gone; false when it is gone or its buffer is full. */
  private write(client: Client, text: string): boolean {
    const res = client.res;
    if (client.closed || res.writableEnded || res.destroyed) {
      this.detach(client);
      return false;
    }
    const ok = res.write(text);
    if (!ok && !client.congested) {
      client.congested = true;
      client.congestedTimer = setTimeout(() => {
        this.options.log?.warn('dashboard stream not read for too long: disconnected');
        this.detach(client);
        res.destroy();
      }, this.congestedTimeoutMs);
      client.congestedTimer.unref();
    }
    return ok;
  }
}
