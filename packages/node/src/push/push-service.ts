/**
 * Push notifications on a node (issue 18), put together: the targets cache, the queuer on the
 * delivery path, the requests of devices, and the delivery worker.
 */
import type { PushProviders } from '@chat/push';
import type { Delivery, PushIntent } from '@chat/store';
import type { Logger } from 'pino';
import type { PushOutboxConfig } from './push-config';
import { PushQueuer } from './push-queuer';
import type { PushTargetStore } from './push-registration';
import { PushRegistration } from './push-registration';
import type { PushOutboxStore, PushWorkerEvents, PushWorkerFigures } from './push-worker';
import { PushWorker } from './push-worker';
import type { DeviceTargets } from './targets-cache';
import { TargetsCache } from './targets-cache';

/** Everything push needs of the store (PgPushStore). */
export interface PushStore extends PushTargetStore, PushOutboxStore {
  targetsOfUsers(userIds: readonly string[]): Promise<ReadonlyMap<string, DeviceTargets>>;
  enqueue(
    userId: string,
    intents: readonly PushIntent[],
    now: number,
    windowMs: number,
  ): Promise<void>;
}

export interface PushServiceDeps {
  readonly nodeId: string;
  readonly store: PushStore;
  readonly providers: Pick<PushProviders, 'providerFor'>;
  readonly config: PushOutboxConfig;
  readonly isConnected: (user: string, device: string) => boolean;
  readonly isOwned: (user: string) => boolean;
  readonly now: () => number;
  readonly log: Logger;
  readonly events?: PushWorkerEvents;
}

/** What `/v1/stats`, `/metrics` and `chatctl status` show of push on a node. */
export type PushFigures = PushWorkerFigures & { readonly awaitingAck: number };

export class PushService {
  readonly registration: PushRegistration;
  private readonly targets: TargetsCache;
  private readonly queuer: PushQueuer;
  private readonly worker: PushWorker;
  private ackTimer: NodeJS.Timeout | undefined;

  constructor(private readonly deps: PushServiceDeps) {
    const { config } = deps;
    this.targets = new TargetsCache((users) => deps.store.targetsOfUsers(users), deps.now, {
      ttlMs: config.targetsCacheMs,
      maxUsers: config.targetsCacheUsers,
    });
    this.registration = new PushRegistration({
      store: deps.store,
      now: deps.now,
      invalidate: (user) => this.targets.invalidate(user),
      allowPrivateEndpoints: config.allowPrivateEndpoints,
    });
    this.queuer = new PushQueuer({
      targets: this.targets,
      enqueue: (user, intents, now) => deps.store.enqueue(user, intents, now, config.windowMs),
      isConnected: deps.isConnected,
      isOwned: deps.isOwned,
      now: deps.now,
      log: deps.log,
      ackWaitMs: config.ackWaitMs,
    });
    this.worker = new PushWorker({
      nodeId: deps.nodeId,
      store: deps.store,
      providers: deps.providers,
      isOwned: deps.isOwned,
      now: deps.now,
      log: deps.log,
      options: config,
      ...(deps.events ? { events: deps.events } : {}),
      onTargetGone: (user) => this.targets.invalidate(user),
    });
  }

  start(): void {
    this.worker.start();
    this.ackTimer = setInterval(
      () => this.queuer.checkAcks(),
      Math.max(50, Math.min(1000, this.deps.config.ackWaitMs / 4)),
    );
    this.ackTimer.unref();
  }

  onDelivered(deliveries: readonly Delivery[]): void {
    this.queuer.onDelivered(deliveries);
  }

  noteAck(user: string, device: string, seq: number): void {
    this.queuer.noteAck(user, device, seq);
  }

  figures(): PushFigures {
    return { ...this.worker.figures(), awaitingAck: this.queuer.awaitingCount };
  }

  async stop(): Promise<void> {
    if (this.ackTimer !== undefined) clearInterval(this.ackTimer);
    await this.queuer.flush();
    await this.worker.stop();
  }
}
