/**
 * Presence, receipts, typing and group administration on a node (issue 7).
 *
 * Everything here is on a lower-priority path than messages: `read` requests are collected
 * for a short window and written in one transaction at a time (so many members reading the
 * same group message cost one transaction, not one each), delivered receipts ride on the
 * coalesced ack flush, and typing notices are rate limited per user and chat, never stored,
 * and dropped whenever something is backed up.
 */
import type { ChatSummary, LastSeenVisibility, OkFields } from '@chat/protocol';
import { ChatError, MAX_LIST_CHATS } from '@chat/protocol';
import type {
  ChatPage,
  DeliveredMark,
  Delivery,
  LastSeenFacts,
  ListChatsOptions,
  MembershipResult,
  ReadBatchResult,
  ReadIntent,
  ReceiptNotice,
} from '@chat/store';
import type { Logger } from 'pino';
import type { Clock } from './clock';
import { lastSeenAccess } from './last-seen-policy';
import type { DeliveredReceipts } from './delivered-receipts';
import type { Slice } from './slices';
import type { PresencePeers } from './presence';

/** What the node needs of the group store (PgGroupStore). */
export interface GroupStore {
  addMembers(
    by: string,
    chatId: string,
    members: readonly string[],
    opts: { readonly admin?: boolean },
    now: number,
  ): Promise<MembershipResult>;
  removeMembers(
    by: string,
    chatId: string,
    members: readonly string[],
    now: number,
  ): Promise<MembershipResult>;
  members(chatId: string): Promise<string[] | null>;
  listChats(userId: string, opts: ListChatsOptions): Promise<ChatPage>;
}

/** What the node needs of the presence store (PgPresenceStore). */
export interface PresenceStore {
  touch(userIds: readonly string[], at: number): Promise<number>;
  lastSeenFor(asker: string, target: string): Promise<LastSeenFacts>;
}

/** What the node needs of the privacy store (PgPrivacyStore): blocks and settings (issue 16). */
export interface PrivacyStore {
  block(blocker: string, blocked: string, now: number): Promise<void>;
  unblock(blocker: string, blocked: string): Promise<void>;
  blocked(user: string): Promise<string[]>;
  lastSeenVisibility(user: string): Promise<LastSeenVisibility>;
  setLastSeenVisibility(user: string, visibility: LastSeenVisibility): Promise<void>;
}

/** What the node needs of the receipt store (PgReceiptStore). */
export interface ReceiptStore {
  /** Returns the receipt events it appended (for devices that take them as events). */
  recordDelivered(marks: readonly DeliveredMark[], now: number): Promise<readonly Delivery[]>;
  markRead(intents: readonly ReadIntent[], now: number): Promise<ReadBatchResult>;
}

export interface SocialStores {
  readonly groups: GroupStore;
  readonly presence: PresenceStore;
  readonly receipts: ReceiptStore;
  readonly privacy: PrivacyStore;
}

export interface SocialOptions {
  /** At most one typing notice per user per chat this often; extra ones are dropped (2000). */
  readonly typingIntervalMs?: number;
  /** How long chat members are cached for typing fan-out (2000). */
  readonly memberCacheMs?: number;
  /** Most chats whose members are cached (10000). */
  readonly memberCacheSize?: number;
  /** Last-seen writes are collected this long and written together (100). */
  readonly lastSeenFlushMs?: number;
  /** `read` requests are collected this long and written together (50). */
  readonly readFlushMs?: number;
  /** Most reads in one transaction (256). */
  readonly maxReadBatch?: number;
  /** Reads waiting past which new ones get RATE_LIMITED (10000). */
  readonly maxQueuedReads?: number;
}

export interface SocialDeps {
  readonly stores: SocialStores;
  readonly peers: PresencePeers;
  readonly clock: Clock;
  readonly log: Logger;
  /** Pushes receipt watermarks to the users they concern (the delivery fabric). */
  readonly notify: (notices: readonly ReceiptNotice[]) => void;
  /** Pushes committed inbox events (receipt events) to their users' devices. */
  readonly deliver: (deliveries: readonly Delivery[]) => void;
  readonly options?: SocialOptions;
}

/** Most delivered watermarks written by one statement. */
const MARKS_PER_STATEMENT = 256;

interface QueuedRead extends ReadIntent {
  readonly resolve: () => void;
  readonly reject: (err: unknown) => void;
}

interface CachedMembers {
  readonly at: number;
  readonly members: Promise<ReadonlySet<string> | null>;
}

