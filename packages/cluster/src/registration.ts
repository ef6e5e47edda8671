import { ChatError } from '@chat/protocol';
import type { Lease, Namespace } from 'etcd3';
import { etcdRetryDelay, Sleeper } from './backoff';
import { toClusterError } from './errors';
import { LeaseKeeper } from './lease-keeper';
import { silentLogger } from './logger';
import type { ClusterLogger } from './logger';
import { clusterKeys, parseNodeInfo } from './model';
import type { NodeInfo } from './model';
import { Signal } from './signal';
import type { Disposer } from './signal';

export interface RegistrationOptions {
  /** An etcd3 client (or namespace of one); the registration does not close it. */
  readonly etcd: Namespace;
  /** Cluster key prefix, e.g. `/chat`. */
  readonly prefix: string;
  readonly node: NodeInfo;
  /** Lease TTL in whole seconds (default 10, at least 1). */
  readonly ttlSec?: number;
  /**
   * How long `register()` waits for the first registration before it gives up, ms
   * (default 30 000). Later re-registrations retry until close().
   */
  readonly registerTimeoutMs?: number;
  /** Deadline of each grant / put call, ms (default 5000). */
  readonly callTimeoutMs?: number;
  readonly logger?: ClusterLogger;
}

/** Passed to `onRegistered` listeners. */
export interface Registered {
  /** The lease holding the node key, as etcd's decimal string. */
  readonly leaseId: string;
  /** Revision of the put that wrote the node key. */
  readonly revision: number;
  /** 1 for the first registration, +1 for each re-registration after a lost lease. */
  readonly generation: number;
}

/**
 * Keeps `P/nodes/<nodeId>` alive under a lease (renewed by a {@link LeaseKeeper}). The lease
 * is given up only when etcd answers that it expired (the node was cut off from a working etcd
 * for longer than the TTL): then it says so and registers again with a new lease. An etcd that
 * answers nothing (down, or without quorum) is waited out under the same lease. `close()`
 * revokes the lease: the node leaves the cluster at once.
 *
 * @example
 * const reg = await register({ etcd, prefix: '/chat', node: { nodeId: 'node-1', wsUrl, rpcAddress, weight: 1, startedAt: Date.now() }, logger });
 * const off = reg.onLost((err) => log.warn({ err }, 'not registered in etcd'));
 * // ... on shutdown:
 * off();
 * await reg.close();
 */
export async function register(options: RegistrationOptions): Promise<NodeRegistration> {
  const registration = new NodeRegistration(options);
  await registration.started;
  return registration;
}

export class NodeRegistration {
  readonly key: string;
  /** Resolves after the first registration; rejects if it did not happen in time. */
  readonly started: Promise<void>;

  private readonly etcd: Namespace;
  private readonly ttlSec: number;
  private readonly callTimeoutMs: number;
  private readonly log: ClusterLogger;
  private readonly lostSignal: Signal<ChatError>;
  private readonly registeredSignal: Signal<Registered>;
  private readonly sleeper = new Sleeper();
  private keeper: LeaseKeeper | undefined;
  /** Values publishUnderLease() still has to write, by key, and the retry pause of each key. */
  private readonly unpublished = new Map<string, string>();
  private readonly publishing = new Map<string, Sleeper>();
  private lease: Lease | undefined;
  private current: NodeInfo;
  private generation = 0;
  private closed = false;
  private acquiring: Promise<void> | undefined;

