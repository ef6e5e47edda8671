/**
 * A chat node's membership in the cluster: etcd registration under a lease, the watched ring,
 * the RPC server and peer pool, forwarding of deliveries, draining users whose owner changed,
 * closing finished transitions (when elected), and leaving cleanly at shutdown.
 */
import type { ClusterView, DrainProgress, Election, NodeRegistration } from '@chat/cluster';
import {
  RingConfigStore,
  clusterKeys,
  createEtcdClient,
  register,
  startElection,
  watchCluster,
} from '@chat/cluster';
import { PeerPool, RpcServer } from '@chat/rpc';
import type { Logger } from 'pino';
import type { ChatNode } from '../chat-node';
import type { Clock } from '../clock';
import type { DeliveryFabric, LocalDeliverer } from '../routing';
import type { ClusterConfig } from './cluster-config';
import { clusterFabric } from './cluster-fabric';
import { clusterPresence } from './cluster-presence';
import type { LocalPresence, PresencePeers } from '../presence';
import { DrainController } from './drain-controller';
import { RingOwnership } from './ring-ownership';
import type { MetricSources } from '../metrics';
import {
  deliverRequestFromPeer,
  presenceRequestFromPeer,
  receiptNoticesFromPeer,
  typingRequestFromPeer,
  validatedFromPeer,
} from './peer-payloads';
import { Deliver, NotifyReceipts, Presence, TypingNotify } from './rpc-methods';
import { TransitionCloser } from './transition-closer';

type EtcdClient = ReturnType<typeof createEtcdClient>;

/** How often the elected node checks whether the open transition can be closed. */
const CLOSER_CHECK_MS = 500;

