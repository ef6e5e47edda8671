/**
 * What the dashboard shows, as pure functions of a cluster snapshot, its route table and the
 * nodes' figures. The ring's arcs and shares are the costly part (a few thousand continuum
 * points), so {@link RingPictures} computes them again only when a ring changes.
 */
import type { ClusterSnapshot, RingMember, RouteTable } from '@chat/cluster';
import type { Ring } from '@chat/ring';
import { compareIds } from '@chat/protocol';
import { ringArcs, ringShares } from '@chat/ring';
import type {
  DashboardDrain,
  DashboardNode,
  DashboardRing,
  DashboardState,
  DashboardTransition,
  RingArc,
} from '@chat/protocol/dashboard-feed';
import type { NodeFigures } from './node-figures';

/** The rings drawn, and each member's share of the routed one. */
export interface RingPicture {
  readonly ring: DashboardRing;
  readonly shares: ReadonlyMap<string, number>;
}

function membersKey(members: readonly RingMember[]): string {
  return members.map((m) => `${m.id}:${m.weight}`).join(',');
}

/** Identifies both rings of a table: equal keys, equal arcs. */
export function ringKey(table: RouteTable): string {
  const previous = table.previous === undefined ? '-' : membersKey(table.previous.members);
  return `${membersKey(table.ring.members)}|${previous}`;
}

/** Arc bounds are sent with 7 decimals: under a thousandth of a degree, a third of the JSON. */
function round7(x: number): number {
  return Math.round(x * 1e7) / 1e7;
}

function arcsOf(ring: Ring): RingArc[] {
  const arcs: RingArc[] = [];
  for (const arc of ringArcs(ring)) {
    const start = round7(arc.start);
    const end = round7(arc.end);
    if (end > start) arcs.push({ start, end, node: arc.id });
  }
  return arcs;
}

/** The arcs of the routed ring (and of the previous one during a transition) and the shares. */
export function ringPicture(table: RouteTable): RingPicture {
  return {
    ring: {
      key: ringKey(table),
      arcs: arcsOf(table.ring),
      previousArcs: table.previous === undefined ? null : arcsOf(table.previous),
    },
    shares: new Map(ringShares(table.ring).map((s) => [s.id, s.share])),
  };
}

/**
 * The last ring picture, made again only when {@link ringKey} changes (a member joins, leaves,
 * dies or changes weight, or a transition opens or closes).
 *
 * @example
 * const pictures = new RingPictures();
 * pictures.of(table) === pictures.of(table); // true: computed once
 */
export class RingPictures {
  private last: RingPicture | undefined;

  of(table: RouteTable): RingPicture {
    const key = ringKey(table);
    if (this.last?.ring.key !== key) this.last = ringPicture(table);
    return this.last;
  }
}

/** (total - remaining) / total as a percentage with one decimal; 100 when nothing was to move. */
export function drainPercent(total: number, remaining: number): number {
  if (total <= 0) return 100;
  const done = Math.min(total, Math.max(0, total - remaining));
  return Math.round((done * 1000) / total) / 10;
}

export interface DashboardInput {
  readonly snapshot: ClusterSnapshot;
  /** Built from `snapshot`. */
  readonly table: RouteTable;
  readonly picture: RingPicture;
  readonly figures: ReadonlyMap<string, NodeFigures>;
  readonly polledAt: number | null;
  readonly now: number;
}

/**
 * The `state` event of the dashboard feed.
 *
 * @example
 * const state = dashboardState({ snapshot, table, picture: pictures.of(table), figures, polledAt, now: Date.now() });
 */
export function dashboardState(input: DashboardInput): DashboardState {
  const { snapshot, table, picture } = input;
  const config = snapshot.ring?.config;
  const members = config?.members ?? [];
  const fromMembers = config?.transition?.fromMembers ?? [];
  const ids = new Set([
    ...snapshot.nodes.keys(),
    ...members.map((m) => m.id),
    ...fromMembers.map((m) => m.id),
  ]);
  const nodes = [...ids].sort(compareIds).map((id): DashboardNode => {
    const info = snapshot.nodes.get(id);
    const member = members.find((m) => m.id === id);
    const figures = info === undefined ? undefined : input.figures.get(id);
    return {
      nodeId: id,
      live: info !== undefined,
      member: member !== undefined,
      previousMember: fromMembers.some((m) => m.id === id),
      leaving: info?.leaving === true,
      weight: member?.weight ?? info?.weight ?? 1,
      share: picture.shares.get(id) ?? 0,
      url: info?.wsUrl ?? null,
      connections: figures?.connections ?? null,
      ...(figures?.movingOut === undefined ? {} : { movingOut: figures.movingOut }),
      users: figures?.users ?? null,
      messagesPerSec: figures?.messagesPerSec ?? null,
      pushesPerSec: figures?.pushesPerSec ?? null,
    };
  });
  const drains: DashboardDrain[] = [...snapshot.drains.values()]
    .filter((d) => snapshot.nodes.has(d.nodeId) && (d.total > 0 || !d.done))
    .sort((a, b) => compareIds(a.nodeId, b.nodeId))
    .map((d) => ({
      nodeId: d.nodeId,
      epoch: d.epoch,
      total: d.total,
      moved: d.moved,
      remaining: d.remaining,
      ratePerSec: d.ratePerSec,
      peakPerSec: d.peakPerSec,
      done: d.done,
      percent: drainPercent(d.total, d.remaining),
      startedAt: d.startedAt,
      updatedAt: d.updatedAt,
    }));
  const t = config?.transition;
  const transition: DashboardTransition | null =
    t === undefined
      ? null
      : {
          fromEpoch: t.fromEpoch,
          startedAt: t.startedAt,
          ratePerSec: t.ratePerSec ?? null,
          added: members.filter((m) => !fromMembers.some((f) => f.id === m.id)).map((m) => m.id),
          removed: fromMembers.filter((f) => !members.some((m) => m.id === f.id)).map((m) => m.id),
        };
  return {
    at: input.now,
    revision: snapshot.revision,
    epoch: table.epoch,
    nodes,
    transition,
    drains,
    polledAt: input.polledAt,
  };
}
