/**
 * Who owns whom, from one cluster snapshot: the ring over the members that are configured and
 * alive. The registry, every node and chatctl build it the same way, so they agree once they
 * have seen the same etcd revision.
 */
import type { Ring } from '@chat/ring';
import { buildRing } from '@chat/ring';
import type { NodeInfo, RingMember } from './model';
import { liveMembers } from './model';
import type { ClusterSnapshot } from './view';

export class RouteTable {
  private constructor(
    readonly ring: Ring,
    readonly members: readonly RingMember[],
    readonly epoch: number,
    readonly nodes: ReadonlyMap<string, NodeInfo>,
  ) {}

  static empty(): RouteTable {
    return new RouteTable(buildRing([]), [], 0, new Map());
  }

  /** @example const table = RouteTable.from(view.snapshot); table.owner('alice')?.wsUrl */
  static from(snapshot: ClusterSnapshot): RouteTable {
    const members = liveMembers(snapshot.ring?.config, snapshot.nodes);
    return new RouteTable(
      buildRing(members),
      members,
      snapshot.ring?.config.epoch ?? 0,
      snapshot.nodes,
    );
  }

  /** The owner node of a user; undefined when no member is alive. */
  owner(user: string): NodeInfo | undefined {
    const id = this.ring.owner(user);
    return id === undefined ? undefined : this.nodes.get(id);
  }

  /** True when both tables route every user the same way (same live members and weights). */
  sameRingAs(other: RouteTable): boolean {
    const key = (t: RouteTable): string =>
      t.members
        .map((m) => `${m.id}:${m.weight}`)
        .sort()
        .join(',');
    return key(this) === key(other);
  }
}
