import type { IKeyValue, IWatchResponse, Namespace, Watcher } from 'etcd3';
import { etcdRetryDelay, Sleeper } from './backoff';
import { toClusterError } from './errors';
import { silentLogger } from './logger';
import type { ClusterLogger } from './logger';
import {
  clusterKeys,
  decodeJson,
  liveMembers,
  parseDrainProgress,
  parseNodeInfo,
  parseRingConfig,
} from './model';
import type { ClusterKeys, DrainProgress, NodeInfo, RingMember, VersionedRing } from './model';
import { Signal } from './signal';
import type { Disposer } from './signal';

/** What the view knows, as of etcd revision `revision`. Immutable: each change is a new one. */
export interface ClusterSnapshot {
  /** Registered (alive) nodes by id. */
  readonly nodes: ReadonlyMap<string, NodeInfo>;
  /** The configured ring, or undefined if none was ever written. */
  readonly ring: VersionedRing | undefined;
  /** Drain progress published by nodes, by node id. */
  readonly drains: ReadonlyMap<string, DrainProgress>;
  /** The etcd revision this snapshot reflects (0 before the first read). */
  readonly revision: number;
}

export interface ClusterChange {
  readonly snapshot: ClusterSnapshot;
  readonly previous: ClusterSnapshot;
  /**
   * `initial`: the first full read; `watch`: one etcd revision seen on the watch; `resync`: a
   * full read after the watch could not resume (history compacted, watch cancelled).
   */
  readonly reason: 'initial' | 'watch' | 'resync';
}

export interface ClusterViewOptions {
  /** An etcd3 client (or namespace of one); the view does not close it. */
  readonly etcd: Namespace;
  /** Cluster key prefix, e.g. `/chat`. */
  readonly prefix: string;
  readonly logger?: ClusterLogger;
}

const EMPTY: ClusterSnapshot = Object.freeze({
  nodes: new Map(),
  ring: undefined,
  drains: new Map(),
  revision: 0,
});

/**
 * Starts watching a cluster: a full read of the prefix, then a watch from the next revision.
 * It never misses a change: after a disconnect the watch resumes from the last revision seen,
 * and when that history is gone (compacted) or the watch is cancelled it reads everything again
 * and watches from there. While etcd is unreachable the last snapshot stays available.
 *
 * @example
 * const view = watchCluster({ etcd, prefix: '/chat', logger });
 * await view.ready();
 * const off = view.onChange(({ snapshot }) => rebuildRing(view.liveMembers(), snapshot));
 * // ...
 * off();
 * await view.close();
 */
export function watchCluster(options: ClusterViewOptions): ClusterView {
  return new ClusterView(options);
}

export class ClusterView {
  private readonly etcd: Namespace;
  private readonly keys: ClusterKeys;
  private readonly log: ClusterLogger;
  private readonly changeSignal: Signal<ClusterChange>;
  private readonly sleeper = new Sleeper();
  private readonly readyPromise: Promise<ClusterSnapshot>;
  private resolveReady: ((snapshot: ClusterSnapshot) => void) | undefined;
  private state: ClusterSnapshot = EMPTY;
  private watcher: Watcher | undefined;
  /** Incremented per watcher: events of a retired watcher are ignored. */
  private generation = 0;
  private attempt = 0;
  private closed = false;
  private loop: Promise<void> | undefined;

  /** Prefer {@link watchCluster}. */
  constructor(options: ClusterViewOptions) {
    this.etcd = options.etcd;
    this.keys = clusterKeys(options.prefix);
    this.log = options.logger ?? silentLogger;
    this.changeSignal = new Signal('change', this.log);
    this.readyPromise = new Promise((resolve) => {
      this.resolveReady = resolve;
    });
    this.recover('full', 0);
  }

  /** Resolves with the first snapshot, after the first full read (retried until it works). */
  ready(): Promise<ClusterSnapshot> {
    return this.readyPromise;
  }

  /** The latest snapshot (empty, revision 0, before ready()). */
  get snapshot(): ClusterSnapshot {
    return this.state;
  }

  /** Ring members that are also registered nodes: what the hash ring is built from. */
  liveMembers(): readonly RingMember[] {
    return liveMembers(this.state.ring?.config, this.state.nodes);
  }

  /** Called after every change to nodes or ring, in etcd revision order. */
  onChange(listener: (change: ClusterChange) => void): Disposer {
    return this.changeSignal.add(listener);
  }

