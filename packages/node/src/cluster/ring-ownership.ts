/**
 * This node's view of ownership: the cluster's RouteTable, plus what "owned here", "moved" and
 * "previous owner" mean for this node. A user whose ring is empty is served where connected.
 */
import type { ClusterSnapshot, NodeInfo } from '@chat/cluster';
import { RouteTable, clientWsUrl } from '@chat/cluster';
import type { MovedFrame } from '@chat/protocol';
import type { Ring } from '@chat/ring';
import type { Clock } from '../clock';
import type { Ownership } from '../routing';

/** Superseded transitions remembered at most (a bound; each costs a ring lookup per delivery). */
const MAX_SUPERSEDED = 4;

export interface TopologyChange {
  /** Members or weights changed: users may have to move. */
  readonly ringChanged: boolean;
  /** The configured epoch changed (also without a ring change, e.g. a new drain rate). */
  readonly epochChanged: boolean;
}

export class RingOwnership implements Ownership {
  private table = RouteTable.empty();
  private snapshot: ClusterSnapshot | undefined;
  /**
   * The table before the last ring change that had no configured transition (a node died or
   * left), kept for a grace period so that deliveries still reach users who have not moved yet.
   */
  private recent: { table: RouteTable; until: number } | undefined;
  /**
   * The previous rings of open transitions that a later ring change superseded (scale-out of
   * node-4, then of node-5 while node-4's drain runs), and the rings such changes replaced:
   * users who had not moved yet still sit on their owner there, so they are delivered to as
   * well until the transition is closed.
   */
  private superseded: Ring[] = [];

  constructor(
    readonly selfId: string,
    private readonly clock: Clock,
    private readonly dualDeliveryGraceMs: number,
    /** The TLS edge's public origin: `moved` then names the node's route through it. */
    private readonly edgeOrigin?: string,
  ) {}

  /** Takes a new cluster snapshot and says what changed. */
  update(snapshot: ClusterSnapshot): TopologyChange {
    const previous = this.snapshot;
    this.snapshot = snapshot;
    if (
      previous !== undefined &&
      previous.nodes === snapshot.nodes &&
      previous.ring === snapshot.ring
    ) {
      return { ringChanged: false, epochChanged: false }; // only drain progress moved
    }
    const next = RouteTable.from(snapshot);
    const ringChanged = !next.sameRingAs(this.table);
    const epochChanged = next.epoch !== this.table.epoch;
    if (ringChanged && next.previous === undefined) {
      this.recent = { table: this.table, until: this.clock.now() + this.dualDeliveryGraceMs };
    }
    if (next.previous === undefined) this.superseded = [];
    else if (ringChanged && this.table.previous !== undefined)
      // Users sit on their owner of the transition's previous ring until moved, and on their
      // owner of the ring before this change once moved (a node leaving mid-transition, at
      // SIGTERM, keeps its users, overlapping, until it has moved them).
      this.superseded = [...this.superseded, this.table.previous, this.table.ring].slice(
        -MAX_SUPERSEDED,
      );
    this.table = next;
    return { ringChanged, epochChanged };
  }

  get routeTable(): RouteTable {
    return this.table;
  }

  epoch(): number {
    return this.table.epoch;
  }

  /** The drain rate an open transition asks for, if any. */
  transitionRate(): number | undefined {
    return this.table.config?.transition?.ratePerSec;
  }

  /** The owner's node id; undefined while the ring is empty. */
  ownerOf(user: string): string | undefined {
    return this.table.ring.owner(user);
  }

  /**
   * Every node the user may still be connected to because of a ring change: the owner on the
   * open transition's previous ring and on the rings of transitions it superseded, or within the
   * grace period after an unplanned change, the owner before it. May repeat the owner.
   */
  previousOwnersOf(user: string): string[] {
    const owners: string[] = [];
    const fromTransition = this.table.previous?.owner(user);
    if (fromTransition !== undefined) owners.push(fromTransition);
    for (const ring of this.superseded) {
      const owner = ring.owner(user);
      // A node that died since is nobody's connection any more.
      if (owner !== undefined && !owners.includes(owner) && this.table.nodes.has(owner))
        owners.push(owner);
    }
    if (owners.length > 0) return owners;
    if (this.recent !== undefined && this.clock.now() < this.recent.until) {
      const owner = this.recent.table.ring.owner(user);
      if (owner !== undefined) owners.push(owner);
    }
    return owners;
  }

  movingHere(user: string): boolean {
    return (
      this.ownerOf(user) === this.selfId &&
      this.previousOwnersOf(user).some((node) => node !== this.selfId)
    );
  }

  ownsLocally(user: string): boolean {
    const owner = this.ownerOf(user);
    return owner === undefined || owner === this.selfId;
  }

  nodeInfo(nodeId: string): NodeInfo | undefined {
    return this.table.nodes.get(nodeId);
  }

  redirectFor(user: string): MovedFrame | undefined {
    const owner = this.table.owner(user);
    if (owner === undefined || owner.nodeId === this.selfId) return undefined;
    const url = clientWsUrl(owner, this.edgeOrigin);
    return { t: 'moved', node: owner.nodeId, url, epoch: this.table.epoch };
  }
}
