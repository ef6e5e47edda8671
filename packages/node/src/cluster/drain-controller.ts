/**
 * Moves the connected users whose owner is now another node: each user's devices get `moved`
 * with the owner's URL and close 4001, one user at a time at a bounded rate with jitter, so a
 * ring change never makes every client reconnect at once. Progress is published for operators
 * and for the node that closes the transition. A ring change mid-drain recomputes who moves.
 */
import { peakPerSecond } from '@chat/cluster';
import type { DrainProgress } from '@chat/cluster';
import type { Clock } from '../clock';

export interface DrainControllerDeps {
  readonly nodeId: string;
  readonly clock: Clock;
  /** Users currently connected here. */
  readonly connectedUsers: () => Iterable<string>;
  readonly ownsLocally: (user: string) => boolean;
  /** Sends `moved` to every device of the user and closes them; false when none was connected. */
  readonly move: (user: string) => boolean;
  /** Writes progress where operators see it; failures are the caller's to log. */
  readonly publish: (progress: DrainProgress) => void;
  /**
   * How often progress is published while a drain runs (default 1000 ms). Each publish is an
   * etcd write (a raft commit with its fsync, beside Postgres's on a small machine) that every
   * node, the registry and chatctl decode from their watches: at 250 ms a three-node drain
   * cost the watchers about as much as a twentieth of a core.
   */
  readonly publishEveryMs?: number;
  readonly random?: () => number;
}

/**
 * Delay before the next move: the mean interval stretched by up to 20 % of jitter, so moves of
 * different nodes do not fall into lockstep.
 */
export function nextMoveDelayMs(ratePerSec: number, random: number): number {
  return (1000 / ratePerSec) * (1 + 0.2 * random);
}

/**
 * Moves allowed so far, as a token bucket: `ratePerSec` refill and a bucket of a fifth of a
 * second's worth, so a late timer (a busy event loop) catches up instead of slowing the drain,
 * while any one-second window holds at most the rate + 20 %.
 */
export class MoveBudget {
  private tokens = 1;
  private refilledAt: number;

  constructor(
    private ratePerSec: number,
    now: number,
  ) {
    this.refilledAt = now;
  }

  reset(ratePerSec: number, now: number): void {
    this.ratePerSec = ratePerSec;
    this.tokens = 1;
    this.refilledAt = now;
  }

  take(now: number): boolean {
    const capacity = Math.max(1, this.ratePerSec / 5);
    this.tokens = Math.min(
      capacity,
      this.tokens + ((now - this.refilledAt) * this.ratePerSec) / 1000,
    );
    this.refilledAt = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** Gives back a token that was not used (the user had already gone). */
  refund(): void {
    this.tokens += 1;
  }
}

export class DrainController {
  private queue: string[] = [];
  private epoch = 0;
  private ratePerSec = 1;
  private total = 0;
  private moved = 0;
  private startedAt = 0;
  private moveTimes: number[] = [];
  private timer: NodeJS.Timeout | undefined;
  private lastPublishAt = 0;
  private readonly budget: MoveBudget;
  private idleWaiters: Array<() => void> = [];
  private readonly random: () => number;
  private readonly publishEveryMs: number;

  constructor(private readonly deps: DrainControllerDeps) {
    this.random = deps.random ?? Math.random;
    this.publishEveryMs = deps.publishEveryMs ?? 1000;
    this.budget = new MoveBudget(this.ratePerSec, deps.clock.now());
  }

  get remaining(): number {
    return this.queue.length;
  }

  /**
   * The cluster moved to `epoch`. With `ringChanged` the set of users to move is computed
   * again; otherwise only the epoch and the rate are taken (e.g. an operator changed the rate).
   */
  onTopology(epoch: number, ratePerSec: number, ringChanged: boolean): void {
    const now = this.deps.clock.now();
    this.epoch = epoch;
    const rateChanged = ratePerSec !== this.ratePerSec;
    this.ratePerSec = ratePerSec;
    if (ringChanged) {
      this.queue = [...this.deps.connectedUsers()].filter((u) => !this.deps.ownsLocally(u));
      this.total = this.queue.length;
      this.moved = 0;
      this.moveTimes = [];
      this.startedAt = now;
    }
    if (rateChanged || ringChanged) {
      this.budget.reset(ratePerSec, now);
      this.reschedule();
    }
    this.publishNow();
  }

  /** Resolves once nothing is left to move (at once when idle). */
  idle(): Promise<void> {
    if (this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  stop(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.queue = [];
    this.wakeIdle();
  }

  progress(): DrainProgress {
    return {
      nodeId: this.deps.nodeId,
      epoch: this.epoch,
      total: this.total,
      moved: this.moved,
      remaining: this.queue.length,
      ratePerSec: this.ratePerSec,
      peakPerSec: peakPerSecond(this.moveTimes),
      done: this.queue.length === 0,
      startedAt: this.startedAt,
      updatedAt: this.deps.clock.now(),
    };
  }

  private reschedule(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.queue.length > 0) this.schedule();
    else this.wakeIdle();
  }

  private schedule(): void {
    this.timer = setTimeout(() => this.step(), nextMoveDelayMs(this.ratePerSec, this.random()));
    this.timer.unref();
  }

  private step(): void {
    this.timer = undefined;
    // Move as many users as the budget allows; skip users who left or whom the ring gave back.
    const now = this.deps.clock.now();
    while (this.queue.length > 0) {
      const user = this.queue[0]!;
      if (this.deps.ownsLocally(user)) {
        this.queue.shift();
        continue;
      }
      if (!this.budget.take(now)) break;
      this.queue.shift();
      if (this.deps.move(user)) {
        this.moved += 1;
        this.moveTimes.push(now);
      } else {
        this.budget.refund();
      }
    }
    if (this.queue.length > 0) {
      this.schedule();
      if (now - this.lastPublishAt >= this.publishEveryMs) this.publishNow();
    } else {
      this.publishNow();
      this.wakeIdle();
    }
  }

  private publishNow(): void {
    this.lastPublishAt = this.deps.clock.now();
    this.deps.publish(this.progress());
  }

  private wakeIdle(): void {
    for (const wake of this.idleWaiters.splice(0)) wake();
  }
}
