/**
 * Who owns whom, from one cluster snapshot: the ring over the members that are configured,
 * alive and not leaving. The registry, every node and chatctl build it the same way, so they
 * agree once they have seen the same etcd revision. While a transition is open the table also
 * knows the previous ring, so senders can deliver to the previous owner too.
 */
import type { Ring } from '@chat/ring';
import { buildRing } from '@chat/ring';
import type { NodeInfo, RingConfig, RingMember } from './model';
import { liveMembers, previousLiveMembers } from './model';
import type { ClusterSnapshot } from './view';

export class RouteTable {
  private constructor(
    readonly ring: Ring,
    readonly members: readonly RingMember[],
    readonly epoch: number,
    readonly nodes: ReadonlyMap<string, NodeInfo>,
    /** The ring users are moving away from, while a transition is open. */
    readonly previous: Ring | undefined,
    readonly config: RingConfig | undefined,
  ) {}

  static empty(): RouteTable {
    return new RouteTable(buildRing([]), [], 0, new Map(), undefined, undefined);
  }

  /** @example const table = RouteTable.from(view.snapshot); table.owner('alice')?.wsUrl */
  static from(snapshot: ClusterSnapshot): RouteTable {
    const config = snapshot.ring?.config;
    const members = liveMembers(config, snapshot.nodes);
    const previous = config?.transition
      ? buildRing(previousLiveMembers(config, snapshot.nodes))
      : undefined;
    return new RouteTable(
      buildRing(members),
      members,
      config?.epoch ?? 0,
      snapshot.nodes,
      previous,
      config,
    );
  }

  /** The owner node of a user; undefined when no member is alive. */
  owner(user: string): NodeInfo | undefined {
    const id = this.ring.owner(user);
    return id === undefined ? undefined : this.nodes.get(id);
  }

  /** The owner on the previous ring while a transition is open (may equal the owner). */
  previousOwner(user: string): NodeInfo | undefined {
    const id = this.previous?.owner(user);
    return id === undefined ? undefined : this.nodes.get(id);
  }

  /** True when both tables route every user the same way (same live members and weights). */
  sameRingAs(other: RouteTable): boolean {
    return membersKey(this.members) === membersKey(other.members);
  }
}

function membersKey(members: readonly RingMember[]): string {
  return members
    .map((m) => `${m.id}:${m.weight}`)
    .sort()
    .join(',');
}
