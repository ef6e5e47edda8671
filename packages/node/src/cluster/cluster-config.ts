/** Cluster settings of a chat node; absent CHAT_ETCD_ENDPOINTS means a single node without etcd. */
import type { EtcdSecurity } from '@chat/cluster';
import { describeEtcdSecurity, edgeOriginFrom, etcdSecurityFromEnv } from '@chat/cluster';
import type { RpcTls } from '@chat/rpc';
import type { Env } from '@chat/cluster';
import { ConfigError, EnvReader, checkProductionSecret } from '@chat/cluster';
import { rpcTransportFromEnv } from './rpc-tls-config';

export interface ClusterConfig {
  readonly etcdEndpoints: readonly string[];
  /** etcd username/password and TLS (CHAT_ETCD_USERNAME, CHAT_ETCD_TLS_CA, ...). */
  readonly etcdSecurity: EtcdSecurity;
  /** Key prefix of this cluster in etcd. */
  readonly prefix: string;
  /** Lease TTL of the node's registration; a dead node leaves the ring this long after it died. */
  readonly leaseTtlSec: number;
  readonly rpcHost: string;
  /** 0 picks a free port. */
  readonly rpcPort: number;
  /** `host:port` peers should dial, when it differs from rpcHost:rpcPort (NAT, containers). */
  readonly rpcAdvertise: string | undefined;
  /** Shared secret that RPC peers prove they know. */
  readonly clusterSecret: string;
  /** Mutual TLS of RPC links (CHAT_RPC_TLS_*); undefined: plain TCP. */
  readonly rpcTls: RpcTls | undefined;
  /** Plain-TCP RPC in production, allowed by CHAT_RPC_ALLOW_PLAINTEXT=1: warn loudly. */
  readonly rpcPlaintextInProduction: boolean;
  /** This node's relative share once it is a ring member. */
  readonly weight: number;
  /** Users per second this node moves away when the ring gives them to another node and no
   *  transition says otherwise (`chatctl scale-out --rate` sets it per transition). */
  readonly drainRatePerSec: number;
  /** Users per second a node moves away when it shuts down (SIGTERM). */
  readonly shutdownDrainRatePerSec: number;
  /** Longest a shutdown waits for its users to move before closing what is left. */
  readonly shutdownTimeoutMs: number;
  /** Wait after every drain reports done before the transition is closed. */
  readonly transitionGraceMs: number;
  /** How long deliveries also go to the previous owner after an unplanned ring change. */
  readonly dualDeliveryGraceMs: number;
  /**
   * The TLS edge's public https origin (CHAT_EDGE_URL): `moved` frames then name
   * `wss://<edge>/n/<node>/ws` instead of the node's own URL.
   */
  readonly edgeOrigin: string | undefined;
}

export const DEV_CLUSTER_SECRET = 'dev-cluster-secret';

export interface LoadedClusterConfig {
  readonly config: ClusterConfig;
  readonly usingDevSecret: boolean;
}

export function clusterConfigFromEnv(
  env: Env,
  defaultHost: string,
): LoadedClusterConfig | undefined {
  const r = new EnvReader(env);
  const endpoints = r.urlList('CHAT_ETCD_ENDPOINTS', ['http:', 'https:']);
  if (endpoints.length === 0) return undefined;
  const secret = r.optionalString('CHAT_CLUSTER_SECRET');
  const production = r.string('NODE_ENV', 'development') === 'production';
  if (production) {
    if (secret === undefined)
      throw new ConfigError('CHAT_CLUSTER_SECRET is required when NODE_ENV=production');
    checkProductionSecret('CHAT_CLUSTER_SECRET', secret);
  }
  const prefix = r.etcdPrefix();
  const transport = rpcTransportFromEnv(r, production);
  const config: ClusterConfig = {
    etcdEndpoints: Object.freeze(endpoints),
    etcdSecurity: etcdSecurityFrom(env, endpoints),
    prefix,
    leaseTtlSec: r.int('CHAT_LEASE_TTL_SEC', 10, 2, 3600),
    rpcHost: r.string('CHAT_RPC_HOST', defaultHost),
    rpcPort: r.int('CHAT_RPC_PORT', 0, 0, 65535),
    rpcAdvertise: rpcAdvertiseFrom(r),
    clusterSecret: secret ?? DEV_CLUSTER_SECRET,
    rpcTls: transport.tls,
    rpcPlaintextInProduction: transport.plaintextInProduction,
    weight: r.int('CHAT_WEIGHT', 1, 1, 100),
    drainRatePerSec: r.int('CHAT_DRAIN_RATE', 50, 1, 100_000),
    shutdownDrainRatePerSec: r.int('CHAT_SHUTDOWN_DRAIN_RATE', 500, 1, 100_000),
    shutdownTimeoutMs: r.int('CHAT_SHUTDOWN_TIMEOUT_MS', 30_000, 0, 3_600_000),
    transitionGraceMs: r.int('CHAT_TRANSITION_GRACE_MS', 5_000, 0, 3_600_000),
    dualDeliveryGraceMs: r.int('CHAT_DUAL_DELIVERY_GRACE_MS', 30_000, 0, 3_600_000),
    edgeOrigin: edgeOriginFrom(r),
  };
  return { config: Object.freeze(config), usingDevSecret: secret === undefined };
}

function etcdSecurityFrom(env: Env, endpoints: readonly string[]): EtcdSecurity {
  try {
    return etcdSecurityFromEnv(env, endpoints);
  } catch (err) {
    throw new ConfigError((err as Error).message);
  }
}

/** `host:port` or `[v6]:port`, as the RPC pool dials it. */
function rpcAdvertiseFrom(r: EnvReader): string | undefined {
  const raw = r.optionalString('CHAT_RPC_ADVERTISE');
  if (raw === undefined) return undefined;
  const match = /^(?:\[[^\]]+\]|[^:/\s]+):(\d{1,5})$/.exec(raw);
  const port = Number(match?.[1]);
  if (match === null || !(port > 0 && port < 65536)) {
    throw new ConfigError(
      `CHAT_RPC_ADVERTISE must be host:port (e.g. node-1:7001), got ${JSON.stringify(raw)}`,
    );
  }
  return raw;
}

/** The cluster configuration as it may be logged (the cluster secret and TLS key left out). */
export function loggableClusterConfig(config: ClusterConfig): Record<string, unknown> {
  return {
    ...config,
    clusterSecret: '[redacted]',
    etcdSecurity: describeEtcdSecurity(config.etcdSecurity),
    rpcTls: config.rpcTls === undefined ? 'off' : 'mutual TLS',
  };
}