export class Social {
  private readonly options: Readonly<Required<SocialOptions>>;
  private readonly lastTyping = new Map<string, number>();
  private readonly memberCache = new Map<string, CachedMembers>();
  private reads: QueuedRead[] = [];
  private readonly touched = new Set<string>();
  private touchTimer: NodeJS.Timeout | undefined;
  private readTimer: NodeJS.Timeout | undefined;
  private readFlush: Promise<void> | undefined;
  private closed = false;

  constructor(private readonly deps: SocialDeps) {
    const o = deps.options ?? {};
    this.options = Object.freeze({
      typingIntervalMs: o.typingIntervalMs ?? 2000,
      memberCacheMs: o.memberCacheMs ?? 2000,
      memberCacheSize: o.memberCacheSize ?? 10_000,
      readFlushMs: o.readFlushMs ?? 50,
      lastSeenFlushMs: o.lastSeenFlushMs ?? 100,
      maxReadBatch: o.maxReadBatch ?? 256,
      maxQueuedReads: o.maxQueuedReads ?? 10_000,
    });
  }

  // ---- last seen ----

  /**
   * A device of the user was welcomed, or their last device went away: last seen is now.
   * Coalesced: every user touched within one window is written in one statement (a reconnect
   * storm must not double the queries of connecting).
   */
  touchLastSeen(user: string): void {
    this.touched.add(user);
    this.touchTimer ??= setTimeout(() => {
      this.touchTimer = undefined;
      void this.flushLastSeen();
    }, this.options.lastSeenFlushMs);
  }

  private async flushLastSeen(): Promise<void> {
    const users = [...this.touched];
    this.touched.clear();
    if (users.length === 0) return;
    try {
      await this.deps.stores.presence.touch(users, this.deps.clock.now());
    } catch (err) {
      this.deps.log.debug({ err, users: users.length }, 'last seen not written');
    }
  }

  /**
   * As the target's setting and blocks allow (last-seen-policy.ts): NOT_FOUND for an asker
   * who may not see it and shares no chat with the target (no probing for who exists).
   */
  async lastSeen(asker: string, target: string): Promise<OkFields['lastSeen']> {
    const stored = await this.deps.stores.presence.lastSeenFor(asker, target);
    switch (lastSeenAccess({ asker, target, ...stored })) {
      case 'notFound':
        throw new ChatError('NOT_FOUND', 'no such user among your chats');
      case 'hidden':
        return { online: false, lastSeen: null, hidden: true };
      case 'visible':
        return { online: await this.deps.peers.isOnline(target), lastSeen: stored.lastSeen };
    }
  }

  // ---- blocks and privacy settings ----

  block(user: string, blocked: string): Promise<void> {
    return this.deps.stores.privacy.block(user, blocked, this.deps.clock.now());
  }

  unblock(user: string, blocked: string): Promise<void> {
    return this.deps.stores.privacy.unblock(user, blocked);
  }

  blocked(user: string): Promise<string[]> {
    return this.deps.stores.privacy.blocked(user);
  }

  /** The user's privacy settings, after changing the one given. */
  async privacy(
    user: string,
    lastSeen: LastSeenVisibility | undefined,
  ): Promise<OkFields['privacy']> {
    if (lastSeen === undefined) {
      return { lastSeen: await this.deps.stores.privacy.lastSeenVisibility(user) };
    }
    await this.deps.stores.privacy.setLastSeenVisibility(user, lastSeen);
    return { lastSeen };
  }

  // ---- typing ----

  /** A typing notice from `user`: at most one per user and chat per interval reaches members. */
  typing(user: string, chatId: string): void {
    const now = this.deps.clock.now();
    const key = `${user}\u0000${chatId}`;
    const last = this.lastTyping.get(key);
    if (last !== undefined && now - last < this.options.typingIntervalMs) return;
    this.lastTyping.set(key, now);
    if (this.lastTyping.size > 50_000) this.pruneTyping(now);
    void this.membersOf(chatId, now).then(
      (members) => {
        if (members === null || !members.has(user)) return;
        const to = [...members].filter((m) => m !== user);
        if (to.length > 0) this.deps.peers.typing({ chatId, user, to });
      },
      (err: unknown) => this.deps.log.debug({ err, chatId }, 'typing dropped: members unknown'),
    );
  }

  private pruneTyping(now: number): void {
    for (const [key, at] of this.lastTyping) {
      if (now - at >= this.options.typingIntervalMs) this.lastTyping.delete(key);
    }
  }

  private membersOf(chatId: string, now: number): Promise<ReadonlySet<string> | null> {
    const cached = this.memberCache.get(chatId);
    if (cached !== undefined && now - cached.at < this.options.memberCacheMs) return cached.members;
    const members = this.deps.stores.groups
      .members(chatId)
      .then((list) => (list === null ? null : new Set(list)));
    // A failed load is not cached.
    members.catch(() => this.memberCache.delete(chatId));
    this.memberCache.delete(chatId);
    this.memberCache.set(chatId, { at: now, members });
    if (this.memberCache.size > this.options.memberCacheSize) {
      const oldest = this.memberCache.keys().next().value;
      if (oldest !== undefined) this.memberCache.delete(oldest);
    }
    return members;
  }

