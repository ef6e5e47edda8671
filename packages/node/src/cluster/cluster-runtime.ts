/**
 * A chat node's membership in the cluster: etcd registration under a lease, the watched ring,
 * the RPC server and peer pool, forwarding of deliveries, and moving users whose owner changed.
 */
import type { ClusterView, NodeRegistration } from '@chat/cluster';
import { createEtcdClient, register, watchCluster } from '@chat/cluster';
import { PeerPool, RpcServer } from '@chat/rpc';
import type { Logger } from 'pino';
import type { ChatNode } from '../chat-node';
import type { Clock } from '../clock';
import type { DeliveryFabric, LocalDeliverer } from '../routing';
import type { ClusterConfig } from './cluster-config';

type EtcdClient = ReturnType<typeof createEtcdClient>;
import { clusterFabric } from './cluster-fabric';
import { RingOwnership } from './ring-ownership';
import { Deliver } from './rpc-methods';
import { UserMover } from './user-mover';

export class ClusterRuntime {
  readonly ownership: RingOwnership;
  readonly fabric: (local: LocalDeliverer) => DeliveryFabric;
  private registration: NodeRegistration | undefined;
  private mover: UserMover | undefined;
  private disposers: Array<() => void> = [];

  private constructor(
    private readonly config: ClusterConfig,
    private readonly nodeId: string,
    private readonly etcd: EtcdClient,
    private readonly view: ClusterView,
    private readonly rpc: RpcServer,
    private readonly pool: PeerPool,
    private readonly clock: Clock,
    private readonly log: Logger,
  ) {
    this.ownership = new RingOwnership(nodeId);
    this.ownership.update(view.snapshot);
    this.fabric = clusterFabric({
      ownership: this.ownership,
      pool,
      log: log.child({ component: 'fabric' }),
    });
  }

  /** Connects to etcd, reads the cluster and opens the RPC port; the node is not registered yet. */
  static async connect(
    config: ClusterConfig,
    nodeId: string,
    clock: Clock,
    log: Logger,
  ): Promise<ClusterRuntime> {
    const etcd = createEtcdClient({ endpoints: config.etcdEndpoints });
    const view = watchCluster({
      etcd,
      prefix: config.prefix,
      logger: log.child({ component: 'cluster-view' }),
    });
    await view.ready();
    const rpcLog = log.child({ component: 'rpc' });
    const rpc = new RpcServer({ nodeId, secret: config.clusterSecret, logger: rpcLog });
    await rpc.listen({ host: config.rpcHost, port: config.rpcPort });
    const pool = new PeerPool({ nodeId, secret: config.clusterSecret, logger: rpcLog });
    return new ClusterRuntime(config, nodeId, etcd, view, rpc, pool, clock, log);
  }

  get rpcAddress(): string {
    return this.config.rpcAdvertise ?? `${this.config.rpcHost}:${this.rpc.port}`;
  }

  /** Serves peers, follows ring changes and registers this node, which makes it alive. */
  async start(node: ChatNode, wsUrl: string): Promise<void> {
    this.rpc.handle(Deliver, (req) => ({ pushed: node.pushToLocalDevices(req.deliveries) }));
    const mover = new UserMover({
      ratePerSec: this.config.moveRatePerSec,
      clock: this.clock,
      connectedUsers: () => node.connectedUsers(),
      ownsLocally: (user) => this.ownership.ownsLocally(user),
      move: (user) => node.moveUser(user),
    });
    this.mover = mover;
    this.disposers.push(
      this.view.onChange(({ snapshot }) => {
        if (this.ownership.update(snapshot)) {
          this.log.info(
            { epoch: this.ownership.epoch(), members: this.view.liveMembers().map((m) => m.id) },
            'ring changed',
          );
          mover.onRingChange();
        }
      }),
    );
    const registration = await register({
      etcd: this.etcd,
      prefix: this.config.prefix,
      ttlSec: this.config.leaseTtlSec,
      node: {
        nodeId: this.nodeId,
        wsUrl,
        rpcAddress: this.rpcAddress,
        weight: this.config.weight,
        startedAt: this.clock.now(),
      },
      logger: this.log.child({ component: 'registration' }),
    });
    this.registration = registration;
    this.disposers.push(
      registration.onLost((err) =>
        this.log.warn({ err }, 'lost etcd registration; re-registering'),
      ),
      registration.onRegistered((r) =>
        this.log.info({ generation: r.generation }, 'registered in etcd'),
      ),
    );
    // The view may have changed between connect() and now (our own key, for one).
    if (this.ownership.update(this.view.snapshot)) mover.onRingChange();
  }

  /** Leaves the cluster at once (revokes the lease) so that peers stop routing here. */
  async leave(): Promise<void> {
    this.mover?.stop();
    await this.registration
      ?.close()
      .catch((err: unknown) => this.log.warn({ err }, 'revoking the lease failed'));
  }

  async close(): Promise<void> {
    for (const dispose of this.disposers.splice(0)) dispose();
    await this.view.close();
    await this.rpc.close();
    await this.pool.close();
    this.etcd.close();
  }
}
