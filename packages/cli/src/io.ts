/**
 * The thin I/O layer: an etcd connection with a cluster view and the ring store, and the
 * stats of live nodes over HTTP. Everything it returns is handed to the pure modules.
 */
import type { ClusterSnapshot, ClusterView, EtcdSecurity, NodeInfo } from '@chat/cluster';
import { RingConfigStore, createEtcdClient, nodeStatsUrl, watchCluster } from '@chat/cluster';
import type { EndpointProbe } from './etcd-trouble';
import { describeEtcdTrouble } from './etcd-trouble';
import type { NodeStats, PushStats } from './report';

export interface ClusterConnection {
  readonly view: ClusterView;
  readonly store: RingConfigStore;
  readonly endpoints: readonly string[];
  readonly prefix: string;
  close(): Promise<void>;
}

export interface ConnectOptions {
  readonly endpoints: readonly string[];
  readonly prefix: string;
  /** etcd username/password and TLS (CHAT_ETCD_USERNAME, CHAT_ETCD_TLS_CA, ...). */
  readonly security: EtcdSecurity;
  /** How long the first full read may take before giving up (ms). */
  readonly timeoutMs: number;
}

/** Connects and reads the whole cluster once; CliError ERROR when etcd does not answer in time. */
export async function connectCluster(options: ConnectOptions): Promise<ClusterConnection> {
  const etcd = createEtcdClient({
    endpoints: options.endpoints,
    security: options.security,
    callTimeoutMs: options.timeoutMs,
  });
  const view = watchCluster({ etcd, prefix: options.prefix });
  const close = async (): Promise<void> => {
    await view.close();
    etcd.close();
  };
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      view.ready(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () =>
            void probeEndpoints(options).then((probes) =>
              reject(describeEtcdTrouble(probes, options.timeoutMs)),
            ),
          options.timeoutMs,
        );
      }),
    ]);
  } catch (err) {
    await close();
    throw err;
  } finally {
    clearTimeout(timer);
  }
  return {
    view,
    store: new RingConfigStore({ etcd, prefix: options.prefix }),
    endpoints: options.endpoints,
    prefix: options.prefix,
    close,
  };
}

/** How long each endpoint gets to say whether it has a leader, ms. */
const PROBE_TIMEOUT_MS = 2_000;

/** Asks every endpoint on its own for its status: a member answers that without quorum. */
async function probeEndpoints(options: ConnectOptions): Promise<EndpointProbe[]> {
  return Promise.all(
    options.endpoints.map(async (endpoint) => {
      const one = createEtcdClient({
        endpoints: endpoint,
        security: options.security,
        callTimeoutMs: PROBE_TIMEOUT_MS,
        retries: 0,
      });
      try {
        const status = await one.maintenance.status();
        return { endpoint, hasLeader: status.leader !== '0' };
      } catch {
        return { endpoint, hasLeader: undefined };
      } finally {
        one.close();
      }
    }),
  );
}

async function fetchStats(node: NodeInfo, timeoutMs: number): Promise<NodeStats | undefined> {
  const url = nodeStatsUrl(node);
  if (url === undefined) return undefined;
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    if (!res.ok) return undefined;
    const body = (await res.json()) as Record<string, unknown>;
    const { users, connections } = body;
    if (typeof users !== 'number' || typeof connections !== 'number') return undefined;
    const push = pushStatsOf(body['push']);
    return push === undefined ? { users, connections } : { users, connections, push };
  } catch {
    return undefined;
  }
}

/** The push figures of a `/v1/stats` body (issue 18); undefined from nodes without them. */
function pushStatsOf(value: unknown): PushStats | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const o = value as Record<string, unknown>;
  const fields = ['depth', 'oldestAgeMs', 'sent', 'failed', 'inflight', 'awaitingAck'] as const;
  if (!fields.every((f) => typeof o[f] === 'number')) return undefined;
  const [depth, oldestAgeMs, sent, failed, inflight, awaitingAck] = fields.map(
    (f) => o[f] as number,
  );
  return {
    depth: depth!,
    oldestAgeMs: oldestAgeMs!,
    sent: sent!,
    failed: failed!,
    inflight: inflight!,
    awaitingAck: awaitingAck!,
  };
}

/** Stats of every registered node, asked in parallel; undefined for those that did not answer. */
export async function collectStats(
  snapshot: ClusterSnapshot,
  timeoutMs = 2_000,
): Promise<Map<string, NodeStats | undefined>> {
  const entries = await Promise.all(
    [...snapshot.nodes.values()].map(
      async (node) => [node.nodeId, await fetchStats(node, timeoutMs)] as const,
    ),
  );
  return new Map(entries);
}