  // ---- group administration ----

  async addMembers(
    by: string,
    chatId: string,
    members: readonly string[],
    admin: boolean,
  ): Promise<void> {
    // The `chat` events are pushed by the store's fan-out.
    await this.deps.stores.groups.addMembers(by, chatId, members, { admin }, this.deps.clock.now());
    this.memberCache.delete(chatId);
  }

  async removeMembers(by: string, chatId: string, members: readonly string[]): Promise<void> {
    await this.deps.stores.groups.removeMembers(by, chatId, members, this.deps.clock.now());
    this.memberCache.delete(chatId);
  }

  async listChats(
    user: string,
    before: number | undefined,
    limit: number | undefined,
  ): Promise<{ chats: ChatSummary[]; more: boolean }> {
    const opts: ListChatsOptions =
      before === undefined
        ? { limit: limit ?? MAX_LIST_CHATS }
        : { before, limit: limit ?? MAX_LIST_CHATS };
    return this.deps.stores.groups.listChats(user, opts);
  }

  // ---- receipts ----

  /**
   * Writes the delivered watermarks not written yet (of the chats of `slice` only, if given);
   * the cursor writer calls it before each write. A failed write gives them back for the next.
   */
  async recordDelivered(receipts: DeliveredReceipts, slice?: Slice): Promise<void> {
    const marks = receipts.takeForPersist(slice);
    // In statements of a bounded size, like the cursors (a long statement shows in sends).
    for (let from = 0; from < marks.length; from += MARKS_PER_STATEMENT) {
      const chunk = marks.slice(from, from + MARKS_PER_STATEMENT);
      let events: readonly Delivery[];
      try {
        events = await this.deps.stores.receipts.recordDelivered(chunk, this.deps.clock.now());
      } catch (err) {
        receipts.restore(marks.slice(from));
        throw err;
      }
      if (events.length > 0) this.deps.deliver(events);
    }
  }

  /** Queues a read; resolves once it is committed (with the receipts it caused). */
  read(userId: string, chatId: string, messageId: string): Promise<void> {
    if (this.closed) return Promise.reject(new ChatError('UNAVAILABLE', 'node is stopping'));
    if (this.reads.length >= this.options.maxQueuedReads) {
      return Promise.reject(new ChatError('RATE_LIMITED', 'too many reads queued, slow down'));
    }
    return new Promise<void>((resolve, reject) => {
      this.reads.push({ userId, chatId, messageId, resolve, reject });
      this.readTimer ??= setTimeout(() => {
        this.readTimer = undefined;
        void this.flushReads();
      }, this.options.readFlushMs);
    });
  }

  /** One batch at a time; what arrives meanwhile waits for the next window. */
  private async flushReads(): Promise<void> {
    if (this.readFlush !== undefined) {
      await this.readFlush;
      if (this.readFlush !== undefined) return;
    }
    const batch = this.reads.splice(0, this.options.maxReadBatch);
    if (batch.length === 0) return;
    const run = this.writeReads(batch);
    this.readFlush = run;
    try {
      await run;
    } finally {
      this.readFlush = undefined;
      if (this.reads.length > 0 && this.readTimer === undefined) {
        this.readTimer = setTimeout(() => {
          this.readTimer = undefined;
          void this.flushReads();
        }, this.options.readFlushMs);
      }
    }
  }

  private async writeReads(batch: readonly QueuedRead[]): Promise<void> {
    let result: ReadBatchResult;
    try {
      result = await this.deps.stores.receipts.markRead(batch, this.deps.clock.now());
    } catch (err) {
      for (const r of batch) r.reject(err);
      return;
    }
    if (result.notices.length > 0) this.deps.notify(result.notices);
    if (result.events.length > 0) this.deps.deliver(result.events);
    batch.forEach((r, i) => {
      const err = result.outcomes[i];
      if (err === undefined) r.resolve();
      else r.reject(err);
    });
  }

  /** Writes the reads still queued, then refuses new ones. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.touchTimer !== undefined) clearTimeout(this.touchTimer);
    this.touchTimer = undefined;
    await this.flushLastSeen();
    if (this.readTimer !== undefined) clearTimeout(this.readTimer);
    this.readTimer = undefined;
    for (let i = 0; i < 1000 && (this.reads.length > 0 || this.readFlush !== undefined); i++) {
      await this.flushReads();
    }
  }
}
