/**
 * The nodes' own figures for the dashboard: every live node's `GET /v1/stats` asked about once a
 * second (only while a dashboard is open), the last answer kept, and messages per second
 * computed from the deltas of the cumulative counters between two answers. Which nodes to ask
 * and where comes from their etcd registrations only, never from a client.
 */
import type { NodeInfo } from '@chat/cluster';
import { nodeStatsUrl } from '@chat/cluster';
import type { Logger } from 'pino';

/** What the registry reads from a node's `/v1/stats`. */
export interface NodeStatsSample {
  readonly connections: number;
  readonly users: number;
  /** Connections of moved devices still open for their overlap (issue 17); absent when none. */
  readonly movingOut?: number;
  /** Cumulative `send` requests acked since the node process started. */
  readonly messagesIn: number;
  /** Cumulative events pushed to devices since the node process started. */
  readonly messagesOut: number;
}

/** One node's latest figures. */
export interface NodeFigures {
  readonly connections: number;
  readonly users: number;
  /** Of `connections`, those of devices moving away (overlapping); absent when none. */
  readonly movingOut?: number;
  /** Null until two answers in a row, and after the counters went backwards (a restart). */
  readonly messagesPerSec: number | null;
  readonly pushesPerSec: number | null;
  /** When the answer arrived, ms since the epoch. */
  readonly at: number;
}

/** GETs a URL and resolves with its parsed JSON body; rejects on a timeout or non-2xx. */
export type FetchJson = (url: string, timeoutMs: number) => Promise<unknown>;

/** {@link FetchJson} over the global fetch, aborted after the timeout. */
export const httpFetchJson: FetchJson = async (url, timeoutMs) => {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  if (!res.ok) throw new Error(`${url} answered ${res.status}`);
  return res.json();
};

function count(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value : undefined;
}

/**
 * The fields the dashboard uses from a `/v1/stats` body; undefined when connections or users
 * are missing. A node too old to count messages reports them as 0 (its rates stay 0).
 */
export function parseNodeStats(body: unknown): NodeStatsSample | undefined {
  if (typeof body !== 'object' || body === null) return undefined;
  const o = body as Record<string, unknown>;
  const connections = count(o['connections']);
  const users = count(o['users']);
  if (connections === undefined || users === undefined) return undefined;
  const movingOut = count(o['movingOut']);
  return {
    connections,
    users,
    ...(movingOut === undefined || movingOut === 0 ? {} : { movingOut }),
    messagesIn: count(o['messagesIn']) ?? 0,
    messagesOut: count(o['messagesOut']) ?? 0,
  };
}

/**
 * Events per second between two readings of a cumulative counter, one decimal; null when there
 * is no earlier reading, no time passed, or the counter went backwards (the node restarted).
 *
 * @example
 * ratePerSec({ value: 100, at: 0 }, { value: 150, at: 2000 }); // 25
 */
export function ratePerSec(
  before: { readonly value: number; readonly at: number } | undefined,
  after: { readonly value: number; readonly at: number },
): number | null {
  if (before === undefined || after.at <= before.at || after.value < before.value) return null;
  return Math.round(((after.value - before.value) * 10_000) / (after.at - before.at)) / 10;
}

export interface NodeFiguresPollerOptions {
  /** The nodes to ask, read at every poll: the registered nodes of the latest snapshot. */
  readonly nodes: () => Iterable<NodeInfo>;
  /** Called after every poll that changed what {@link NodeFiguresPoller.figures} returns. */
  readonly onUpdate: () => void;
  readonly fetchJson?: FetchJson;
  readonly now?: () => number;
  /** Between the end of one poll and the start of the next (default 1000 ms). */
  readonly intervalMs?: number;
  /** How long one node may take to answer (default 800 ms). */
  readonly timeoutMs?: number;
  readonly log?: Logger;
}

interface Reading {
  readonly sample: NodeStatsSample;
  readonly at: number;
  readonly figures: NodeFigures;
}

