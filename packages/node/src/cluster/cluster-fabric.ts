/**
 * Delivery across the cluster: every event is pushed to devices connected here (a user being
 * moved may still be connected to this node), and forwarded by RPC to the owner node when that
 * is another node, and to the previous owner while users are moving, batched per peer per tick. Forwarding is the fast path only: a lost
 * push is repaired by the device's sync, so failures are logged, not retried.
 */
import type { PeerPool } from '@chat/rpc';
import { DeliveryBatcher } from '@chat/rpc';
import type { Delivery } from '@chat/store';
import type { Logger } from 'pino';
import type { DeliveryFabric, LocalDeliverer } from '../routing';
import type { RingOwnership } from './ring-ownership';
import { Deliver } from './rpc-methods';

export interface ClusterFabricDeps {
  readonly ownership: RingOwnership;
  readonly pool: PeerPool;
  readonly log: Logger;
}

export function clusterFabric(deps: ClusterFabricDeps): (local: LocalDeliverer) => DeliveryFabric {
  return (local) => {
    const batcher = new DeliveryBatcher<Delivery>({
      send: async (peer, deliveries) => {
        const info = deps.ownership.nodeInfo(peer);
        if (info === undefined) throw new Error(`node ${peer} is not alive`);
        await deps.pool.peer(peer, info.rpcAddress).call(Deliver, { deliveries });
      },
      onResult: (peer, delivery, err) => {
        if (err !== undefined) {
          deps.log.debug(
            { peer, user: delivery.userId, err },
            'forward failed; the device will sync',
          );
        }
      },
    });
    return {
      deliver(deliveries) {
        local(deliveries);
        const self = deps.ownership.selfId;
        for (const delivery of deliveries) {
          const owner = deps.ownership.ownerOf(delivery.userId);
          if (owner !== undefined && owner !== self) batcher.add(owner, delivery);
          // Dual delivery during a transition: the user may still be connected to an old owner.
          for (const previous of deps.ownership.previousOwnersOf(delivery.userId))
            if (previous !== owner && previous !== self) batcher.add(previous, delivery);
        }
      },
      close: () => batcher.drain(),
    };
  };
}
