/**
 * The chat node's Prometheus metrics (prom-client), served at `GET /metrics`. Each node owns its
 * own Registry (no global default registry). The hot path only increments counters and observes
 * histograms; gauges that describe state (connections, ring, RPC peers, drain) are read from
 * their sources when Prometheus scrapes.
 *
 * @example
 * const metrics = new NodeMetrics({ nodeId: 'node-1' });
 * metrics.bind({ local: () => node.stats() });
 * res.end(await metrics.scrape());
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { SendBatchInfo } from '@chat/store';
import { BUILD_INFO_LABELS, buildInfo } from '@chat/cluster';

/** Per-peer RPC figures, as `PeerPool.stats()` reports them (cumulative counters per client). */
export interface PeerFigures {
  readonly connected: boolean;
  readonly queued: number;
  readonly inflight: number;
  readonly errors: number;
  readonly connects: number;
}

/** Drain figures, as the drain controller publishes them. */
export interface DrainFigures {
  readonly epoch: number;
  readonly total: number;
  readonly moved: number;
  readonly remaining: number;
  readonly ratePerSec: number;
  readonly done: boolean;
}

/** Where scrape-time gauges come from; cluster sources are absent on a single node. */
export interface MetricSources {
  readonly local: () => { readonly connections: number; readonly users: number };
  readonly ring?: () => { readonly epoch: number; readonly members: number; readonly live: number };
  readonly peers?: () => Readonly<Record<string, PeerFigures>>;
  readonly drain?: () => DrainFigures | undefined;
  /** The push outbox as this node's worker last read it (issue 18); absent: push is off. */
  readonly push?: () => { readonly depth: number; readonly oldestAgeMs: number };
}

export interface NodeMetricsOptions {
  readonly nodeId: string;
  /** Also export prom-client's process and Node.js runtime metrics (default true). */
  readonly defaultMetrics?: boolean;
}

/** Latency buckets in seconds: 0.5 ms to 5 s. */
const LATENCY_BUCKETS = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
];
/** Fine enough that the bench reads useful percentiles off them (1.5x apart). */
const BATCH_SIZE_BUCKETS = [
  1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 1024,
];

export class NodeMetrics {
  readonly registry = new Registry();
  /** `send` requests acked (committed) by this node, duplicates included. */
  readonly messagesIn: Counter;
  /** Inbox events pushed to devices connected to this node (one per device). */
  readonly messagesOut: Counter;
  /** From a `send` frame's dispatch to its `ok` being written. */
  readonly sendAckSeconds: Histogram;
  /** From the event's server timestamp (stamped on the sender's node at receipt) to its push here. */
  readonly deliverSeconds: Histogram;
  readonly requestErrors: Counter<'code'>;
  readonly connectionsOpened: Counter;
  /** Users and devices told `moved` by a drain (the reconnects this node causes). */
  readonly movedUsers: Counter;
  readonly movedDevices: Counter;
  readonly pgBatchSize: Histogram<'kind'>;
  readonly pgBatchSeconds: Histogram<'kind' | 'result'>;
  /** Rows and objects the retention cleanup removed, by kind (RetentionReport's fields). */
  readonly retentionRemoved: Counter<'kind'>;
  readonly retentionPasses: Counter;
  readonly retentionPassSeconds: Histogram;
  /** 1 while the retention cleanup runs on this node (it leads, or runs alone). */
  readonly retentionActive: Gauge;
  /** Push notifications the providers accepted, by provider kind (issue 18). */
  readonly pushSent: Counter<'provider'>;
  /** Push attempts that did not go, by provider kind and reason (PushFailure). */
  readonly pushFailed: Counter<'provider' | 'reason'>;
  private sources: MetricSources | undefined;
  /** Last cumulative per-peer figures seen, to turn them into monotonic counters. */
  private readonly seenPeerErrors = new Map<string, number>();
  private readonly seenPeerConnects = new Map<string, number>();

