/**
 * A whole cluster as real processes on free loopback ports: etcd, a database on the test
 * Postgres, the registry and N chat nodes. Tests can kill, pause, stop and add nodes, change
 * the ring, and stop or pause etcd.
 */
import { RingConfigStore, clusterKeys, createEtcdClient } from '@chat/cluster';
import type { EtcdSecurity, RingMember } from '@chat/cluster';
import { Pool } from 'pg';
import type { TestDatabase } from './db';
import { createCitusTestDatabase } from './citus';
import type { CitusTopology } from './citus';
import { createEngineTestDatabase } from './engine-db';
import { startEdge } from './edge';
import type { EdgeHandle } from './edge';
import type { EtcdCluster, EtcdHandle } from './etcd';
import { clusterOfOne, startEtcd, startEtcdCluster } from './etcd';
import { startSecureEtcd } from './secure-etcd';
import type { NodeProcess } from './node-process';
import { TEST_SECRET, startNodeProcess } from './node-process';
import type { ServiceProcess } from './service-process';
import { startServiceProcess } from './service-process';
import type { LocalTls } from './local-tls';
import { issueRpcTls } from './rpc-tls';
import type { S3Handle } from './s3';
import { startS3 } from './s3';
import { freePort } from './free-port';
import { waitFor } from './wait';

export const TEST_CLUSTER_SECRET = 'test-cluster-secret';

export interface ClusterOptions {
  /** Nodes started, named node-1..node-N (default 3). */
  readonly nodes?: number;
  /** The first M of them are ring members (default all). */
  readonly members?: number;
  /** Lease TTL of node registrations, seconds (default 3, short so failover tests are quick). */
  readonly leaseTtlSec?: number;
  /** Extra environment for every node. */
  readonly nodeEnv?: Readonly<Record<string, string>>;
  /**
   * Postgres server to create the database on (default: the shared test server, or the run's
   * Citus cluster in the jest `citus` project).
   */
  readonly adminUrl?: string;
  /** A Citus cluster to create the database on instead (`npm start -- --citus`). */
  readonly citus?: CitusTopology;
  /**
   * `host:port` the nodes reach the database server through instead of its own address: a
   * fault proxy in front of it. The test's own connections (`sql`, creating and dropping the
   * database) go to the server directly.
   */
  readonly databaseProxy?: string;
  readonly prefix?: string;
  /** Secret that device tokens are signed with (default the test secret). */
  readonly authSecret?: string;
  /** Turn on the registry's dev token endpoint. */
  readonly devTokens?: boolean;
  /** Serve the web chat client and the cluster dashboard from the registry. */
  readonly web?: boolean;
  /** Guard the dashboard with this operator token (CHAT_OPERATOR_TOKEN); open without. */
  readonly operatorToken?: string;
  /**
   * Object storage for attachments: a running S3 server (the caller closes it), or true to
   * start one owned by the cluster (see `cluster.s3`). Nodes get the CHAT_S3_* settings.
   */
  readonly s3?: S3Handle | true;
  /**
   * A secure cluster (`npm start -- --secure`, the TLS tests): the local CA that the cluster's
   * TLS pieces (RPC links, etcd) take their certificates from. The caller closes it.
   */
  readonly tls?: LocalTls;
  /**
   * etcd with TLS and client certificates from `tls`, and auth on: every process gets the chat
   * user's CHAT_ETCD_* settings (see secure-etcd.ts). Needs `tls`.
   */
  readonly secureEtcd?: boolean;
  /**
   * etcd members (default 1). With more, every process is given all their client URLs and
   * `cluster.etcdCluster.members` stops and starts them one by one (quorum tests).
   */
  readonly etcdMembers?: number;
  /**
   * Clients through the TLS edge (needs `tls`): nginx on a free port (`cluster.edge`), and the
   * registry and nodes told its URL (CHAT_EDGE_URL), so routes name `wss://<edge>/n/<node>/ws`.
   */
  readonly edge?: boolean;
}

export interface RouteAnswer {
  readonly user: string;
  readonly node: string;
  readonly url: string;
  readonly epoch: number;
}

/** The registry's `/v1/ring`: the ring's epoch and every node it knows. */
export interface RegistryRing {
  readonly epoch: number;
  readonly nodes: ReadonlyArray<{
    readonly id: string;
    readonly live: boolean;
    readonly member: boolean;
  }>;
}

export class TestCluster {
  readonly nodes = new Map<string, NodeProcess>();
  private readonly ringStore: RingConfigStore;
  /** The object storage nodes use, when the cluster was started with the `s3` option. */
  s3: S3Handle | undefined;
  private ownsS3 = false;
  /** Ids usersOn() has handed out. */
  private readonly usersHandedOut = new Set<string>();
  /** The TLS edge, when the cluster was started with the `edge` option. */
  edge: EdgeHandle | undefined;

