/**
 * Moves connected users whose owner is now another node: each of their devices gets `moved`
 * with the owner's URL and close 4001, one user at a time at a bounded rate with jitter, so
 * that a ring change never makes every client reconnect at once.
 */
import type { Clock } from '../clock';

export interface UserMoverDeps {
  /** Reconnects per second this node may cause, at most. */
  readonly ratePerSec: number;
  readonly clock: Clock;
  /** Users currently connected here. */
  readonly connectedUsers: () => Iterable<string>;
  readonly ownsLocally: (user: string) => boolean;
  /** Sends `moved` to every device of the user and closes them; false when none was connected. */
  readonly move: (user: string) => boolean;
  readonly random?: () => number;
}

/**
 * Delay before the next move: the mean interval stretched by up to 20 % of jitter, so the rate
 * stays at or under the configured one while moves do not fall into lockstep across nodes.
 */
export function nextMoveDelayMs(ratePerSec: number, random: number): number {
  return (1000 / ratePerSec) * (1 + 0.2 * random);
}

export class UserMover {
  private queue: string[] = [];
  private timer: NodeJS.Timeout | undefined;
  private moved = 0;
  private readonly random: () => number;

  constructor(private readonly deps: UserMoverDeps) {
    this.random = deps.random ?? Math.random;
  }

  /** Users moved away since start. */
  get movedCount(): number {
    return this.moved;
  }

  /** Users waiting to be moved. */
  get pending(): number {
    return this.queue.length;
  }

  /** Recomputes who must move; call after every ring change. */
  onRingChange(): void {
    this.queue = [...this.deps.connectedUsers()].filter((u) => !this.deps.ownsLocally(u));
    if (this.queue.length > 0 && this.timer === undefined) this.schedule();
  }

  stop(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.queue = [];
  }

  private schedule(): void {
    this.timer = setTimeout(
      () => this.step(),
      nextMoveDelayMs(this.deps.ratePerSec, this.random()),
    );
    this.timer.unref();
  }

  private step(): void {
    this.timer = undefined;
    // Skip users who left or whom the ring gave back meanwhile; move the first real one.
    for (;;) {
      const user = this.queue.shift();
      if (user === undefined) return;
      if (this.deps.ownsLocally(user) || !this.deps.move(user)) continue;
      this.moved += 1;
      break;
    }
    if (this.queue.length > 0) this.schedule();
  }
}
