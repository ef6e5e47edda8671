/**
 * The push targets of users, as the owner node last read them, so that a message for a user
 * without targets (most users, on most nodes) costs no statement. Entries are invalidated when
 * a device of the user registers or removes its target (through this node: devices talk to
 * their user's owner), and expire after `ttlMs` so that a user who moved away and back, having
 * changed targets elsewhere, is read again. Bounded: the least recently loaded go first.
 */
import type { PushTargetSpec } from '@chat/protocol';

export type DeviceTargets = ReadonlyMap<string, PushTargetSpec>;

const NONE: DeviceTargets = new Map();

interface Entry {
  readonly at: number;
  readonly targets: DeviceTargets;
}

export class TargetsCache {
  private readonly entries = new Map<string, Entry>();
  /**
   * Loads running, by user. Invalidation removes the user's: a load that is no longer the one
   * here when it ends (invalidated meanwhile, perhaps followed by another) is not cached.
   */
  private readonly loading = new Map<string, Promise<DeviceTargets>>();

  /**
   * `load` reads the targets of many users at once (one statement per user shard): a node that
   * starts, or gains users in a drain, would otherwise pay a statement per user.
   */
  constructor(
    private readonly load: (
      users: readonly string[],
    ) => Promise<ReadonlyMap<string, DeviceTargets>>,
    private readonly now: () => number,
    private readonly options: { readonly ttlMs: number; readonly maxUsers: number },
  ) {}

  /** The cached targets, or undefined when they must be read (`get`). */
  peek(user: string): DeviceTargets | undefined {
    const entry = this.entries.get(user);
    if (entry === undefined) return undefined;
    if (this.now() - entry.at >= this.options.ttlMs) {
      this.entries.delete(user);
      return undefined;
    }
    return entry.targets;
  }

  /** The targets, read once for concurrent callers when not cached. */
  get(user: string): Promise<DeviceTargets> {
    return this.getMany([user]).then((all) => all.get(user) ?? NONE);
  }

  /** The targets of each user: cached ones as they are, the others read in one load. */
  async getMany(users: readonly string[]): Promise<ReadonlyMap<string, DeviceTargets>> {
    const out = new Map<string, DeviceTargets>();
    const waits: Promise<void>[] = [];
    const missing: string[] = [];
    for (const user of new Set(users)) {
      const cached = this.peek(user);
      if (cached !== undefined) out.set(user, cached);
      else {
        const pending = this.loading.get(user);
        if (pending === undefined) missing.push(user);
        else waits.push(pending.then((t) => void out.set(user, t)));
      }
    }
    if (missing.length > 0) {
      const batch = this.load(missing);
      for (const user of missing) {
        const pending = batch.then(
          (all) => {
            const targets = all.get(user) ?? NONE;
            if (this.loading.get(user) === pending) {
              this.loading.delete(user);
              this.remember(user, targets);
            }
            return targets;
          },
          (err: unknown) => {
            if (this.loading.get(user) === pending) this.loading.delete(user);
            throw err;
          },
        );
        this.loading.set(user, pending);
        waits.push(pending.then((t) => void out.set(user, t)));
      }
    }
    await Promise.all(waits);
    return out;
  }

  invalidate(user: string): void {
    this.entries.delete(user);
    this.loading.delete(user);
  }

  get size(): number {
    return this.entries.size;
  }

  private remember(user: string, targets: DeviceTargets): void {
    this.entries.delete(user);
    this.entries.set(user, { at: this.now(), targets });
    while (this.entries.size > this.options.maxUsers) {
      const oldest = this.entries.keys().next().value;
      if (oldest === undefined) break;
      this.entries.delete(oldest);
    }
  }
}
