/**
 * The thin I/O layer: an etcd connection with a cluster view and the ring store, and the
 * stats of live nodes over HTTP. Everything it returns is handed to the pure modules.
 */
import type { ClusterSnapshot, ClusterView, EtcdSecurity, NodeInfo } from '@chat/cluster';
import { RingConfigStore, createEtcdClient, nodeStatsUrl, watchCluster } from '@chat/cluster';
import { CliError, ExitCode } from './errors';
import type { NodeStats } from './report';

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
            reject(
              new CliError(
                ExitCode.ERROR,
                `etcd at ${options.endpoints.join(',')} did not answer within ${options.timeoutMs} ms`,
                'ETCD_UNREACHABLE',
              ),
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

async function fetchStats(node: NodeInfo, timeoutMs: number): Promise<NodeStats | undefined> {
  const url = nodeStatsUrl(node);
  if (url === undefined) return undefined;
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    if (!res.ok) return undefined;
    const body = (await res.json()) as Record<string, unknown>;
    const { users, connections } = body;
    if (typeof users !== 'number' || typeof connections !== 'number') return undefined;
    return { users, connections };
  } catch {
    return undefined;
  }
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
