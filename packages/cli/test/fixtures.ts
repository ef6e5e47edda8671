/** Cluster snapshots for the unit tests, built by hand. */
import type {
  ClusterSnapshot,
  DrainProgress,
  NodeInfo,
  RingConfig,
  RingMember,
} from '@chat/cluster';

export function node(nodeId: string, extra: Partial<NodeInfo> = {}): NodeInfo {
  const port = 7000 + Number(nodeId.replace(/\D/g, '') || 0);
  return {
    nodeId,
    wsUrl: `ws://127.0.0.1:${port}/ws`,
    internalUrl: `http://127.0.0.1:${port}`,
    rpcAddress: `127.0.0.1:${port + 100}`,
    weight: 1,
    startedAt: 1,
    ...extra,
  };
}

export function nodes(...list: NodeInfo[]): Map<string, NodeInfo> {
  return new Map(list.map((n) => [n.nodeId, n]));
}

export function members(...ids: string[]): RingMember[] {
  return ids.map((id) => ({ id, weight: 1 }));
}

export function drain(
  nodeId: string,
  epoch: number,
  extra: Partial<DrainProgress> = {},
): DrainProgress {
  const total = extra.total ?? 10;
  const moved = extra.moved ?? 0;
  return {
    nodeId,
    epoch,
    total,
    moved,
    remaining: total - moved,
    ratePerSec: 40,
    peakPerSec: 0,
    done: false,
    startedAt: 1000,
    updatedAt: 2000,
    ...extra,
  };
}

export function snapshot(
  nodeList: Map<string, NodeInfo>,
  config: RingConfig | undefined,
  drains: DrainProgress[] = [],
  modRevision = 10,
): ClusterSnapshot {
  return {
    nodes: nodeList,
    ring: config === undefined ? undefined : { config, modRevision },
    drains: new Map(drains.map((d) => [d.nodeId, d])),
    revision: 42,
  };
}
