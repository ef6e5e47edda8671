/**
 * The Postgres implementation of ChatStore (docs/durable-path.md): every statement touches the
 * rows of one user or of one chat, so the same steps run on plain Postgres and, key by key, on a
 * distributed engine.
 *
 * A send is a chat step (chat-step.ts: membership, idempotency, the message row) that the
 * sender's `ok` waits for, then a fan-out (fanout.ts, user-step.ts) that appends the event to
 * each recipient's inbox and hands the committed events to the `onDeliveries` listeners. Sends
 * are group-committed: concurrent ones share a chat step statement, and events share user
 * steps. Each node writes a fan-out mark (fanout-marks.ts) so that a sweeper finishes what a
 * node that died still owed.
 *
 * Locks (key-locks.ts): a chat step holds its chats' locks, a user step its users', each taken
 * in one global order; no statement holds both kinds, so no two statements deadlock over them.
 */
import { sql } from 'kysely';
import type { Kysely, Transaction } from 'kysely';
import { ChatError } from '@chat/protocol';
import type { AttachmentRef, InboxEvent } from '@chat/protocol';
import type { BatchInfo } from './batch-queue';
import { BatchQueue } from './batch-queue';
import { blocksAmong, markBlocks, refuseBlockedBy } from './block-marks';
import { storeNewChat } from './chat-changes';
import { storeMessages } from './chat-step';
import { deleteAcked, latestSeqs, writeCursors } from './cursors';
import type { DeviceConnectStats } from './device-connect';
import { DeviceConnector } from './device-connect';
import { toChatError } from './errors';
import { Fanout } from './fanout';
import type { FanoutTicket } from './fanout';
import { chatChangeEvents, messageEvents } from './fanout-events';
import type { StoredChatChange } from './fanout-events';
import { beatMark, dropMark, readMark, staleMarks, sweepNode } from './fanout-marks';
import type { MarkBeat, SweepResult } from './fanout-marks';
import { silentLogger } from './pool';
import type { StoreLogger } from './pool';
import type { Database, InboxKind } from './schema';
import type {
  ChatStore,
  Delivery,
  DeviceCursor,
  DeviceOptions,
  DeviceState,
  MembershipResult,
  SendInput,
  SendResult,
  SyncPage,
} from './types';
import { appendEvents } from './user-step';
import { EngineRouters } from './shard-router';

export interface PgChatStoreOptions {
  /** Most members of one chat, the creator included (protocol default 100). */
  readonly maxMembersPerChat: number;
  /**
   * This node's id: the origin of the messages it stores, under which it writes its fan-out
   * mark. Every process writing to one database needs its own (default `node-1`).
   */
  readonly nodeId?: string;
  /** Most sends in one chat step statement (default 256). */
  readonly maxBatchSize?: number;
  /** Most chat step statements in flight at once (default 1: the next batch fills meanwhile). */
  readonly maxConcurrentBatches?: number;
  /**
   * Under load, how long a chat step or user step may wait for more items (default 3 ms):
   * every statement costs a round trip and a commit whatever it carries.
   */
  readonly lingerMs?: number;
  /** Most events per user step statement (default 512). */
  readonly maxFanoutBatch?: number;
  /** Events waiting for fan-out past which sends wait before their chat step (default 20000). */
  readonly maxFanoutBacklog?: number;
  /**
   * Most sends waiting for a chat step (queued, or held back by the fan-out backlog; default
   * 10000). Past it a send is refused at once with UNAVAILABLE, which clients retry with the
   * same clientMsgId: while Postgres hangs, memory stays bounded and senders learn it promptly.
   */
  readonly maxQueuedSends?: number;
  /** Most device registrations waiting for a statement (default 5000); past it UNAVAILABLE. */
  readonly maxQueuedConnects?: number;
  /** How often the fan-out mark is written (default 1000 ms). */
  readonly markIntervalMs?: number;
  /**
   * How long a statement of a node that died may still commit: its pool's statement timeout
   * plus the dead-client check, with a margin (default 12 000 ms, for the default 10 s query
   * timeout). After a restart the node sweeps its own mark again once that long has passed
   * since its last heartbeat; another node's sweeper must wait longer than this too.
   */
  readonly orphanWindowMs?: number;
  /**
   * How long a sweeper's claim on this node's mark may stay unfinished before this node finishes
   * it itself (default 300 000 ms): the claimer died mid-sweep, and this node's mark, which does
   * not move during a claim, would otherwise hold every node's acked events back for good.
   */
  readonly claimTakeoverMs?: number;
  /**
   * A device moving here (connectDevice's `moving`) is read instead of registered only if it
   * was active within this long (default a day); keep it well below the device retention
   * period, since the read does not move its `last_active` on.
   */
  readonly movingFreshMs?: number;
  /** Milliseconds since the epoch; Date.now by default. */
  readonly now?: () => number;
  readonly logger?: StoreLogger;
  /** Called after each batched statement (committed or not), for metrics; must not throw. */
  readonly onBatch?: (batch: BatchInfo) => void;
}