  private constructor(
    /** Every etcd member (one unless the `etcdMembers` option asked for more). */
    readonly etcdCluster: EtcdCluster,
    private readonly etcdClient: ReturnType<typeof createEtcdClient>,
    readonly db: TestDatabase,
    readonly sql: Pool,
    readonly prefix: string,
    public registry: ServiceProcess,
    private readonly options: ClusterOptions,
    /** CHAT_EDGE_URL of the registry and the nodes (the `edge` option). */
    readonly edgeUrl: string | undefined,
    /** How processes (CHAT_ETCD_* variables) and in-process clients reach etcd. */
    readonly etcdAccess: EtcdAccess,
  ) {
    this.ringStore = new RingConfigStore({ etcd: etcdClient, prefix });
  }

  static async start(options: ClusterOptions = {}): Promise<TestCluster> {
    const count = options.nodes ?? 3;
    const members = options.members ?? count;
    const prefix = options.prefix ?? '/chat';
    const { etcd, access: etcdAccess } = await startClusterEtcd(options, prefix);
    const etcdClient = createEtcdClient({
      endpoints: etcd.endpoints,
      security: etcdAccess.security,
    });
    const db =
      options.citus === undefined
        ? await createEngineTestDatabase('cluster', options.adminUrl)
        : await createCitusTestDatabase('cluster', options.citus);
    const sql = new Pool({ connectionString: db.url, max: 2 });
    sql.on('error', () => undefined);
    let registry: ServiceProcess;
    let edgeUrl: string | undefined;
    try {
      if (options.edge === true && options.tls === undefined)
        throw new Error('the edge option needs the tls option (its certificate)');
      // The edge's port is chosen first: the registry and the nodes hand out its URL.
      if (options.edge === true) edgeUrl = `https://127.0.0.1:${await freePort()}`;
      registry = await startRegistryProcess(etcdAccess.env, prefix, options, edgeUrl);
    } catch (err) {
      etcdClient.close();
      await Promise.allSettled([etcd.close(), sql.end().then(() => db.drop())]);
      throw err;
    }
    const cluster = new TestCluster(
      etcd,
      etcdClient,
      db,
      sql,
      prefix,
      registry,
      options,
      edgeUrl,
      etcdAccess,
    );
    try {
      if (options.s3 === true) {
        cluster.s3 = await startS3();
        cluster.ownsS3 = true;
      } else {
        cluster.s3 = options.s3;
      }
      await cluster.setMembers(Array.from({ length: members }, (_, i) => `node-${i + 1}`));
      const started = await Promise.allSettled(
        Array.from({ length: count }, (_, i) => cluster.startNode(`node-${i + 1}`)),
      );
      const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed !== undefined) throw failed.reason;
      // The registry and every node learn of the others through their etcd watches: until all
      // of them have, a route may name a node whose own view sends the user elsewhere.
      await cluster.registryLiveMembers(Math.min(count, members));
      await cluster.viewsAgree();
      if (edgeUrl !== undefined) {
        cluster.edge = await startEdge({
          tls: options.tls!,
          port: Number(new URL(edgeUrl).port),
          registryUrl: cluster.registryUrl,
          etcdEndpoint: etcd.endpoints,
          etcdSecurity: etcdAccess.security,
          prefix,
        });
        await cluster.edgeRoutes([...cluster.nodes.keys()]);
      }
    } catch (err) {
      // Whatever did start must not outlive the failed setup (it would keep jest alive).
      await cluster.close();
      throw err;
    }
    return cluster;
  }

  /** The cluster's etcd when it has a single member (the default). */
  get etcd(): EtcdHandle {
    const { members } = this.etcdCluster;
    if (members.length !== 1 || members[0] === undefined) {
      throw new Error(`this cluster's etcd has ${members.length} members: use etcdCluster`);
    }
    return members[0];
  }

  get registryUrl(): string {
    return `http://127.0.0.1:${this.registry.port}`;
  }

  /** The registry's internal listener (`/metrics`). */
  get registryInternalUrl(): string {
    const url = this.registry.listening['internalUrl'];
    if (typeof url !== 'string') throw new Error('the registry did not say its internalUrl');
    return url;
  }

  /** Where clients reach the registry and the web pages: the edge's https URL when there is one. */
  get publicUrl(): string {
    return this.edgeUrl ?? this.registryUrl;
  }

  /** Waits until the edge's running configuration routes every node in `nodeIds`. */
  async edgeRoutes(nodeIds: readonly string[], timeoutMs = 10_000): Promise<void> {
    const edge = this.edge;
    if (edge === undefined) throw new Error('this cluster has no edge');
    await waitFor(() => {
      const missing = nodeIds.filter((id) => !edge.routedNodes().includes(id));
      if (missing.length > 0) throw new Error(`the edge does not route ${missing.join(', ')} yet`);
    }, timeoutMs);
  }

  node(nodeId: string): NodeProcess {
    const node = this.nodes.get(nodeId);
    if (node === undefined) throw new Error(`no node ${nodeId} in this cluster`);
    return node;
  }

  /** The database as the nodes reach it: through the `databaseProxy` when there is one. */
  private get nodeDatabaseUrl(): string {
    const proxy = this.options.databaseProxy;
    if (proxy === undefined) return this.db.url;
    const url = new URL(this.db.url);
    url.host = proxy;
    return url.toString();
  }

  /** Starts (or restarts) a node process; it registers itself but is a member only if configured. */
  async startNode(
    nodeId: string,
    env: Readonly<Record<string, string>> = {},
  ): Promise<NodeProcess> {
    // A secure cluster's RPC links run over mutual TLS with certificates from its local CA.
    const rpcTls =
      this.options.tls === undefined ? undefined : await issueRpcTls(this.options.tls, nodeId);
    const node = await startNodeProcess({
      databaseUrl: this.nodeDatabaseUrl,
      nodeId,
      ...(rpcTls === undefined ? {} : { rpcTls }),
      env: {
        ...this.etcdAccess.env,
        CHAT_ETCD_PREFIX: this.prefix,
        CHAT_CLUSTER_SECRET: TEST_CLUSTER_SECRET,
        CHAT_LEASE_TTL_SEC: String(this.options.leaseTtlSec ?? 3),
        CHAT_AUTH_SECRET: this.options.authSecret ?? TEST_SECRET,
        ...(this.edgeUrl !== undefined ? { CHAT_EDGE_URL: this.edgeUrl } : {}),
        ...this.s3?.nodeEnv(),
        ...this.options.nodeEnv,
        ...env,
      },
    });
    this.nodes.set(nodeId, node);
    return node;
  }

  /** Writes the ring configuration (compare-and-swap, retried on a lost race). */
  async setMembers(
    ids: readonly string[],
    weights: Readonly<Record<string, number>> = {},
  ): Promise<number> {
    for (let attempt = 0; attempt < 10; attempt++) {
      const current = await this.ringStore.readRing();
      const members: RingMember[] = ids.map((id) => ({ id, weight: weights[id] ?? 1 }));
      const epoch = (current?.config.epoch ?? 0) + 1;
      const result = await this.ringStore.casRing(current?.modRevision ?? 0, { epoch, members });
      if (result.ok) return epoch;
    }
    throw new Error('could not write the ring configuration: lost the compare-and-swap 10 times');
  }

  /** Waits until the registry routes to `expected` live members. */
  async registryLiveMembers(expected: number, timeoutMs = 10_000): Promise<void> {
    await waitFor(async () => {
      const res = await fetch(`${this.registryUrl}/readyz`);
      const body = (await res.json()) as { liveMembers?: number };
      if (body.liveMembers !== expected) {
        throw new Error(`registry sees ${String(body.liveMembers)} live members, not ${expected}`);
      }
    }, timeoutMs);
  }

  /**
   * Waits until every running node places a sample of users where the registry routes them:
   * the cluster's views of the ring agree.
   */
  async viewsAgree(timeoutMs = 10_000): Promise<void> {
    const users = Array.from({ length: 32 }, (_, i) => `probe-${i}`);
    await waitFor(async () => {
      const routed = await Promise.all(users.map(async (u) => (await this.route(u)).node));
      for (const node of this.nodes.values()) {
        const { owners } = await this.ownersAt(node.nodeId, users);
        const differ = users.filter((u, i) => owners[u] !== routed[i]);
        if (differ.length > 0) {
          throw new Error(`${node.nodeId} places ${differ.length} sample users elsewhere`);
        }
      }
    }, timeoutMs);
  }

  /** Where a running node places `users` (its `/v1/owners`), and the ring epoch it uses. */
  async ownersAt(
    nodeId: string,
    users: readonly string[],
  ): Promise<{ epoch: number; owners: Record<string, string | null> }> {
    const res = await fetch(`${this.node(nodeId).internalUrl}/v1/owners?users=${users.join(',')}`);
    if (res.status !== 200) throw new Error(`${nodeId} answered ${res.status} for /v1/owners`);
    return (await res.json()) as { epoch: number; owners: Record<string, string | null> };
  }

  /**
   * `count` fresh user ids (`<prefix>0`, `<prefix>1`, ...) that the registry places on `nodeId`;
   * an id handed out once is not handed out again by this cluster.
   */
  async usersOn(nodeId: string, count: number, prefix: string): Promise<string[]> {
    const out: string[] = [];
    for (let i = 0; out.length < count && i < 10_000; i++) {
      const id = `${prefix}${i}`;
      if (this.usersHandedOut.has(id)) continue;
      if ((await this.route(id)).node === nodeId) {
        this.usersHandedOut.add(id);
        out.push(id);
      }
    }
    if (out.length < count) throw new Error(`could not find ${count} users on ${nodeId}`);
    return out;
  }

  /** The ring as the registry serves it. */
  async registryRing(): Promise<RegistryRing> {
    const res = await fetch(`${this.registryUrl}/v1/ring`);
    if (res.status !== 200) throw new Error(`registry answered ${res.status} for /v1/ring`);
    return (await res.json()) as RegistryRing;
  }

  /** node id -> lease of its registration key, as etcd has it now. */
  async registrations(): Promise<Record<string, string>> {
    const { nodesPrefix } = clusterKeys(this.prefix);
    const res = await this.etcdClient.getAll().prefix(nodesPrefix).exec();
    const out: Record<string, string> = {};
    for (const kv of res.kvs) out[kv.key.toString('utf8').slice(nodesPrefix.length)] = kv.lease;
    return out;
  }

  /** Asks the registry where a user belongs. */
  async route(user: string): Promise<RouteAnswer> {
    const res = await fetch(`${this.registryUrl}/v1/route?user=${encodeURIComponent(user)}`);
    if (res.status !== 200)
      throw new Error(`registry answered ${res.status} for ${user}: ${await res.text()}`);
    return (await res.json()) as RouteAnswer;
  }

  async restartRegistry(): Promise<void> {
    await this.registry.stop();
    this.registry = await startRegistryProcess(
      this.etcdAccess.env,
      this.prefix,
      this.options,
      this.edgeUrl,
    );
  }

  async close(): Promise<void> {
    await this.edge?.close();
    await Promise.allSettled([...this.nodes.values()].map((n) => n.stop()));
    await this.registry.stop();
    this.etcdClient.close();
    await this.etcdCluster.close();
    await this.sql.end();
    await this.db.drop();
    if (this.ownsS3) await this.s3?.close();
  }
}

