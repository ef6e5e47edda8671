/**
 * Delivery across the cluster: every event is pushed to devices connected here (a user being
 * moved may still be connected to this node), and forwarded by RPC to the owner node when that
 * is another node, and to the previous owner while users are moving, batched per peer per tick. Forwarding is the fast path only: a lost
 * push is repaired by the device's sync, so failures are logged, not retried.
 */
import type { PeerPool } from '@chat/rpc';
import { DeliveryBatcher } from '@chat/rpc';
import type { Delivery, ReceiptNotice } from '@chat/store';
import type { Logger } from 'pino';
import type { DeliveryFabric, LocalDeliverer } from '../routing';
import type { RingOwnership } from './ring-ownership';
import { Deliver, NotifyReceipts } from './rpc-methods';

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
    // Receipts: one notice per peer with the recipients that peer holds.
    const notices = new DeliveryBatcher<ReceiptNotice>({
      send: async (peer, items) => {
        const info = deps.ownership.nodeInfo(peer);
        if (info === undefined) throw new Error(`node ${peer} is not alive`);
        await deps.pool.peer(peer, info.rpcAddress).call(NotifyReceipts, { notices: items });
      },
      onResult: (peer, notice, err) => {
        if (err !== undefined) {
          deps.log.debug(
            { peer, chat: notice.chatId, err },
            'receipts not forwarded; recorded for a later welcome',
          );
        }
      },
    });
    /** Every node a user may be connected to: the owner, and old owners while users move. */
    const nodesOf = (user: string): string[] => {
      const owner = deps.ownership.ownerOf(user);
      const nodes = owner === undefined ? [] : [owner];
      for (const previous of deps.ownership.previousOwnersOf(user))
        if (!nodes.includes(previous)) nodes.push(previous);
      return nodes;
    };
    return {
      deliver(deliveries) {
        local.deliver(deliveries);
        const self = deps.ownership.selfId;
        for (const delivery of deliveries) {
          // Dual delivery during a transition: the user may still be connected to an old owner.
          for (const node of nodesOf(delivery.userId))
            if (node !== self) batcher.add(node, delivery);
        }
      },
      notify(items) {
        local.notify(items);
        const self = deps.ownership.selfId;
        for (const notice of items) {
          const byNode = new Map<string, string[]>();
          for (const user of notice.notify) {
            for (const node of nodesOf(user)) {
              if (node === self) continue;
              const users = byNode.get(node);
              if (users === undefined) byNode.set(node, [user]);
              else users.push(user);
            }
          }
          for (const [node, users] of byNode) notices.add(node, { ...notice, notify: users });
        }
      },
      close: async () => {
        await batcher.drain();
        await notices.drain();
      },
    };
  };
}