/** One batched statement, as `onBatch` sees it. */
export type SendBatchInfo = BatchInfo;

/** Counters of the send batcher, for tests and metrics. */
export interface SendStats {
  /** send() calls that reached the batcher. */
  readonly sends: number;
  /** Chat step statements run (retries of a split batch included). */
  readonly transactions: number;
  /** Chat step statements that committed. */
  readonly commits: number;
  /** Most sends in one statement so far. */
  readonly largestBatch: number;
}

interface PendingSend {
  readonly input: SendInput;
  readonly ticket: FanoutTicket;
  readonly resolve: (result: SendResult) => void;
  readonly reject: (err: ChatError) => void;
}

interface SyncRow {
  seq: string;
  kind: InboxKind;
  chat_id: string;
  message_id: string | null;
  sender_id: string | null;
  body: string | null;
  attachments: AttachmentRef[] | null;
  payload: Record<string, unknown> | null;
  created_at: string;
}

/** See PgChatStoreOptions.orphanWindowMs. */
export const DEFAULT_ORPHAN_WINDOW_MS = 12_000;
/** See PgChatStoreOptions.claimTakeoverMs. */
const DEFAULT_CLAIM_TAKEOVER_MS = 300_000;
/** How long close() waits for owed fan-out before leaving it to the next start or a sweeper. */
const CLOSE_FANOUT_WAIT_MS = 10_000;
/** First delay before this node sweeps its own mark after a chat step with an unknown outcome. */
const RESWEEP_MS = 500;
/** A chat change is answered once its events are in the members' inboxes, or after this long. */
const CHANGE_FANOUT_WAIT_MS = 5000;

/**
 * @example
 * const store = new PgChatStore(createDatabase(url), { maxMembersPerChat: 100, nodeId: 'node-1' });
 * store.onDeliveries((deliveries) => push(deliveries));
 * await store.start();
 * const { chatId } = await store.createChat('alice', ['bob'], null, Date.now());
 * const sent = await store.send({ senderId: 'alice', chatId, clientMsgId: 'c1', body: 'hi',
 *   attachments: [], now: Date.now() });
 */
