/**
 * Presence across the cluster: "is this user connected?" goes to the user's owner node (and
 * to the previous owner while users move), typing notices go to each recipient's owner,
 * batched per peer per tick on their own RPC method so they never hold up message deliveries;
 * past a bound of notices in flight, new ones are dropped (typing is best effort).
 */
import type { PeerPool } from '@chat/rpc';
import { DeliveryBatcher } from '@chat/rpc';
import type { Logger } from 'pino';
import type { LocalPresence, PresencePeers, TypingItem } from '../presence';
import type { RingOwnership } from './ring-ownership';
import { Presence, TypingNotify } from './rpc-methods';

export interface ClusterPresenceDeps {
  readonly ownership: RingOwnership;
  readonly pool: PeerPool;
  readonly log: Logger;
  /** Typing notices queued or in flight to peers past which new ones are dropped (default 2000). */
  readonly maxTypingInFlight?: number;
  /** Timeout of a presence question to a peer, ms (default 1000). */
  readonly presenceTimeoutMs?: number;
}

export function clusterPresence(
  deps: ClusterPresenceDeps,
): (local: LocalPresence) => PresencePeers {
  const maxInFlight = deps.maxTypingInFlight ?? 2000;
  const timeoutMs = deps.presenceTimeoutMs ?? 1000;
  return (local) => {
    let inFlight = 0;
    const peerOf = (nodeId: string) => {
      const info = deps.ownership.nodeInfo(nodeId);
      if (info === undefined) throw new Error(`node ${nodeId} is not alive`);
      return deps.pool.peer(nodeId, info.rpcAddress);
    };
    const batcher = new DeliveryBatcher<TypingItem>({
      send: async (peer, items) => {
        await peerOf(peer).call(TypingNotify, { items }, { timeoutMs });
      },
      onResult: (peer, _item, err) => {
        inFlight -= 1;
        if (err !== undefined) deps.log.debug({ peer, err }, 'typing notice not forwarded');
      },
    });
    const askNode = async (nodeId: string, user: string): Promise<boolean> => {
      if (nodeId === deps.ownership.selfId) return local.isOnlineHere(user);
      try {
        const res = await peerOf(nodeId).call(Presence, { users: [user] }, { timeoutMs });
        return res.online[0] === true;
      } catch (err) {
        deps.log.debug({ peer: nodeId, user, err }, 'presence question failed; answering offline');
        return false;
      }
    };
    return {
      async isOnline(user) {
        const owner = deps.ownership.ownerOf(user);
        if (owner === undefined) return local.isOnlineHere(user);
        if (await askNode(owner, user)) return true;
        for (const previous of deps.ownership.previousOwnersOf(user)) {
          if (previous !== owner && (await askNode(previous, user))) return true;
        }
        return false;
      },
      typing(item) {
        // Devices connected here first (a moving user may still be here), then owners elsewhere.
        local.pushTyping([item]);
        const self = deps.ownership.selfId;
        const byNode = new Map<string, string[]>();
        for (const user of item.to) {
          const owner = deps.ownership.ownerOf(user);
          for (const node of new Set([owner, ...deps.ownership.previousOwnersOf(user)])) {
            if (node === undefined || node === self) continue;
            const list = byNode.get(node);
            if (list === undefined) byNode.set(node, [user]);
            else list.push(user);
          }
        }
        for (const [node, to] of byNode) {
          if (inFlight >= maxInFlight) return; // best effort: drop under load
          inFlight += 1;
          batcher.add(node, { chatId: item.chatId, user: item.user, to });
        }
      },
      close: () => batcher.drain(),
    };
  };
}