export class ClusterRuntime {
  readonly ownership: RingOwnership;
  readonly fabric: (local: LocalDeliverer) => DeliveryFabric;
  /** Presence questions and typing notices to the users' owner nodes. */
  readonly presence: (local: LocalPresence) => PresencePeers;
  private registration: NodeRegistration | undefined;
  private drain: DrainController | undefined;
  private closer: TransitionCloser | undefined;
  private leaving = false;
  /** Moved connections still open for their overlap (ChatNode.overlappingMoves). */
  private overlappingMoves: () => number = () => 0;
  private readonly disposers: Array<() => void> = [];

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
    this.ownership = new RingOwnership(
      nodeId,
      clock,
      config.dualDeliveryGraceMs,
      config.edgeOrigin,
    );
    this.ownership.update(view.snapshot);
    this.fabric = clusterFabric({
      ownership: this.ownership,
      pool,
      log: log.child({ component: 'fabric' }),
    });
    this.presence = clusterPresence({
      ownership: this.ownership,
      pool,
      log: log.child({ component: 'presence' }),
    });
  }

  /** Connects to etcd, reads the cluster and opens the RPC port; the node is not registered yet. */
  static async connect(
    config: ClusterConfig,
    nodeId: string,
    clock: Clock,
    log: Logger,
  ): Promise<ClusterRuntime> {
    const etcd = createEtcdClient({
      endpoints: config.etcdEndpoints,
      security: config.etcdSecurity,
    });
    const view = watchCluster({
      etcd,
      prefix: config.prefix,
      logger: log.child({ component: 'cluster-view' }),
    });
    await view.ready();
    const rpcLog = log.child({ component: 'rpc' });
    const transport = {
      secret: config.clusterSecret,
      logger: rpcLog,
      ...(config.rpcTls === undefined ? {} : { tls: config.rpcTls }),
    };
    if (config.rpcPlaintextInProduction) {
      rpcLog.warn(
        {},
        'CHAT_RPC_ALLOW_PLAINTEXT=1: RPC between nodes is NOT encrypted; every forwarded message crosses the network in clear',
      );
    }
    const rpc = new RpcServer({ nodeId, ...transport });
    await rpc.listen({ host: config.rpcHost, port: config.rpcPort });
    const pool = new PeerPool({ nodeId, ...transport });
    return new ClusterRuntime(config, nodeId, etcd, view, rpc, pool, clock, log);
  }

  get rpcAddress(): string {
    return this.config.rpcAdvertise ?? `${this.config.rpcHost}:${this.rpc.port}`;
  }

  /** Serves peers, follows ring changes and registers this node, which makes it alive. */
  async start(node: ChatNode, wsUrl: string, internalUrl: string): Promise<void> {
    this.overlappingMoves = () => node.overlappingMoves;
    const fromPeer = validatedFromPeer(this.log.child({ component: 'rpc-handlers' }));
    this.rpc.handle(
      Deliver,
      fromPeer(deliverRequestFromPeer, (req) => ({
        pushed: node.pushToLocalDevices(req.deliveries),
      })),
    );
    this.rpc.handle(
      NotifyReceipts,
      fromPeer(receiptNoticesFromPeer, (req) => ({ pushed: node.pushReceipts(req.notices) })),
    );
    this.rpc.handle(
      Presence,
      fromPeer(presenceRequestFromPeer, (req) => ({
        online: req.users.map((user) => node.sessions.isOnline(user)),
      })),
    );
    this.rpc.handle(
      TypingNotify,
      fromPeer(typingRequestFromPeer, (req) => ({ pushed: node.pushTyping(req.items) })),
    );
    const drainKey = clusterKeys(this.config.prefix).drain(this.nodeId);
    const drain = new DrainController({
      nodeId: this.nodeId,
      clock: this.clock,
      connectedUsers: () => node.connectedUsers(),
      ownsLocally: (user) => this.ownership.ownsLocally(user),
      move: (user) => node.moveUser(user),
      publish: (progress) => this.publishDrain(drainKey, progress),
    });
    this.drain = drain;
    this.disposers.push(
      this.view.onChange(({ snapshot }) => {
        const change = this.ownership.update(snapshot);
        if (!change.ringChanged && !change.epochChanged) return;
        if (change.ringChanged) {
          this.log.info(
            {
              epoch: this.ownership.epoch(),
              members: this.ownership.routeTable.members.map((m) => m.id),
            },
            'ring changed',
          );
        }
        drain.onTopology(this.ownership.epoch(), this.drainRate(), change.ringChanged);
      }),
    );
    const registration = await register({
      etcd: this.etcd,
      prefix: this.config.prefix,
      ttlSec: this.config.leaseTtlSec,
      node: {
        nodeId: this.nodeId,
        wsUrl,
        internalUrl,
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
      // A new lease lost the drain key of the old one: publish it again.
      registration.onRegistered(() => this.publishDrain(drainKey, drain.progress())),
    );
    // Catch up with changes since connect(), and publish this node's first (idle) progress.
    const change = this.ownership.update(this.view.snapshot);
    drain.onTopology(this.ownership.epoch(), this.drainRate(), change.ringChanged);

    const election = startElection({
      etcd: this.etcd,
      prefix: this.config.prefix,
      name: 'transition-closer',
      candidateId: this.nodeId,
      ttlSec: this.config.leaseTtlSec,
      logger: this.log.child({ component: 'election' }),
    });
    this.closer = new TransitionCloser({
      view: this.view,
      ringStore: new RingConfigStore({ etcd: this.etcd, prefix: this.config.prefix }),
      election,
      graceMs: this.config.transitionGraceMs,
      checkEveryMs: CLOSER_CHECK_MS,
      clock: this.clock,
      log: this.log.child({ component: 'transition-closer' }),
    });
    this.disposers.push(() => void election.close().catch(() => undefined));
  }

  /**
   * Campaigns for a single-runner job (e.g. `retention-cleanup`) with this node's lease TTL:
   * if the leader dies, another node takes over within about that TTL. Closed with the runtime.
   */
  elect(name: string): Election {
    const election = startElection({
      etcd: this.etcd,
      prefix: this.config.prefix,
      name,
      candidateId: this.nodeId,
      ttlSec: this.config.leaseTtlSec,
      logger: this.log.child({ component: 'election', election: name }),
    });
    this.disposers.push(() => void election.close().catch(() => undefined));
    return election;
  }

  /**
   * Graceful exit: marks this node as leaving (it drops out of everyone's ring but stays
   * reachable for dual delivery), moves its users away at the shutdown rate, waits for moved
   * connections that overlap to close, then revokes its lease. Bounded by the shutdown timeout.
   */
  async drainAndLeave(): Promise<void> {
    this.leaving = true;
    this.closer?.close();
    const deadline = this.clock.now() + this.config.shutdownTimeoutMs;
    try {
      await this.registration?.update({ leaving: true });
      // Our own view must show us leaving before the drain knows who to move.
      while (
        this.view.snapshot.nodes.get(this.nodeId)?.leaving !== true &&
        this.clock.now() < deadline
      ) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      const left = this.drain?.idle() ?? Promise.resolve();
      await Promise.race([
        left,
        new Promise((resolve) => setTimeout(resolve, Math.max(0, deadline - this.clock.now()))),
      ]);
      // Moved devices still overlapping are being delivered to here until they are at home on
      // their new owner: the lease (and with it dual delivery) stays until they have left.
      while (this.overlappingMoves() > 0 && this.clock.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      this.log.info({ remaining: this.drain?.remaining ?? 0 }, 'drain before exit finished');
    } catch (err) {
      this.log.warn({ err }, 'could not drain before leaving');
    }
    this.drain?.stop();
    await this.registration
      ?.close()
      .catch((err: unknown) => this.log.warn({ err }, 'revoking the lease failed'));
  }

  /** Ring, RPC peer and drain figures for `/metrics`. */
  metricSources(): Required<Omit<MetricSources, 'local' | 'push'>> {
    return {
      ring: () => ({
        epoch: this.ownership.epoch(),
        members: this.ownership.routeTable.config?.members.length ?? 0,
        live: this.ownership.routeTable.members.length,
      }),
      peers: () => this.pool.stats(),
      drain: () => this.drain?.progress(),
    };
  }

  /**
   * Why this node should not get traffic, or undefined when it may: it must have read the
   * cluster state from etcd, see its own registration, and not be leaving.
   */
  notReadyReason(): string | undefined {
    if (this.leaving) return 'leaving the cluster';
    const snapshot = this.view.snapshot;
    if (snapshot.revision === 0) return 'cluster state not read from etcd yet';
    const self = snapshot.nodes.get(this.nodeId);
    if (self === undefined) return 'not registered in etcd';
    if (self.leaving === true) return 'leaving the cluster';
    return undefined;
  }

  async close(): Promise<void> {
    this.closer?.close();
    this.drain?.stop();
    for (const dispose of this.disposers.splice(0)) dispose();
    await this.view.close();
    await this.rpc.close();
    await this.pool.close();
    this.etcd.close();
  }

  private drainRate(): number {
    if (this.leaving) return this.config.shutdownDrainRatePerSec;
    return this.ownership.transitionRate() ?? this.config.drainRatePerSec;
  }

  private publishDrain(key: string, progress: DrainProgress): void {
    this.registration?.publishUnderLease(key, JSON.stringify(progress));
  }
}
