/**
 * Keeps the edge's configuration equal to cluster membership: on every change of the
 * registered nodes it renders the configuration and, when the text changed, writes it and has
 * nginx reload it. A reload lets open connections finish on the old workers, so sessions of
 * nodes that stay are not cut.
 */
import type { ClusterView, Disposer } from '@chat/cluster';
import type { EdgeNode, EdgeSite } from './nginx-config';
import { renderEdgeConfig } from './nginx-config';

/** The subset of a pino logger the sync uses. */
export interface EdgeLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface EdgeSyncOptions {
  /** Where membership comes from: a ClusterView (the part of it read here). */
  readonly view: Pick<ClusterView, 'snapshot' | 'onChange'>;
  readonly site: EdgeSite;
  /** Writes the configuration where nginx includes it. */
  readonly write: (text: string) => Promise<void>;
  /** Has nginx load the written configuration (SIGHUP to its master, `nginx -s reload`, ...). */
  readonly reload: () => Promise<void>;
  readonly log: EdgeLogger;
}

/**
 * @example
 * const sync = new EdgeSync({ view, site, write: (t) => writeFile(conf, t), reload, log });
 * await sync.refresh(); // the first configuration, before nginx starts or right away
 * const stop = sync.follow();
 */
export class EdgeSync {
  private readonly options: EdgeSyncOptions;
  private applied: string | undefined;
  private routed: readonly string[] = [];
  private running: Promise<void> = Promise.resolve();
  private queued: Promise<void> | undefined;

  constructor(options: EdgeSyncOptions) {
    this.options = Object.freeze({ ...options });
  }

  /** Node ids routed by the configuration last applied. */
  get routedNodes(): readonly string[] {
    return this.routed;
  }

  /**
   * Brings the configuration up to date with the current membership. Calls never overlap;
   * calls made while one runs share the single run queued after it (membership is read then).
   */
  refresh(): Promise<void> {
    if (this.queued !== undefined) return this.queued;
    const next = this.running.then(() => {
      this.queued = undefined;
      return this.apply();
    });
    this.queued = next;
    this.running = next.catch(() => undefined);
    return next;
  }

  /** Refreshes now and on every membership change until the disposer is called. */
  follow(): Disposer {
    const dispose = this.options.view.onChange(() => void this.refresh().catch(() => undefined));
    void this.refresh().catch(() => undefined);
    return dispose;
  }

  private async apply(): Promise<void> {
    const { view, site, write, reload, log } = this.options;
    const nodes: EdgeNode[] = [...view.snapshot.nodes.values()].map((n) => ({
      nodeId: n.nodeId,
      wsUrl: n.wsUrl,
    }));
    const { text, skipped } = renderEdgeConfig(site, nodes);
    for (const { nodeId, reason } of skipped)
      log.warn({ nodeId, reason }, 'node record not routed by the edge');
    if (text === this.applied) return;
    try {
      await write(text);
      await reload();
    } catch (err) {
      // Not marked applied: the next refresh writes and reloads again.
      log.error({ err }, 'edge configuration not applied');
      throw err;
    }
    this.applied = text;
    const skippedIds = new Set(skipped.map((s) => s.nodeId));
    this.routed = Object.freeze(
      nodes
        .map((n) => n.nodeId)
        .filter((id) => !skippedIds.has(id))
        .sort(),
    );
    log.info({ nodes: this.routed }, 'edge configuration applied');
  }
}
