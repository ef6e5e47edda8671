/**
 * Closes a ring transition once it is over: when every registered node reports its drain done
 * for the current epoch, and a grace period has passed (for pushes already in flight), the
 * elected node rewrites the ring without the transition, which ends dual delivery. One node
 * does this at a time (etcd election); a lost compare-and-swap simply means someone changed
 * the ring first, and the check runs again on the new state.
 */
import type { ClusterSnapshot, ClusterView, Election, RingConfigStore } from '@chat/cluster';
import type { Logger } from 'pino';
import type { Clock } from '../clock';

/** True when a transition is open and every registered node has finished draining for it. */
export function drainsComplete(snapshot: ClusterSnapshot): boolean {
  const config = snapshot.ring?.config;
  if (config?.transition === undefined) return false;
  for (const node of snapshot.nodes.values()) {
    const drain = snapshot.drains.get(node.nodeId);
    if (drain === undefined || drain.epoch < config.epoch || !drain.done) return false;
  }
  return true;
}

export interface TransitionCloserDeps {
  readonly view: ClusterView;
  readonly ringStore: RingConfigStore;
  readonly election: Election;
  readonly graceMs: number;
  readonly checkEveryMs: number;
  readonly clock: Clock;
  readonly log: Logger;
}

export class TransitionCloser {
  private timer: NodeJS.Timeout | undefined;
  /** Epoch whose drains were first seen complete, and when. */
  private complete: { epoch: number; since: number } | undefined;
  private closing = false;
  private readonly disposers: Array<() => void>;

  constructor(private readonly deps: TransitionCloserDeps) {
    this.disposers = [
      deps.election.onLeader(() => this.lead()),
      deps.election.onFollower(() => this.follow()),
    ];
  }

  close(): void {
    for (const dispose of this.disposers.splice(0)) dispose();
    this.follow();
  }

  private lead(): void {
    this.follow();
    this.timer = setInterval(() => void this.check(), this.deps.checkEveryMs);
    this.timer.unref();
  }

  private follow(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    this.complete = undefined;
  }

  private async check(): Promise<void> {
    if (this.closing) return;
    const snapshot = this.deps.view.snapshot;
    const ring = snapshot.ring;
    if (ring === undefined || !drainsComplete(snapshot)) {
      this.complete = undefined;
      return;
    }
    const now = this.deps.clock.now();
    if (this.complete?.epoch !== ring.config.epoch)
      this.complete = { epoch: ring.config.epoch, since: now };
    if (now - this.complete.since < this.deps.graceMs) return;
    this.closing = true;
    try {
      const result = await this.deps.ringStore.casRing(ring.modRevision, {
        epoch: ring.config.epoch + 1,
        members: ring.config.members,
      });
      if (result.ok)
        this.deps.log.info(
          { epoch: ring.config.epoch + 1 },
          'transition closed: every drain is done',
        );
      this.complete = undefined;
    } catch (err) {
      this.deps.log.warn({ err }, 'could not close the transition; will retry');
    } finally {
      this.closing = false;
    }
  }
}