/**
 * Asks every live node for its stats, all at once, then again `intervalMs` after the slowest
 * answered; a node that does not answer in time has no figures until it does again.
 *
 * @example
 * const poller = new NodeFiguresPoller({ nodes: () => view.snapshot.nodes.values(), onUpdate });
 * poller.start(); // when the first dashboard connects
 * poller.figures().get('node-1')?.messagesPerSec;
 * poller.stop(); // when the last one leaves
 */
export class NodeFiguresPoller {
  private readonly readings = new Map<string, Reading>();
  private readonly fetchJson: FetchJson;
  private readonly now: () => number;
  private readonly intervalMs: number;
  private readonly timeoutMs: number;
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  /** Bumped by stop(): a poll that was in flight then must not write its results. */
  private generation = 0;
  private lastPollAt: number | null = null;

  constructor(private readonly options: NodeFiguresPollerOptions) {
    this.fetchJson = options.fetchJson ?? httpFetchJson;
    this.now = options.now ?? Date.now;
    this.intervalMs = options.intervalMs ?? 1000;
    this.timeoutMs = options.timeoutMs ?? 800;
  }

  /** Latest figures by node id: only nodes that answered the last poll. */
  figures(): ReadonlyMap<string, NodeFigures> {
    return new Map([...this.readings].map(([id, r]) => [id, r.figures]));
  }

  /** When the last poll finished; null before the first one (and after stop()). */
  get polledAt(): number | null {
    return this.lastPollAt;
  }

  get isRunning(): boolean {
    return this.running;
  }

  /** Polls at once, then every interval. Idempotent. */
  start(): void {
    if (this.running) return;
    this.running = true;
    void this.loop(this.generation);
  }

  /** Stops polling and forgets every reading, so a later start() computes no rate across the gap. */
  stop(): void {
    this.running = false;
    this.generation++;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.readings.clear();
    this.lastPollAt = null;
  }

  /** One round of questions to every live node; resolves when all answered or timed out. */
  async pollOnce(): Promise<void> {
    const generation = this.generation;
    const nodes = [...this.options.nodes()];
    const answers = await Promise.all(
      nodes.map(async (node) => {
        try {
          const url = nodeStatsUrl(node);
          if (url === undefined) throw new Error('the node publishes no internal URL');
          const body = await this.fetchJson(url, this.timeoutMs);
          return [node.nodeId, parseNodeStats(body), this.now()] as const;
        } catch (err) {
          this.options.log?.debug({ err, node: node.nodeId }, 'node stats did not answer');
          return [node.nodeId, undefined, this.now()] as const;
        }
      }),
    );
    if (generation !== this.generation) return;
    const live = new Set(nodes.map((n) => n.nodeId));
    for (const id of this.readings.keys()) if (!live.has(id)) this.readings.delete(id);
    for (const [id, sample, at] of answers) {
      if (sample === undefined) {
        this.readings.delete(id);
        continue;
      }
      const before = this.readings.get(id);
      const figures: NodeFigures = {
        connections: sample.connections,
        users: sample.users,
        ...(sample.movingOut === undefined ? {} : { movingOut: sample.movingOut }),
        messagesPerSec: ratePerSec(before && { value: before.sample.messagesIn, at: before.at }, {
          value: sample.messagesIn,
          at,
        }),
        pushesPerSec: ratePerSec(before && { value: before.sample.messagesOut, at: before.at }, {
          value: sample.messagesOut,
          at,
        }),
        at,
      };
      this.readings.set(id, { sample, at, figures });
    }
    this.lastPollAt = this.now();
    this.options.onUpdate();
  }

  private async loop(generation: number): Promise<void> {
    if (generation !== this.generation) return;
    try {
      await this.pollOnce();
    } catch (err) {
      this.options.log?.warn({ err }, 'polling node stats failed');
    }
    if (generation !== this.generation) return;
    this.timer = setTimeout(() => void this.loop(generation), this.intervalMs);
    this.timer.unref();
  }
}
