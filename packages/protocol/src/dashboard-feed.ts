/**
 * What the registry streams to the dashboard: `GET /v1/dashboard/stream`, server-sent events.
 * The registry produces this feed (`dashboard.ts`, `dashboard-stream.ts` in `@chat/registry`)
 * and the page (`@chat/web`) consumes it. The format lives here, below both, so that neither
 * depends on the other: `@chat/web` imports it as `@chat/protocol/dashboard-feed`. It is not
 * in the package's barrel (the SDK's clients have no use for it) and it imports nothing, so
 * browsers bundle it without any server code.
 *
 * Two event names, each carrying one whole object as JSON:
 * - `ring` ({@link DashboardRing}): the arcs of the ring clients are routed by, and during a
 *   rebalance those of the ring users move away from. Sent first on every connection and then
 *   only when either ring changes (a few thousand arcs: too many to repeat every second).
 * - `state` ({@link DashboardState}): everything else, sent right after the first `ring`, then on
 *   every cluster change and every poll of the nodes' figures, at most a few per second.
 *
 * @example
 * const source = new EventSource(DASHBOARD_STREAM_PATH);
 * source.addEventListener('state', (e) => render(JSON.parse(e.data) as DashboardState));
 */

/** Where the registry serves the stream (only with CHAT_REGISTRY_WEB=1). */
export const DASHBOARD_STREAM_PATH = '/v1/dashboard/stream';

/**
 * The stream's URL for a page opened at `pageSearch` (its `location.search`): the operator token
 * the page was opened with (`/dashboard/?token=...`) goes along, as an EventSource cannot set
 * an Authorization header.
 *
 * @example dashboardStreamUrl('?token=abc') // '/v1/dashboard/stream?token=abc'
 */
export function dashboardStreamUrl(pageSearch: string): string {
  const token = new URLSearchParams(pageSearch).get('token');
  return token === null
    ? DASHBOARD_STREAM_PATH
    : `${DASHBOARD_STREAM_PATH}?token=${encodeURIComponent(token)}`;
}

/** An arc of the hash ring, as fractions of the circle (0 = 12 o'clock, clockwise). */
export interface RingArc {
  readonly start: number;
  readonly end: number;
  readonly node: string;
}

export interface DashboardRing {
  /** Changes exactly when the arcs do: the live members and weights of both rings. */
  readonly key: string;
  /** Arcs of the ring clients are routed by (configured members that are alive, not leaving). */
  readonly arcs: readonly RingArc[];
  /** During a rebalance: arcs of the ring users move away from; null otherwise. */
  readonly previousArcs: readonly RingArc[] | null;
}

export interface DashboardNode {
  readonly nodeId: string;
  /** Registered in etcd under a live lease. */
  readonly live: boolean;
  /** In the configured ring. */
  readonly member: boolean;
  /** In the ring an open transition moves away from. */
  readonly previousMember: boolean;
  /** Shutting down: reachable but no longer in the ring. */
  readonly leaving: boolean;
  /** Ring weight when a member, else the weight the node registered with. */
  readonly weight: number;
  /** Share of the hash space it owns on the routed ring, 0..1 (0 for non-members). */
  readonly share: number;
  /** Where clients connect (from its etcd registration); null when not live. */
  readonly url: string | null;
  /** The node's own figures, null when it did not answer the last poll (or is not live). */
  readonly connections: number | null;
  /**
   * Of `connections`, those of devices this node moved that are still open while the devices
   * connect to their new owner (moves without a gap, issue 17); absent when none.
   */
  readonly movingOut?: number;
  readonly users: number | null;
  /** `send` requests acked per second over the last poll interval; null until two polls. */
  readonly messagesPerSec: number | null;
  /** Events pushed to devices on this node per second, same interval. */
  readonly pushesPerSec: number | null;
}

/**
 * A node's drain progress: what the node publishes in etcd (`DrainProgress` in `@chat/cluster`
 * is this without `percent`), with the percent the bar shows.
 */
export interface DashboardDrain {
  readonly nodeId: string;
  /** The ring epoch the drain works towards. */
  readonly epoch: number;
  /** Users to move when the drain (re)started. */
  readonly total: number;
  readonly moved: number;
  readonly remaining: number;
  /** Users per second the node drains at. */
  readonly ratePerSec: number;
  /** Most users moved within one second of this drain. */
  readonly peakPerSec: number;
  readonly done: boolean;
  /** ms since the epoch, as the node published them. */
  readonly startedAt: number;
  readonly updatedAt: number;
  /** (total - remaining) / total as 0..100, one decimal (100 when there was nothing to move). */
  readonly percent: number;
}

export interface DashboardTransition {
  readonly fromEpoch: number;
  readonly startedAt: number;
  /** The drain rate the operator asked for; null: each node's default. */
  readonly ratePerSec: number | null;
  /** Members the new ring has and the previous one had not (scale-out), and the reverse. */
  readonly added: readonly string[];
  readonly removed: readonly string[];
}

export interface DashboardState {
  /** When the registry made this state, ms since the epoch. */
  readonly at: number;
  /** The etcd revision of the cluster state it was made from. */
  readonly revision: number;
  /** Epoch of the configured ring, 0 before the first configuration. */
  readonly epoch: number;
  /** Every node that is registered, a member, or a member of the previous ring, by id. */
  readonly nodes: readonly DashboardNode[];
  /** Set while a rebalance is in progress. */
  readonly transition: DashboardTransition | null;
  /**
   * The latest drain of every live node that had users to move (or has not finished), by node
   * id. A finished drain stays listed, at 100 %, until the node's next ring change.
   */
  readonly drains: readonly DashboardDrain[];
  /** When the nodes' figures were last asked for; null before the first poll. */
  readonly polledAt: number | null;
}