export class PgChatStore implements ChatStore {
  readonly nodeId: string;
  private readonly options: Readonly<
    Required<Omit<PgChatStoreOptions, 'onBatch' | 'nodeId' | 'now' | 'movingFreshMs'>>
  >;
  private readonly onBatch: ((batch: BatchInfo) => void) | undefined;
  private readonly now: () => number;
  private readonly queue: BatchQueue<PendingSend>;
  readonly fanout: Fanout;
  private readonly listeners = new Set<(deliveries: readonly Delivery[]) => void>();
  private closed = false;
  private closing: Promise<void> | null = null;
  private counters = { sends: 0, transactions: 0, commits: 0, largestBatch: 0 };
  private readonly devices: DeviceConnector;
  private markTimer: NodeJS.Timeout | undefined;
  private marking: Promise<void> | undefined;
  /** Sweeps of this node's own mark under way: no mark is written meanwhile (sweepOwnUpTo). */
  private ownSweeps = 0;
  /** Acked events created before this may be deleted (the lowest fan-out mark, last read). */
  private keepFromMs = 0;
  /**
   * Users whose cursors were written while the lowest mark was behind their newest acked
   * events (kept then, see cursors.ts), and when: deleted once the marks have passed that time.
   */
  private readonly ackedKept = new Map<string, number>();
  private marksStarted = 0;
  private marksApplied = 0;
  /** Chat steps whose outcome was lost with their connection: they may have committed. */
  private readonly doubtful = new Map<FanoutTicket, number>();
  private resweepTimer: NodeJS.Timeout | undefined;
  private resweepDelayMs = RESWEEP_MS;
  private backlogWaiters: (() => void)[] = [];
  /** The own fan-out swept again after a new store epoch; no mark is written meanwhile. */
  private restoreSweep: Promise<void> | undefined;
  private restoreSweepAgain = false;
  /** Since when this node's beats have found a sweeper's claim on its mark unfinished. */
  private claimSeenSince: number | undefined;
  /** This node finishing such a claim itself (finishStaleClaim). */
  private claimTakeover: Promise<void> | undefined;
  /** Plain PostgreSQL or Citus, found out on first use. */
  private readonly routers: EngineRouters;

  constructor(
    private readonly db: Kysely<Database>,
    options: PgChatStoreOptions,
  ) {
    this.nodeId = options.nodeId ?? 'node-1';
    this.routers = EngineRouters.of(db);
    this.now = options.now ?? Date.now;
    this.options = Object.freeze({
      maxMembersPerChat: options.maxMembersPerChat,
      maxBatchSize: options.maxBatchSize ?? 256,
      maxConcurrentBatches: options.maxConcurrentBatches ?? 1,
      maxFanoutBatch: options.maxFanoutBatch ?? 512,
      maxFanoutBacklog: options.maxFanoutBacklog ?? 20_000,
      maxQueuedSends: options.maxQueuedSends ?? 10_000,
      maxQueuedConnects: options.maxQueuedConnects ?? 5_000,
      markIntervalMs: options.markIntervalMs ?? 1000,
      lingerMs: options.lingerMs ?? 3,
      orphanWindowMs: options.orphanWindowMs ?? DEFAULT_ORPHAN_WINDOW_MS,
      claimTakeoverMs: options.claimTakeoverMs ?? DEFAULT_CLAIM_TAKEOVER_MS,
      logger: options.logger ?? silentLogger,
    });
    this.onBatch = options.onBatch;
    this.devices = new DeviceConnector(db, {
      maxQueued: this.options.maxQueuedConnects,
      ...(options.movingFreshMs === undefined ? {} : { movingFreshMs: options.movingFreshMs }),
      users: async () => (await this.routers.get()).users,
      ...(options.onBatch ? { onBatch: options.onBatch } : {}),
    });
    if (!(this.options.maxBatchSize >= 1 && this.options.maxConcurrentBatches >= 1)) {
      throw new RangeError('maxBatchSize and maxConcurrentBatches must be at least 1');
    }
    this.queue = new BatchQueue((batch) => this.runBatch(batch), {
      maxBatchSize: this.options.maxBatchSize,
      maxConcurrent: this.options.maxConcurrentBatches,
      lingerMs: this.options.lingerMs,
    });
    this.fanout = new Fanout({
      append: async (events) => appendEvents(this.db, events, (await this.routers.get()).users),
      onDeliveries: (deliveries) => this.emit(deliveries),
      now: this.now,
      logger: this.options.logger,
      maxBatchSize: this.options.maxFanoutBatch,
      lingerMs: this.options.lingerMs,
      ...(options.onBatch ? { onBatch: options.onBatch } : {}),
    });
  }