  /** Prefer {@link register}, which waits for the first registration. */
  constructor(options: RegistrationOptions) {
    this.current = parseNodeInfo(options.node);
    this.etcd = options.etcd;
    this.key = clusterKeys(options.prefix).node(this.current.nodeId);
    this.ttlSec = options.ttlSec ?? 10;
    if (!Number.isInteger(this.ttlSec) || this.ttlSec < 1) {
      throw new RangeError(`ttlSec must be a whole number >= 1, got ${this.ttlSec}`);
    }
    this.callTimeoutMs = options.callTimeoutMs ?? 5_000;
    this.log = options.logger ?? silentLogger;
    this.lostSignal = new Signal('lost', this.log);
    this.registeredSignal = new Signal('registered', this.log);

    const timeoutMs = options.registerTimeoutMs ?? 30_000;
    this.started = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        off();
        reject(
          new ChatError('UNAVAILABLE', `could not register in etcd within ${timeoutMs} ms`, {
            key: this.key,
          }),
        );
        void this.close().catch(() => undefined);
      }, timeoutMs);
      const off = this.registeredSignal.add(() => {
        clearTimeout(timer);
        off();
        resolve();
      });
    });
    this.started.catch(() => undefined); // the caller of register() sees it
    this.startAcquiring();
  }

  /** Whether the key is currently held under a live lease (as far as this client knows). */
  get isRegistered(): boolean {
    return this.lease !== undefined;
  }

  /** Called when the lease is lost; re-registration starts right away. */
  onLost(listener: (err: ChatError) => void): Disposer {
    return this.lostSignal.add(listener);
  }

  /** Called after each (re-)registration. */
  onRegistered(listener: (event: Registered) => void): Disposer {
    return this.registeredSignal.add(listener);
  }

  /** What this node publishes about itself now. */
  get node(): NodeInfo {
    return this.current;
  }

  /**
   * Changes what the node publishes (e.g. `leaving: true` at shutdown); written now if
   * registered, and by every later re-registration.
   */
  async update(patch: Partial<Omit<NodeInfo, 'nodeId'>>): Promise<void> {
    this.current = parseNodeInfo({ ...this.current, ...patch });
    await this.putUnderLease(this.key, JSON.stringify(this.current));
  }

  /**
   * Writes a key under the node's lease, so it disappears with the node (drain progress).
   * Returns false when not registered right now (nothing written).
   */
  async putUnderLease(key: string, value: string): Promise<boolean> {
    const lease = this.lease;
    if (lease === undefined) return false;
    try {
      await lease
        .put(key)
        .value(value)
        .options({ deadline: Date.now() + this.callTimeoutMs });
      return true;
    } catch (err) {
      throw toClusterError(err, 'put', { key });
    }
  }

  /**
   * Writes `value` to `key` under the node's lease in the background, and retries a failed
   * write until it lands, a newer value for the key replaces it, or close(). Writes of one key
   * never overtake each other. While not registered nothing is written: publish again from
   * onRegistered. (A progress report lost to one failed write, e.g. right after etcd regained
   * quorum, would leave whoever waits for it waiting for good.)
   */
  publishUnderLease(key: string, value: string): void {
    this.unpublished.set(key, value);
    if (this.publishing.has(key) || this.closed) return;
    const sleeper = new Sleeper();
    this.publishing.set(key, sleeper);
    void this.publishLatest(key, sleeper);
  }

  private async publishLatest(key: string, sleeper: Sleeper): Promise<void> {
    for (let failures = 0; ;) {
      const value = this.unpublished.get(key);
      if (value === undefined || this.closed) {
        this.publishing.delete(key);
        return;
      }
      this.unpublished.delete(key);
      try {
        await this.putUnderLease(key, value);
        failures = 0;
      } catch (err) {
        if (!this.unpublished.has(key)) this.unpublished.set(key, value);
        this.log.debug({ err, key }, 'could not write under the node lease; retrying');
        await sleeper.sleep(etcdRetryDelay(failures++));
      }
    }
  }

  /** Revokes the lease (the key disappears now) and stops re-registering. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.sleeper.wake();
    this.keeper?.stop();
    for (const sleeper of this.publishing.values()) sleeper.wake();
    await this.acquiring;
    const lease = this.lease;
    this.lease = undefined;
    this.lostSignal.clear();
    this.registeredSignal.clear();
    if (!lease) return;
    try {
      await lease.revoke({ deadline: Date.now() + this.callTimeoutMs });
    } catch (err) {
      // The lease will expire by itself within the TTL.
      this.log.warn({ err, key: this.key }, 'could not revoke the node lease; it will expire');
    }
  }

  private startAcquiring(): void {
    this.acquiring ??= this.acquire().finally(() => {
      this.acquiring = undefined;
    });
  }

  private async acquire(): Promise<void> {
    for (let attempt = 0; !this.closed; attempt++) {
      const lease = this.etcd.lease(this.ttlSec, {
        deadline: Date.now() + this.callTimeoutMs,
        autoKeepAlive: false,
      });
      lease.on('lost', (err) => this.handleLost(lease, err));
      try {
        const leaseId = await lease.grant();
        const put = await lease
          .put(this.key)
          .value(JSON.stringify(this.current))
          .options({ deadline: Date.now() + this.callTimeoutMs });
        if (this.closed) {
          await lease.revoke().catch(() => undefined);
          return;
        }
        if (lease.revoked()) throw new Error('lease lost while registering');
        this.lease = lease;
        this.generation += 1;
        const event: Registered = {
          leaseId,
          revision: Number(put.header.revision),
          generation: this.generation,
        };
        this.log.info({ key: this.key, ...event }, 'registered in etcd');
        this.keeper = new LeaseKeeper({
          leaseClient: this.etcd.leaseClient,
          leaseId,
          ttlSec: this.ttlSec,
          key: this.key,
          log: this.log,
          onExpired: () => this.handleLost(lease, new Error(`lease ${leaseId} expired in etcd`)),
        });
        this.registeredSignal.emit(event);
        return;
      } catch (err) {
        lease.release();
        const delay = etcdRetryDelay(attempt);
        this.log.warn(
          { err: toClusterError(err, 'register', { key: this.key }), attempt, delay },
          'registration failed; retrying',
        );
        await this.sleeper.sleep(delay);
      }
    }
  }

  private handleLost(lease: Lease, err: Error): void {
    if (this.closed || lease !== this.lease) return; // not the live lease: acquire() handles it
    this.lease = undefined;
    this.keeper?.stop();
    this.keeper = undefined;
    lease.release();
    const error = toClusterError(err, 'keepalive', { key: this.key });
    this.log.warn({ err: error, key: this.key }, 'node lease lost; registering again');
    this.lostSignal.emit(error);
    this.startAcquiring();
  }
}