  constructor(options: NodeMetricsOptions) {
    const registers = [this.registry];
    this.registry.setDefaultLabels({ node: options.nodeId });
    if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry });
    new Gauge({
      name: 'chat_build_info',
      help: 'always 1; the labels say which release, Node.js and protocol this node runs',
      labelNames: BUILD_INFO_LABELS,
      registers,
    }).set(buildInfo(), 1);
    const sources = (): MetricSources | undefined => this.sources;

    this.messagesIn = new Counter({
      name: 'chat_messages_in_total',
      help: 'send requests acknowledged (committed) by this node',
      registers,
    });
    this.messagesOut = new Counter({
      name: 'chat_messages_out_total',
      help: 'inbox events pushed to devices connected to this node (one per device)',
      registers,
    });
    this.sendAckSeconds = new Histogram({
      name: 'chat_send_ack_seconds',
      help: 'send request dispatch to its ok reply (includes the group commit)',
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.deliverSeconds = new Histogram({
      name: 'chat_deliver_seconds',
      help: 'event server timestamp (sender node, at receipt) to push on this node; millisecond clock, across nodes it includes clock skew',
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.requestErrors = new Counter({
      name: 'chat_request_errors_total',
      help: 'requests answered with err, by error code',
      labelNames: ['code'],
      registers,
    });
    this.connectionsOpened = new Counter({
      name: 'chat_connections_opened_total',
      help: 'WebSocket connections opened (authenticated upgrades)',
      registers,
    });
    this.movedUsers = new Counter({
      name: 'chat_moved_users_total',
      help: 'users told moved and disconnected by this node (drains and shutdown)',
      registers,
    });
    this.movedDevices = new Counter({
      name: 'chat_moved_devices_total',
      help: 'device connections closed with moved by this node; rate() = reconnects/s it causes',
      registers,
    });
    this.pgBatchSize = new Histogram({
      name: 'chat_pg_batch_size',
      help: 'items per batched store statement, by kind of batch (send: sends per group commit)',
      labelNames: ['kind'],
      buckets: BATCH_SIZE_BUCKETS,
      registers,
    });
    this.pgBatchSeconds = new Histogram({
      name: 'chat_pg_batch_seconds',
      help: 'batched store statement duration, by kind and result (committed or failed)',
      labelNames: ['kind', 'result'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.retentionRemoved = new Counter({
      name: 'chat_retention_removed_total',
      help: 'rows and objects removed by the retention cleanup on this node, by kind',
      labelNames: ['kind'],
      registers,
    });
    this.retentionPasses = new Counter({
      name: 'chat_retention_passes_total',
      help: 'retention cleanup passes completed on this node',
      registers,
    });
    this.retentionPassSeconds = new Histogram({
      name: 'chat_retention_pass_seconds',
      help: 'duration of one retention cleanup pass (pauses between batches included)',
      buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300],
      registers,
    });
    this.retentionActive = new Gauge({
      name: 'chat_retention_active',
      help: '1 while the retention cleanup runs on this node (elected, or a single node)',
      registers,
    });

    this.pushSent = new Counter({
      name: 'chat_push_sent_total',
      help: 'push notifications accepted by a provider, by provider kind',
      labelNames: ['provider'],
      registers,
    });
    this.pushFailed = new Counter({
      name: 'chat_push_failed_total',
      help: 'push attempts that did not go, by provider kind and reason (retry, gone, failed, gave_up, not_configured)',
      labelNames: ['provider', 'reason'],
      registers,
    });
    new Gauge({
      name: 'chat_push_queue_depth',
      help: 'push outbox rows with messages not notified yet (all users; read every few seconds)',
      registers,
      collect() {
        const push = sources()?.push?.();
        if (push !== undefined) this.set(push.depth);
      },
    });
    new Gauge({
      name: 'chat_push_oldest_age_seconds',
      help: 'age of the oldest push outbox entry not notified yet (0 when none)',
      registers,
      collect() {
        const push = sources()?.push?.();
        if (push !== undefined) this.set(push.oldestAgeMs / 1000);
      },
    });
    new Gauge({
      name: 'chat_connected_users',
      help: 'users with at least one device connected to this node',
      registers,
      collect() {
        const local = sources()?.local();
        if (local !== undefined) this.set(local.users);
      },
    });
    new Gauge({
      name: 'chat_connected_devices',
      help: 'device connections on this node',
      registers,
      collect() {
        const local = sources()?.local();
        if (local !== undefined) this.set(local.connections);
      },
    });
    new Gauge({
      name: 'chat_ring_epoch',
      help: 'ring epoch this node routes by (0 when there is no ring)',
      registers,
      collect() {
        this.set(sources()?.ring?.().epoch ?? 0);
      },
    });
    new Gauge({
      name: 'chat_ring_live_members',
      help: 'ring members that are alive, as this node sees them',
      registers,
      collect() {
        const ring = sources()?.ring?.();
        if (ring !== undefined) this.set(ring.live);
      },
    });
    const drainGauge = (
      name: string,
      help: string,
      pick: (d: DrainFigures) => number,
      idle = 0,
    ): void => {
      new Gauge({
        name,
        help,
        registers,
        collect() {
          const drain = sources()?.drain?.();
          this.set(drain === undefined ? idle : pick(drain));
        },
      });
    };
    drainGauge('chat_drain_users', 'users to move in the current drain', (d) => d.total);
    drainGauge('chat_drain_moved', 'users moved so far in the current drain', (d) => d.moved);
    drainGauge(
      'chat_drain_remaining',
      'users still to move in the current drain',
      (d) => d.remaining,
    );
    drainGauge(
      'chat_drain_rate',
      'configured moves per second of the current drain',
      (d) => d.ratePerSec,
    );
    drainGauge(
      'chat_drain_done',
      '1 when this node has nothing left to move',
      (d) => (d.done ? 1 : 0),
      1,
    );

    const peerGauge = (name: string, help: string, pick: (p: PeerFigures) => number): void => {
      new Gauge({
        name,
        help,
        labelNames: ['peer'],
        registers,
        collect() {
          this.reset();
          for (const [peer, figures] of Object.entries(sources()?.peers?.() ?? {}))
            this.set({ peer }, pick(figures));
        },
      });
    };
    peerGauge('chat_rpc_queue_depth', 'RPC calls waiting to be written, per peer', (p) => p.queued);
    peerGauge(
      'chat_rpc_inflight',
      'RPC calls written and not answered yet, per peer',
      (p) => p.inflight,
    );
    peerGauge('chat_rpc_connected', '1 while the connection to the peer is up', (p) =>
      p.connected ? 1 : 0,
    );
    const seenErrors = this.seenPeerErrors;
    const seenConnects = this.seenPeerConnects;
    const peerCounter = (
      name: string,
      help: string,
      seen: Map<string, number>,
      pick: (p: PeerFigures) => number,
    ): void => {
      new Counter({
        name,
        help,
        labelNames: ['peer'],
        registers,
        collect() {
          for (const [peer, figures] of Object.entries(sources()?.peers?.() ?? {})) {
            const value = pick(figures);
            const last = seen.get(peer) ?? 0;
            // A peer's client is replaced when it comes back elsewhere: its count restarts.
            const delta = value >= last ? value - last : value;
            this.inc({ peer }, delta); // 0 too, so that every peer has a series
            seen.set(peer, value);
          }
        },
      });
    };
    peerCounter(
      'chat_rpc_errors_total',
      'RPC calls that failed (timeout, connection lost, queue full, error answer), per peer',
      seenErrors,
      (p) => p.errors,
    );
    peerCounter(
      'chat_rpc_connects_total',
      'RPC connections established to the peer',
      seenConnects,
      (p) => p.connects,
    );
  }

  /** Where scrape-time gauges read from; call once the node (and cluster) exist. */
  bind(sources: MetricSources): void {
    this.sources = sources;
  }

  /** The store's `onBatch` hook. */
  observeBatch(batch: SendBatchInfo): void {
    this.pgBatchSize.observe({ kind: batch.kind }, batch.size);
    this.pgBatchSeconds.observe(
      { kind: batch.kind, result: batch.committed ? 'committed' : 'failed' },
      batch.durationMs / 1000,
    );
  }

  /** The retention job's `onPass` hook. */
  observeRetention(removed: Readonly<Record<string, number>>, durationMs: number): void {
    for (const [kind, n] of Object.entries(removed)) this.retentionRemoved.inc({ kind }, n);
    this.retentionPasses.inc();
    this.retentionPassSeconds.observe(durationMs / 1000);
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The text exposition format. */
  scrape(): Promise<string> {
    return this.registry.metrics();
  }
}