  /**
   * Finishes the fan-out a previous run of this node left (messages it stored after its last
   * mark), then writes the mark every `markIntervalMs`. Call before taking traffic.
   */
  async start(): Promise<void> {
    try {
      const previous = await readMark(this.db, this.nodeId);
      await this.sweepOwn();
      if (previous !== null) {
        // A statement of the previous run may still commit for a while (a backend that has not
        // noticed its client died): keep the mark where that run left it, and sweep again once
        // nothing of it can land any more.
        const waitMs = previous.heartbeatAt + this.options.orphanWindowMs - this.now();
        if (waitMs > 0) this.sweepOwnLater(this.fanout.register(previous.upto), waitMs);
      }
      await this.writeMark();
    } catch (err) {
      throw toChatError(err);
    }
    this.markTimer = setInterval(() => {
      this.marking ??= this.writeMark()
        .catch((err: unknown) =>
          this.options.logger.warn({ err }, 'fan-out mark not written; retrying'),
        )
        .finally(() => (this.marking = undefined));
    }, this.options.markIntervalMs);
    this.markTimer.unref();
  }

  /** Appends what is missing of every message this node stored since its mark. */
  private async sweepOwn(): Promise<void> {
    const swept = await this.sweepOwnUpTo(this.now());
    if (swept.messages > 0) {
      this.options.logger.warn(
        { messages: swept.messages, events: swept.deliveries.length },
        'finished the fan-out of an earlier run of this node',
      );
    }
    this.emit(swept.deliveries);
  }

  /**
   * Appends what is missing of every message this node stored from its mark up to `to`, and
   * writes no mark meanwhile: a mark written during the sweep would promise the messages it has
   * not reached yet, their acked events could be deleted (writeCursors) before it gets to them,
   * and it would append them a second time under new seqs.
   */
  private async sweepOwnUpTo(to: number): Promise<SweepResult> {
    this.ownSweeps++;
    try {
      await this.marking; // a mark already under way lands before the sweep reads it
      return await sweepNode(this.db, this.nodeId, to, {
        claim: false,
        users: (await this.routers.get()).users,
      });
    } finally {
      this.ownSweeps--;
    }
  }

  private sweepOwnLater(ticket: FanoutTicket, waitMs: number): void {
    const timer = setTimeout(() => {
      this.sweepOwn().then(
        () => this.fanout.release(ticket),
        (err: unknown) => {
          this.options.logger.warn({ err }, 'own fan-out sweep failed; retrying');
          if (!this.closed) this.sweepOwnLater(ticket, 1000);
        },
      );
    }, waitMs);
    timer.unref();
  }

  /**
   * The database was restored or failed over (a new store epoch): a message this node stored
   * before the restore point may have had its fan-out after it, and that is missing there now.
   * Sweeps this node's own messages again from the mark that database has, and writes no mark
   * until then: a mark written first would promise the lost fan-out, and nobody would sweep it.
   */
  storeEpochChanged(): void {
    if (this.closed) return;
    // The lowest mark read from the other database says nothing about this one.
    this.keepFromMs = 0;
    this.restoreSweepAgain = true;
    this.restoreSweep ??= this.sweepAfterRestore().finally(() => (this.restoreSweep = undefined));
  }

  private async sweepAfterRestore(): Promise<void> {
    let delayMs = RESWEEP_MS;
    while (this.restoreSweepAgain && !this.closed) {
      this.restoreSweepAgain = false;
      try {
        await this.sweepOwn();
        delayMs = RESWEEP_MS;
      } catch (err) {
        this.restoreSweepAgain = true;
        this.options.logger.warn({ err }, 'own fan-out sweep after a new store epoch failed');
        await new Promise((resolve) => setTimeout(resolve, delayMs).unref());
        delayMs = Math.min(delayMs * 2, 5000);
      }
    }
  }

  /**
   * Finishes the fan-out of nodes that have not written their mark since `now - staleMs`
   * (the sweeper's job, on one node at a time); the appended events go to the listeners.
   * Marks silent for longer than `forgetMs` are dropped once swept.
   */
  async sweepStale(
    now: number,
    staleMs: number,
    forgetMs: number,
  ): Promise<{ nodes: number; messages: number; events: number }> {
    try {
      const stale = await staleMarks(this.db, now - staleMs);
      let messages = 0;
      let events = 0;
      for (const mark of stale) {
        if (mark.nodeId === this.nodeId) continue;
        const swept = await sweepNode(this.db, mark.nodeId, now, {
          deleteIfHeartbeatBefore: now - forgetMs,
          users: (await this.routers.get()).users,
        });
        if (swept.messages > 0) {
          this.options.logger.warn(
            { node: mark.nodeId, messages: swept.messages, events: swept.deliveries.length },
            'finished the fan-out of a node that stopped',
          );
        }
        messages += swept.messages;
        events += swept.deliveries.length;
        this.emit(swept.deliveries);
      }
      return { nodes: stale.length, messages, events };
    } catch (err) {
      throw toChatError(err);
    }
  }