  /** Stops watching. The last snapshot stays readable. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.sleeper.wake();
    this.changeSignal.clear();
    this.retireWatcher(true);
    await this.loop;
  }

  /** Starts (at most one) recovery loop: wait, then resume the watch or read everything. */
  private recover(mode: 'full' | 'resume', delayMs: number): void {
    if (this.closed || this.loop) return;
    this.loop = (async () => {
      try {
        await this.runRecovery(mode, delayMs);
      } finally {
        this.loop = undefined;
      }
      // Started after `loop` is cleared, so that the new watcher's failures can recover again.
      if (!this.closed) this.startWatch();
    })();
  }

  private async runRecovery(mode: 'full' | 'resume', delayMs: number): Promise<void> {
    if (delayMs > 0) await this.sleeper.sleep(delayMs);
    while (!this.closed && mode === 'full') {
      try {
        await this.fullRead();
        break;
      } catch (err) {
        const delay = etcdRetryDelay(this.attempt++);
        this.log.warn(
          { err: toClusterError(err, 'read', { prefix: this.keys.prefix }), delay },
          'cluster full read failed; retrying',
        );
        await this.sleeper.sleep(delay);
      }
    }
  }

  private async fullRead(): Promise<void> {
    const res = await this.etcd.getAll().prefix(this.keys.root).exec();
    if (this.closed) return;
    const nodes = new Map<string, NodeInfo>();
    const drains = new Map<string, DrainProgress>();
    let ring: VersionedRing | undefined;
    for (const kv of res.kvs) {
      const key = kv.key.toString('utf8');
      if (key.startsWith(this.keys.nodesPrefix)) {
        const node = this.decodeNode(key, kv);
        if (node) nodes.set(node.nodeId, node);
      } else if (key.startsWith(this.keys.drainPrefix)) {
        const drain = this.decodeDrain(key, kv);
        if (drain) drains.set(drain.nodeId, drain);
      } else if (key === this.keys.ring) {
        ring = this.decodeRing(kv) ?? this.state.ring;
      }
    }
    const first = this.resolveReady !== undefined;
    const previous = this.state;
    const revision = Number(res.header.revision);
    this.state = Object.freeze({ nodes, ring, drains, revision });
    this.log.debug({ revision, nodes: nodes.size, first }, 'cluster full read');
    if (first) {
      const resolve = this.resolveReady;
      this.resolveReady = undefined;
      resolve?.(this.state);
      this.changeSignal.emit({ snapshot: this.state, previous, reason: 'initial' });
    } else if (!sameContent(previous, this.state)) {
      this.changeSignal.emit({ snapshot: this.state, previous, reason: 'resync' });
    }
  }

  private startWatch(): void {
    const generation = ++this.generation;
    const from = this.state.revision + 1;
    const watcher = this.etcd.watch().prefix(this.keys.root).startRevision(String(from)).watcher();
    this.watcher = watcher;
    const current = (): boolean => generation === this.generation && !this.closed;
    watcher.on('connected', () => {
      if (!current()) return;
      this.attempt = 0;
      this.log.debug({ from }, 'cluster watch connected');
    });
    watcher.on('data', (res) => {
      if (!current()) return;
      try {
        this.applyWatchResponse(res);
      } catch (err) {
        // A bug here must not leave the view silently stale: start over from a full read.
        this.log.error({ err }, 'cluster watch event could not be applied; resyncing');
        this.retireWatcher(true);
        this.recover('full', etcdRetryDelay(this.attempt++));
      }
    });
    watcher.on('disconnected', (err) => {
      if (!current()) return;
      const delay = etcdRetryDelay(this.attempt++);
      this.log.warn(
        { err: toClusterError(err, 'watch'), revision: this.state.revision, delay },
        'cluster watch disconnected; resuming',
      );
      this.retireWatcher(true);
      this.recover('resume', delay);
    });
    watcher.on('error', (err) => {
      // Cancelled by etcd, typically because the revision we resume from was compacted.
      if (!current()) return;
      const delay = etcdRetryDelay(this.attempt++);
      this.log.warn(
        { err: toClusterError(err, 'watch'), revision: this.state.revision, delay },
        'cluster watch cancelled; reading everything again',
      );
      this.retireWatcher(false); // etcd already dropped it
      this.recover('full', delay);
    });
  }