/** CHAT_ETCD_* of the cluster's processes, and the same for clients in this process. */
export interface EtcdAccess {
  readonly env: Readonly<Record<string, string>>;
  readonly security: EtcdSecurity;
}

async function startClusterEtcd(
  options: ClusterOptions,
  prefix: string,
): Promise<{ etcd: EtcdCluster; access: EtcdAccess }> {
  const members = options.etcdMembers ?? 1;
  if (options.secureEtcd !== true) {
    const etcd =
      members === 1 ? clusterOfOne(await startEtcd()) : await startEtcdCluster({ members });
    return { etcd, access: { env: { CHAT_ETCD_ENDPOINTS: etcd.endpoint }, security: {} } };
  }
  if (options.tls === undefined) throw new Error('the secureEtcd option needs the tls option');
  if (members !== 1) throw new Error('the secureEtcd option runs a single etcd member');
  const { etcd, env, security } = await startSecureEtcd(options.tls, prefix);
  return { etcd: clusterOfOne(etcd), access: { env, security } };
}

function startRegistryProcess(
  etcdEnv: Readonly<Record<string, string>>,
  prefix: string,
  options: ClusterOptions,
  edgeUrl: string | undefined,
): Promise<ServiceProcess> {
  const vapidPublicKey = options.nodeEnv?.['CHAT_PUSH_WEBPUSH_VAPID_PUBLIC_KEY'];
  return startServiceProcess({
    name: 'registry',
    script: 'packages/registry/src/main.ts',
    env: {
      ...etcdEnv,
      CHAT_ETCD_PREFIX: prefix,
      CHAT_REGISTRY_HOST: '127.0.0.1',
      CHAT_REGISTRY_PORT: '0',
      ...(options.devTokens
        ? { CHAT_DEV_TOKENS: '1', CHAT_AUTH_SECRET: options.authSecret ?? TEST_SECRET }
        : {}),
      ...(options.web ? { CHAT_REGISTRY_WEB: '1' } : {}),
      ...(options.operatorToken ? { CHAT_OPERATOR_TOKEN: options.operatorToken } : {}),
      ...(edgeUrl !== undefined ? { CHAT_EDGE_URL: edgeUrl } : {}),
      // The chat page subscribes with the nodes' VAPID key: the registry serves that one.
      ...(vapidPublicKey !== undefined
        ? { CHAT_PUSH_WEBPUSH_VAPID_PUBLIC_KEY: vapidPublicKey }
        : {}),
    },
  });
}