  /** One round trip to Postgres (`select 1`), for readiness checks; throws ChatError. */
  async ping(): Promise<void> {
    try {
      await sql`select 1`.execute(this.db);
    } catch (err) {
      throw toChatError(err);
    }
  }

  /** A snapshot of the send batcher's counters. */
  get stats(): SendStats {
    return { ...this.counters };
  }

  /** A snapshot of the device-connect batcher's counters. */
  get connectStats(): DeviceConnectStats {
    return this.devices.stats;
  }

  onDeliveries(listener: (deliveries: readonly Delivery[]) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Resolves once every message stored so far is in its recipients' inboxes. */
  fanoutIdle(): Promise<void> {
    return this.fanout.idle();
  }

  // ---- devices and cursors ----

  /** Registers a device at welcome; concurrent calls share one statement (see DeviceConnector). */
  connectDevice(
    userId: string,
    deviceId: string,
    now: number,
    options?: DeviceOptions,
  ): Promise<DeviceState> {
    return this.devices.connect(userId, deviceId, now, options);
  }

  async writeCursors(cursors: readonly DeviceCursor[], now: number): Promise<void> {
    if (cursors.length === 0) return;
    const started = performance.now();
    try {
      const kept = await writeCursors(
        this.db,
        cursors,
        now,
        this.keepFromMs,
        (await this.routers.get()).users,
      );
      const writtenAt = this.now();
      for (const user of kept) this.ackedKept.set(user, writtenAt);
      this.onBatch?.({
        kind: 'cursors',
        size: cursors.length,
        durationMs: performance.now() - started,
        committed: true,
      });
    } catch (err) {
      this.onBatch?.({
        kind: 'cursors',
        size: cursors.length,
        durationMs: performance.now() - started,
        committed: false,
      });
      throw toChatError(err);
    }
  }

  /** One device's cursor, written now (tests, tools). */
  ack(userId: string, deviceId: string, seq: number): Promise<void> {
    return this.writeCursors([{ userId, deviceId, seq }], this.now());
  }

  async latestSeqs(userIds: readonly string[]): Promise<Map<string, number>> {
    try {
      return await latestSeqs(this.db, userIds, (await this.routers.get()).users);
    } catch (err) {
      throw toChatError(err);
    }
  }

  async latestSeq(userId: string): Promise<number> {
    return (await this.latestSeqs([userId])).get(userId) ?? 0;
  }

  // ---- chats ----

  async createChat(
    creatorId: string,
    members: readonly string[],
    name: string | null,
    now: number,
  ): Promise<MembershipResult> {
    const all = [...new Set([creatorId, ...members])];
    if (all.length > this.options.maxMembersPerChat) {
      throw new ChatError('LIMIT', `a chat has at most ${this.options.maxMembersPerChat} members`, {
        members: all.length,
      });
    }
    // Blocks among the members, read from their shards before the chat step (issue 16).
    const blocks = await blocksAmong(this.db, (await this.routers.get()).users, all).catch(
      (err: unknown) => {
        throw toChatError(err);
      },
    );
    refuseBlockedBy(blocks, creatorId);
    const change = await this.storeChange(now, async (tx) => {
      const created = await storeNewChat(tx, creatorId, all, name, now, this.nodeId);
      await markBlocks(tx, created.chatId, blocks);
      return created;
    });
    return { chatId: change!.chatId };
  }

  /**
   * Runs a chat change's chat step (in one transaction), queues its fan-out and waits for it (a
   * bounded time: the change is durable either way), so that whoever made the change finds it
   * in their chat list; null when the step changed nothing. PgGroupStore's membership changes
   * come through here too.
   */
  async storeChange(
    now: number,
    step: (tx: Transaction<Database>) => Promise<StoredChatChange | null>,
  ): Promise<StoredChatChange | null> {
    if (this.closed) throw new ChatError('UNAVAILABLE', 'store is closed');
    const ticket = this.fanout.register(now);
    let change: StoredChatChange | null;
    try {
      change = await this.db.transaction().execute(step);
    } catch (err) {
      const error = toChatError(err);
      this.settleFailed(ticket, error);
      throw error;
    }
    if (change === null) {
      this.fanout.release(ticket);
      return null;
    }
    this.fanout.enqueue(ticket, chatChangeEvents(change, this.nodeId));
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.fanout.settled(ticket),
      new Promise((resolve) => (timer = setTimeout(resolve, CHANGE_FANOUT_WAIT_MS))),
    ]);
    clearTimeout(timer);
    return change;
  }

  // ---- messages ----

  send(input: SendInput): Promise<SendResult> {
    if (this.closed) return Promise.reject(new ChatError('UNAVAILABLE', 'store is closed'));
    if (this.queue.queued + this.backlogWaiters.length >= this.options.maxQueuedSends) {
      return Promise.reject(new ChatError('UNAVAILABLE', 'too many sends waiting for storage'));
    }
    this.counters.sends++;
    const ticket = this.fanout.register(input.now);
    return new Promise<SendResult>((resolve, reject) => {
      const pending = { input, ticket, resolve, reject };
      if (this.fanout.backlog < this.options.maxFanoutBacklog) this.queue.push(pending);
      else this.backlogWaiters.push(() => this.queue.push(pending));
    });
  }

  async sync(userId: string, after: number, limit: number): Promise<SyncPage> {
    try {
      const { rows } = await sql<SyncRow>`
        select seq, kind, chat_id, message_id::text as message_id, sender_id, body, attachments,
          payload, created_at
        from inbox
        where user_id = ${userId} and seq > ${after}
        order by seq
        limit ${Math.max(0, Math.floor(limit)) + 1}`.execute(this.db);
      // Read after the events, so latestSeq is never below the last returned seq.
      const latestSeq = await this.latestSeq(userId);
      const more = rows.length > limit;
      const events: InboxEvent[] = [];
      for (const row of more ? rows.slice(0, limit) : rows) {
        const event = toEvent(row);
        if (event) events.push(event);
        else this.options.logger.warn({ userId, seq: row.seq }, 'inbox event without content');
      }
      return { events, latestSeq, more };
    } catch (err) {
      throw toChatError(err);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    this.closing ??= (async () => {
      await this.queue.idle();
      await this.devices.idle();
      clearTimeout(this.resweepTimer);
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        this.fanout.idle(),
        new Promise((resolve) => (timer = setTimeout(resolve, CLOSE_FANOUT_WAIT_MS))),
      ]);
      clearTimeout(timer);
      clearInterval(this.markTimer);
      await this.marking;
      await this.claimTakeover;
      // Nothing owed: the mark goes, so that it holds nobody's acked events back. Something
      // owed (Postgres away): a last mark leaves it to a sweeper or to this node's next start.
      const owed = this.fanout.backlog > 0 || this.doubtful.size > 0;
      await (owed ? this.writeMark() : dropMark(this.db, this.nodeId)).catch(() => undefined);
      this.fanout.close();
      await this.db.destroy();
    })();
    return this.closing;
  }

  // ---- internals ----

  private emit(deliveries: readonly Delivery[]): void {
    if (deliveries.length === 0) return;
    for (const listener of this.listeners) {
      try {
        listener(deliveries);
      } catch (err) {
        this.options.logger.error({ err }, 'deliveries listener threw');
      }
    }
    this.wakeBacklogWaiters();
  }

  /** Below the bound again: every waiting send goes on (the backlog moves only as they run). */
  private wakeBacklogWaiters(): void {
    if (this.backlogWaiters.length === 0) return;
    if (this.fanout.backlog >= this.options.maxFanoutBacklog) return;
    for (const wake of this.backlogWaiters.splice(0)) wake();
  }

  /**
   * Writes this node's fan-out mark now (it is written every `markIntervalMs` anyway) and takes
   * the lowest of all marks: acked events older than that may be deleted. Not while this node
   * sweeps its own mark (the mark written once it is through says what is still owed).
   */
  async writeMark(): Promise<void> {
    if (this.restoreSweep !== undefined || this.ownSweeps > 0) return;
    const n = ++this.marksStarted;
    try {
      // A mark asked for before a restore and written after it would promise, in the restored
      // database, a fan-out that is missing there: the pool refuses its connection
      // (DatabaseOptions.storeEpoch).
      const beat = await beatMark(this.db, this.nodeId, this.fanout.upto(), this.now());
      // A write that started earlier and answered later saw older marks: not taken.
      if (n > this.marksApplied) {
        this.marksApplied = n;
        this.keepFromMs = beat.keepFrom;
      }
      await this.deleteKeptAcked();
      this.finishStaleClaim(beat);
    } catch (err) {
      throw toChatError(err);
    }
  }

  /**
   * A sweeper's claim on this node's mark that stays unfinished for `claimTakeoverMs` lost its
   * sweeper: this node runs the claim's sweep itself (the claimed messages are no longer its own
   * fan-out's to append), which moves the mark on. Beside the beats, not inside one: a long
   * sweep must not stop the heartbeat (a silent mark would be claimed again).
   */
  private finishStaleClaim(beat: MarkBeat): void {
    if (beat.sweptUpto === null || beat.sweptUpto <= beat.upto) {
      this.claimSeenSince = undefined;
      return;
    }
    this.claimSeenSince ??= this.now();
    if (this.now() - this.claimSeenSince < this.options.claimTakeoverMs) return;
    const to = beat.sweptUpto;
    this.claimTakeover ??= (async () => {
      const swept = await sweepNode(this.db, this.nodeId, to, {
        users: (await this.routers.get()).users,
      });
      this.claimSeenSince = undefined;
      this.options.logger.warn(
        { messages: swept.messages, events: swept.deliveries.length },
        'finished a sweeper’s unfinished claim on this node’s fan-out',
      );
      this.emit(swept.deliveries);
    })()
      .catch((err: unknown) =>
        this.options.logger.warn({ err }, 'unfinished claim not swept; retrying at a later beat'),
      )
      .finally(() => (this.claimTakeover = undefined));
  }

  /** Deletes the acked events kept back by a mark that has moved past them since. */
  private async deleteKeptAcked(): Promise<void> {
    const due: string[] = [];
    for (const [user, writtenAt] of this.ackedKept) if (writtenAt < this.keepFromMs) due.push(user);
    if (due.length === 0) return;
    await deleteAcked(this.db, due, this.keepFromMs, (await this.routers.get()).users);
    for (const user of due) this.ackedKept.delete(user);
  }

  /** Runs a chat step statement and settles its sends; never rejects. */
  private async runBatch(batch: readonly PendingSend[]): Promise<void> {
    this.counters.transactions++;
    this.counters.largestBatch = Math.max(this.counters.largestBatch, batch.length);
    const started = performance.now();
    let outcomes: Awaited<ReturnType<typeof storeMessages>>;
    try {
      outcomes = await storeMessages(
        this.db,
        batch.map((p) => p.input),
        this.nodeId,
        (await this.routers.get()).chats,
      );
      this.counters.commits++;
      this.onBatch?.({
        kind: 'send',
        size: batch.length,
        durationMs: performance.now() - started,
        committed: true,
      });
    } catch (err) {
      this.onBatch?.({
        kind: 'send',
        size: batch.length,
        durationMs: performance.now() - started,
        committed: false,
      });
      const error = toChatError(err);
      if (error.code === 'INTERNAL' && batch.length > 1) {
        // One bad send (say, a body Postgres refuses) must not fail the others: bisect.
        this.options.logger.warn({ err, sends: batch.length }, 'send batch failed, splitting it');
        const half = Math.ceil(batch.length / 2);
        await this.runBatch(batch.slice(0, half));
        await this.runBatch(batch.slice(half));
        return;
      }
      if (error.code === 'INTERNAL') this.options.logger.error({ err }, 'send failed');
      for (const pending of batch) {
        pending.reject(error);
        this.settleFailed(pending.ticket, error);
      }
      return;
    }
    for (const [i, pending] of batch.entries()) {
      const outcome = outcomes[i]!;
      if (outcome.status === 'refused') {
        this.fanout.release(pending.ticket);
        pending.reject(outcome.error);
        continue;
      }
      const { messageId, ts } = outcome;
      pending.resolve({ messageId, ts, dup: outcome.status === 'dup' });
      // A dup's fan-out is owed by whoever stored it (a statement of a node that died, too: its
      // mark stays until nothing of it can land any more, see start()).
      if (outcome.status === 'dup') {
        this.fanout.release(pending.ticket);
        continue;
      }
      const { input } = pending;
      this.fanout.enqueue(
        pending.ticket,
        messageEvents(
          {
            chatId: input.chatId,
            messageId,
            senderId: input.senderId,
            body: input.body,
            attachments: input.attachments,
            ts,
          },
          outcome.recipients,
          input.deviceId,
          this.nodeId,
        ),
      );
    }
  }

  /**
   * A chat step failed. Refused by Postgres, it wrote nothing. Unavailable, it may have
   * committed before its connection went: its fan-out is owed until this node has swept its
   * own mark (every message it stored since, appended where missing); the ticket holds the
   * mark back until then.
   */
  private settleFailed(ticket: FanoutTicket, error: ChatError): void {
    if (error.code !== 'UNAVAILABLE') {
      this.fanout.release(ticket);
      return;
    }
    this.doubtful.set(ticket, this.now());
    this.resweepTimer ??= setTimeout(() => void this.resweep(), this.resweepDelayMs);
    this.resweepTimer.unref();
  }

  private async resweep(): Promise<void> {
    const to = this.now();
    try {
      const swept = await this.sweepOwnUpTo(to);
      this.emit(swept.deliveries);
      for (const [ticket, failedAt] of this.doubtful) {
        if (failedAt < to) {
          this.doubtful.delete(ticket);
          this.fanout.release(ticket);
        }
      }
      this.resweepDelayMs = RESWEEP_MS;
    } catch (err) {
      this.resweepDelayMs = Math.min(this.resweepDelayMs * 2, 5000);
      this.options.logger.warn({ err }, 'own fan-out sweep failed; retrying');
    }
    this.resweepTimer = undefined;
    if (this.doubtful.size > 0 && !this.closed) {
      this.resweepTimer = setTimeout(() => void this.resweep(), this.resweepDelayMs);
      this.resweepTimer.unref();
    }
  }
}

function toEvent(row: SyncRow): InboxEvent | null {
  const seq = Number(row.seq);
  const ts = Number(row.created_at);
  const payload = row.payload ?? {};
  switch (row.kind) {
    case 'message':
      if (row.message_id === null || row.sender_id === null) return null;
      return {
        seq,
        kind: 'message',
        chatId: row.chat_id,
        messageId: row.message_id,
        from: row.sender_id,
        body: row.body,
        attachments: row.attachments ?? [],
        ts,
      };
    case 'chat':
      return {
        seq,
        kind: 'chat',
        chatId: row.chat_id,
        change: payload['change'] as 'created' | 'membersAdded' | 'membersRemoved',
        members: payload['members'] as string[],
        by: payload['by'] as string,
        ...(payload['admin'] === true ? { admin: true as const } : {}),
        ts,
      };
    case 'receipt':
      // Written before receipts became watermarks (migration 0007), until acked or expired.
      return {
        seq,
        kind: 'receipt',
        chatId: row.chat_id,
        messageId: String(row.message_id ?? payload['messageId']),
        user: payload['user'] as string,
        status: payload['status'] as 'delivered' | 'read',
        ts,
      };
  }
}
