/**
 * What the registry streams to the dashboard (`GET /v1/dashboard/stream`, server-sent events
 * named `state`, one whole state per event). Shared by the producer (registry) and the page.
 */

/** An arc of the hash ring, as fractions of the circle (0 = 12 o'clock, clockwise). */
export interface RingArc {
  readonly start: number;
  readonly end: number;
  readonly node: string;
}

export interface DashboardNode {
  readonly nodeId: string;
  /** Registered in etcd under a live lease. */
  readonly live: boolean;
  /** In the configured ring. */
  readonly member: boolean;
  /** Shutting down: reachable but no longer in the ring. */
  readonly leaving: boolean;
  readonly weight: number;
  /** Share of the ring's users it owns, 0..1 (0 for non-members). */
  readonly share: number;
  /** The node's own figures, null when it did not answer the last poll. */
  readonly connections: number | null;
  readonly users: number | null;
  readonly messagesPerSec: number | null;
}

export interface DashboardDrain {
  readonly nodeId: string;
  readonly epoch: number;
  readonly total: number;
  readonly moved: number;
  readonly remaining: number;
  readonly ratePerSec: number;
  readonly done: boolean;
  /** moved / total as 0..100 (100 when there was nothing to move). */
  readonly percent: number;
}

export interface DashboardState {
  /** When the registry made this state, ms since the epoch. */
  readonly at: number;
  /** Epoch of the configured ring, 0 before the first configuration. */
  readonly epoch: number;
  readonly nodes: readonly DashboardNode[];
  /** Arcs of the ring clients are routed by (configured members that are alive). */
  readonly arcs: readonly RingArc[];
  /** During a rebalance: the epoch users move from and the arcs of that ring. */
  readonly transition: {
    readonly fromEpoch: number;
    readonly startedAt: number;
    readonly arcs: readonly RingArc[];
  } | null;
  readonly drains: readonly DashboardDrain[];
}
