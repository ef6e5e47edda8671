import type { ChatError } from '@chat/protocol';
import type { Campaign, Election as EtcdElection, Namespace } from 'etcd3';
import { etcdRetryDelay } from './backoff';
import { toClusterError } from './errors';
import { silentLogger } from './logger';
import type { ClusterLogger } from './logger';
import { clusterKeys } from './model';
import { Signal } from './signal';
import type { Disposer } from './signal';

export interface ElectionOptions {
  /** An etcd3 client (or namespace of one); the election does not close it. */
  readonly etcd: Namespace;
  /** Cluster key prefix, e.g. `/chat`; candidates live under `P/election/<name>/`. */
  readonly prefix: string;
  /** What is being elected for, e.g. `retention-cleanup`. */
  readonly name: string;
  /** This candidate's id (usually the node id); what `leader()` returns while it leads. */
  readonly candidateId: string;
  /** Lease TTL of the candidacy in whole seconds (default 10). */
  readonly ttlSec?: number;
  readonly logger?: ClusterLogger;
}

/**
 * Campaigns for a single-runner job and keeps campaigning until closed. Run the job between
 * `onLeader` and `onFollower`. Leadership is a lease: if this process cannot reach etcd, another
 * candidate may be elected after the TTL while this one has not noticed yet (it notices within
 * twice the TTL), so the job must tolerate a short overlap (idempotent work, or fenced writes).
 *
 * @example
 * const election = startElection({ etcd, prefix: '/chat', name: 'cleanup', candidateId: 'node-1' });
 * election.onLeader(() => cleanup.start());
 * election.onFollower(() => cleanup.stop());
 * // on shutdown:
 * await election.close();
 */
export function startElection(options: ElectionOptions): Election {
  return new Election(options);
}

export class Election {
  readonly name: string;
  readonly candidateId: string;

  private readonly election: EtcdElection;
  private readonly log: ClusterLogger;
  private readonly leaderSignal: Signal<void>;
  private readonly followerSignal: Signal<ChatError | undefined>;
  private campaign: Campaign | undefined;
  private leading = false;
  private closed = false;
  private attempt = 0;
  private retryTimer: NodeJS.Timeout | undefined;

  /** Prefer {@link startElection}. */
  constructor(options: ElectionOptions) {
    this.name = options.name;
    this.candidateId = options.candidateId;
    const ttlSec = options.ttlSec ?? 10;
    if (!Number.isInteger(ttlSec) || ttlSec < 1) {
      throw new RangeError(`ttlSec must be a whole number >= 1, got ${ttlSec}`);
    }
    const keys = clusterKeys(options.prefix);
    this.election = options.etcd.namespace(keys.root).election(options.name, ttlSec);
    this.log = options.logger ?? silentLogger;
    this.leaderSignal = new Signal('leader', this.log);
    this.followerSignal = new Signal('follower', this.log);
    this.runCampaign();
  }

  /** Whether this candidate currently holds leadership (as far as it knows). */
  get isLeader(): boolean {
    return this.leading;
  }

  /** Called each time this candidate becomes the leader. */
  onLeader(listener: () => void): Disposer {
    return this.leaderSignal.add(listener);
  }

  /**
   * Called each time this candidate stops being the leader: with the error when leadership was
   * lost (lease expired or revoked), with undefined after resign() or close().
   */
  onFollower(listener: (err: ChatError | undefined) => void): Disposer {
    return this.followerSignal.add(listener);
  }

  /** The current leader's candidate id, or undefined if there is none. */
  async leader(): Promise<string | undefined> {
    try {
      return await this.election.leader();
    } catch (err) {
      throw toClusterError(err, 'election.leader', { name: this.name });
    }
  }

  /** Steps down (if leading) and campaigns again, behind the other candidates. */
  async resign(): Promise<void> {
    await this.stepDown();
    this.runCampaign();
  }

  /** Steps down and stops campaigning. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.stepDown();
    this.leaderSignal.clear();
    this.followerSignal.clear();
  }

  private async stepDown(): Promise<void> {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    const campaign = this.campaign;
    this.campaign = undefined;
    const wasLeader = this.leading;
    this.leading = false;
    if (wasLeader) this.followerSignal.emit(undefined);
    try {
      await campaign?.resign();
    } catch (err) {
      this.log.warn(
        { err: toClusterError(err, 'election.resign', { name: this.name }) },
        'could not resign; the candidacy will expire with its lease',
      );
    }
  }

  private runCampaign(): void {
    if (this.closed || this.campaign) return;
    const campaign = this.election.campaign(this.candidateId);
    this.campaign = campaign;
    campaign.on('elected', () => {
      if (campaign !== this.campaign) return;
      this.attempt = 0;
      this.leading = true;
      this.log.info({ election: this.name, candidate: this.candidateId }, 'elected leader');
      this.leaderSignal.emit();
    });
    campaign.on('error', (err) => {
      if (campaign !== this.campaign) return; // a retired campaign, or its second error
      this.campaign = undefined;
      campaign.resign().catch(() => undefined);
      const error = toClusterError(err, 'election.campaign', { name: this.name });
      const wasLeader = this.leading;
      this.leading = false;
      const delay = etcdRetryDelay(this.attempt++);
      this.log.warn(
        { err: error, election: this.name, wasLeader, delay },
        wasLeader ? 'leadership lost; campaigning again' : 'campaign failed; retrying',
      );
      if (wasLeader) this.followerSignal.emit(error);
      this.retryTimer = setTimeout(() => {
        this.retryTimer = undefined;
        this.runCampaign();
      }, delay);
    });
  }
}
