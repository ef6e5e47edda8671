import type {
  IDuplexStream,
  ILeaseKeepAliveRequest,
  ILeaseKeepAliveResponse,
  Namespace,
} from 'etcd3';
import { etcdRetryDelay, Sleeper } from './backoff';
import { toClusterError } from './errors';
import type { ClusterLogger } from './logger';

export interface LeaseKeeperOptions {
  /** The lease API of an etcd3 client (or namespace of one). */
  readonly leaseClient: Namespace['leaseClient'];
  /** The lease, as etcd's decimal string. */
  readonly leaseId: string;
  readonly ttlSec: number;
  /** Called once when etcd answers that the lease no longer exists. */
  readonly onExpired: () => void;
  readonly log: ClusterLogger;
  /** What the lease holds, for log lines. */
  readonly key: string;
}

type StreamOutcome = 'expired' | 'failed' | 'stopped';

/**
 * Keeps one etcd lease alive over a keepalive stream, renewing it every third of its TTL, until
 * etcd answers that the lease is gone (`onExpired`) or `stop()`. A stream that fails, ends or
 * stays silent for half a TTL is opened again, soon (another member may answer): silence is never
 * taken for expiry. An etcd that answers nothing (down, or without quorum) cannot expire a
 * lease either (that needs a leader), and a new leader extends every lease by a TTL, so the
 * renewals that get through once etcd is back keep the same lease. (etcd3's own keepalive gives
 * a lease up after two silent TTLs: the node then registered again under a new lease while its
 * old one, still alive in etcd, expired right after the outage and took the node's key along.)
 *
 * @example
 * const keeper = new LeaseKeeper({ leaseClient: etcd.leaseClient, leaseId, ttlSec: 10, key, log, onExpired: () => registerAgain() });
 * keeper.stop();
 */
export class LeaseKeeper {
  private readonly sleeper = new Sleeper();
  private stopped = false;
  private endStream: (() => void) | undefined;

  constructor(private readonly options: LeaseKeeperOptions) {
    void this.run();
  }

  /** Stops renewing (the lease then expires by itself unless revoked). Idempotent. */
  stop(): void {
    this.stopped = true;
    this.sleeper.wake();
    this.endStream?.();
  }

  private async run(): Promise<void> {
    const { ttlSec, log, key } = this.options;
    const intervalMs = (ttlSec * 1_000) / 3;
    let failingSince: number | undefined;
    let failures = 0;
    const renewed = (): void => {
      failures = 0;
      if (failingSince === undefined) return;
      log.info({ key, silentMs: Date.now() - failingSince }, 'etcd renews the lease again');
      failingSince = undefined;
    };
    while (!this.stopped) {
      const outcome = await this.renewOverOneStream(intervalMs, renewed).catch((err: unknown) => {
        if (failingSince === undefined) {
          log.warn(
            { err: toClusterError(err, 'keepalive', { key }), key },
            'etcd does not answer keepalives; keeping the lease until etcd says it expired',
          );
        }
        return 'failed' as const;
      });
      if (outcome === 'stopped' || this.stopped) return;
      if (outcome === 'expired') {
        this.options.onExpired();
        return;
      }
      failingSince ??= Date.now();
      failures += 1;
      await this.sleeper.sleep(etcdRetryDelay(failures - 1, intervalMs));
    }
  }

  /**
   * Renews over one stream until etcd says the lease is gone ('expired'), the stream fails,
   * ends or has been silent for half a TTL (rejects, or 'failed'), or stop() ('stopped').
   */
  private async renewOverOneStream(
    intervalMs: number,
    renewed: () => void,
  ): Promise<StreamOutcome> {
    const stream: IDuplexStream<ILeaseKeepAliveRequest, ILeaseKeepAliveResponse> =
      await this.options.leaseClient.leaseKeepAlive();
    // Half a TTL without an answer (beats go every third): a stream stuck on a member that went
    // away is given up two thirds of a TTL after its last answer, not a whole one, so that once
    // etcd is back a renewal lands within the extension a new leader grants every lease.
    const silenceMs = intervalMs * 1.5;
    return new Promise<StreamOutcome>((resolve, reject) => {
      let settled = false;
      let lastAnswer = Date.now();
      const finish = (outcome: StreamOutcome | Error): void => {
        if (settled) return;
        settled = true;
        clearInterval(timer);
        this.endStream = undefined;
        stream.end();
        if (outcome instanceof Error) reject(outcome);
        else resolve(this.stopped ? 'stopped' : outcome);
      };
      const beat = (): void => {
        if (this.stopped) return finish('stopped');
        if (Date.now() - lastAnswer > silenceMs)
          return finish(new Error(`no keepalive answer for ${silenceMs} ms`));
        stream.write({ ID: this.options.leaseId });
      };
      stream.on('data', (res: ILeaseKeepAliveResponse) => {
        if (Number(res.TTL) <= 0) return finish('expired');
        lastAnswer = Date.now();
        renewed();
      });
      stream.on('error', (err: Error) => finish(err));
      stream.on('end', () => finish(new Error('keepalive stream ended')));
      const timer = setInterval(beat, intervalMs);
      this.endStream = () => finish('stopped');
      if (this.stopped) return finish('stopped');
      beat();
    });
  }
}