  /** Detaches the current watcher; etcd3 would otherwise resume it on its own terms. */
  private retireWatcher(cancel: boolean): void {
    this.generation++;
    const watcher = this.watcher;
    this.watcher = undefined;
    if (cancel) watcher?.cancel().catch(() => undefined);
  }

  private applyWatchResponse(res: IWatchResponse): void {
    if (res.events.length === 0) {
      // Progress notification: everything up to header.revision has been seen.
      const revision = Number(res.header.revision);
      if (revision > this.state.revision) this.state = Object.freeze({ ...this.state, revision });
      return;
    }
    // One change per etcd revision, in order (a catch-up response can span several).
    let i = 0;
    while (i < res.events.length) {
      const first = res.events[i];
      if (!first) break;
      const revision = Number(first.kv.mod_revision);
      const previous = this.state;
      let nodes: Map<string, NodeInfo> | undefined;
      let drains: Map<string, DrainProgress> | undefined;
      let ring = previous.ring;
      let changed = false;
      for (; i < res.events.length; i++) {
        const event = res.events[i];
        if (!event || Number(event.kv.mod_revision) !== revision) break;
        const key = event.kv.key.toString('utf8');
        if (key.startsWith(this.keys.nodesPrefix)) {
          nodes ??= new Map(previous.nodes);
          const nodeId = key.slice(this.keys.nodesPrefix.length);
          const node = event.type === 'Put' ? this.decodeNode(key, event.kv) : undefined;
          if (node) nodes.set(nodeId, node);
          else nodes.delete(nodeId);
          changed = true;
        } else if (key.startsWith(this.keys.drainPrefix)) {
          drains ??= new Map(previous.drains);
          const nodeId = key.slice(this.keys.drainPrefix.length);
          const drain = event.type === 'Put' ? this.decodeDrain(key, event.kv) : undefined;
          if (drain) drains.set(nodeId, drain);
          else drains.delete(nodeId);
          changed = true;
        } else if (key === this.keys.ring) {
          ring = event.type === 'Put' ? (this.decodeRing(event.kv) ?? ring) : undefined;
          changed = true;
        }
      }
      if (revision <= previous.revision) continue; // already in the snapshot (defensive)
      this.state = Object.freeze({
        nodes: nodes ?? previous.nodes,
        ring,
        drains: drains ?? previous.drains,
        revision,
      });
      if (changed) this.changeSignal.emit({ snapshot: this.state, previous, reason: 'watch' });
    }
  }

  private decodeNode(key: string, kv: IKeyValue): NodeInfo | undefined {
    try {
      const node = decodeJson(kv.value.toString('utf8'), parseNodeInfo);
      if (this.keys.node(node.nodeId) !== key) throw new Error('nodeId does not match the key');
      return node;
    } catch (err) {
      this.log.warn({ err, key }, 'ignoring an invalid node registration');
      return undefined;
    }
  }

  private decodeDrain(key: string, kv: IKeyValue): DrainProgress | undefined {
    try {
      const drain = decodeJson(kv.value.toString('utf8'), parseDrainProgress);
      if (this.keys.drain(drain.nodeId) !== key) throw new Error('nodeId does not match the key');
      return drain;
    } catch (err) {
      this.log.warn({ err, key }, 'ignoring invalid drain progress');
      return undefined;
    }
  }

  /** An invalid ring value keeps the last valid one (undefined means "keep"). */
  private decodeRing(kv: IKeyValue): VersionedRing | undefined {
    try {
      const config = decodeJson(kv.value.toString('utf8'), parseRingConfig);
      return Object.freeze({ config, modRevision: Number(kv.mod_revision) });
    } catch (err) {
      this.log.error(
        { err, key: this.keys.ring },
        'invalid ring configuration in etcd; keeping the last one',
      );
      return undefined;
    }
  }
}

function sameContent(a: ClusterSnapshot, b: ClusterSnapshot): boolean {
  if (a.ring?.modRevision !== b.ring?.modRevision || a.nodes.size !== b.nodes.size) return false;
  if (a.drains.size !== b.drains.size) return false;
  for (const [id, drain] of a.drains) {
    if (JSON.stringify(b.drains.get(id)) !== JSON.stringify(drain)) return false;
  }
  for (const [id, node] of a.nodes) {
    const other = b.nodes.get(id);
    if (!other || JSON.stringify(other) !== JSON.stringify(node)) return false;
  }
  return true;
}
