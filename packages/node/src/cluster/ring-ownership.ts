/**
 * This node's view of ownership: the cluster's RouteTable, plus what "owned here" and "moved"
 * mean for this node. A user whose ring is empty is served wherever they connected.
 */
import type { ClusterSnapshot, NodeInfo } from '@chat/cluster';
import { RouteTable } from '@chat/cluster';
import type { MovedFrame } from '@chat/protocol';
import type { Ownership } from '../routing';

export class RingOwnership implements Ownership {
  private table = RouteTable.empty();

  constructor(readonly selfId: string) {}

  /** Takes a new cluster snapshot; returns true when the ring (members or weights) changed. */
  update(snapshot: ClusterSnapshot): boolean {
    const next = RouteTable.from(snapshot);
    const changed = !next.sameRingAs(this.table);
    this.table = next;
    return changed;
  }

  epoch(): number {
    return this.table.epoch;
  }

  /** The owner's node id; undefined while the ring is empty. */
  ownerOf(user: string): string | undefined {
    return this.table.ring.owner(user);
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
    return { t: 'moved', node: owner.nodeId, url: owner.wsUrl, epoch: this.table.epoch };
  }
}
