/**
 * The inbox side of the client: events handed to the app once and in seq order (SeqTracker,
 * DeliveredEvents), sync pages over a session to fill what is missing, coalesced acks
 * (AckCoalescer), and the store epoch the seqs belong to. The connection lifecycle tells it what
 * a session received; it tells back when a session is synced or its sync failed.
 */
import type { ClientRequest, ErrFrame, EventFrame, WelcomeFrame } from '@chat/protocol';
import { AckCoalescer } from './ack-coalescer';
import type { ChatClientEvents } from './client-events';
import { DeliveredEvents } from './delivered-events';
import type { ResolvedOptions, TimerHandle } from './options';
import { SeqTracker } from './seq-tracker';
import type { FrameSender, NextId, Reply, Session } from './session';
import type { SocketClose } from './transport';
import type { TypedEvents } from './typed-events';

/** What the inbox asks of the connection lifecycle. */
export interface InboxSyncHooks {
  /** The sessions acks go to: every welcomed, open one (during a move the old node pushes too). */
  ackTargets(): Session[];
  /** The session's sync failed or timed out: it is dropped as if it had closed with `info`. */
  lost(session: Session, info: SocketClose): void;
  /** The session's sync is through: no page more, no gap. */
  synced(session: Session): void;
}

/**
 * @example
 * const inbox = new InboxSync(opts, events, sendOn, nextId, hooks);
 * inbox.welcomed(welcome);
 * inbox.start(session); // sync pages until `hooks.synced(session)`
 */
export class InboxSync {
  // Replaced when the store epoch changes: seqs of the old database mean nothing any more.
  private seqs: SeqTracker;
  private acks: AckCoalescer;
  private readonly delivered = new DeliveredEvents();
  private epoch: string | undefined;
  private ackTimer: TimerHandle | undefined;

  constructor(
    private readonly opts: ResolvedOptions,
    private readonly events: TypedEvents<ChatClientEvents>,
    private readonly sendOn: FrameSender,
    private readonly nextId: NextId,
    private readonly hooks: InboxSyncHooks,
  ) {
    this.seqs = new SeqTracker(opts.lastSeq);
    this.acks = this.ackCoalescer(opts.lastSeq);
    this.epoch = opts.storeEpoch;
  }

  /** Last contiguous seq handed to the app. */
  get lastSeq(): number {
    return this.seqs.lastContiguous;
  }

  /** The store epoch `lastSeq` belongs to. */
  get storeEpoch(): string | undefined {
    return this.epoch;
  }

  /** A session was welcomed: acks start over on it; the welcome's epoch and seq count. */
  welcomed(welcome: WelcomeFrame): void {
    this.acks.resetConnection();
    this.adoptStoreEpoch(welcome);
    this.seqs.observe(welcome.seq);
  }

  /** The welcome said the server had removed this device: the app learns what may be gone. */
  reportReset(node: string): void {
    this.opts.logger.warn(
      { node, lastSeq: this.seqs.lastContiguous },
      'the server reset this device (away longer than its retention); resyncing',
    );
    this.events.emit('reset', { lastSeq: this.seqs.lastContiguous });
  }

  /** Everything up to `seq` was handed to the app, and nothing known beyond it is missing. */
  caughtUpTo(seq: number): boolean {
    return !this.seqs.hasGap && this.seqs.lastContiguous >= seq;
  }

  /** An event pushed on a session: delivered in order; a gap is fetched by a sync. */
  received(session: Session, evt: EventFrame): void {
    this.deliver(this.seqs.offer(evt));
    if (this.seqs.hasGap) this.start(session);
  }

  /** A ping names the latest seq: a sync fetches what did not arrive. */
  pinged(session: Session, seq: number): void {
    if (this.seqs.observe(seq)) this.start(session);
  }

  /** Sends the next sync page on a welcomed session, unless one is out already. */
  start(session: Session): void {
    if (session.sync !== undefined || !session.welcomed) return;
    const page = this.seqs.beginPage();
    const id = this.nextId();
    const timer = this.opts.clock.setTimeout(() => {
      this.opts.logger.warn({ node: session.node }, 'sync timed out, reconnecting');
      session.socket.terminate();
      this.hooks.lost(session, { code: 1006, reason: 'sync timeout' });
    }, this.opts.requestTimeoutMs);
    session.sync = { id, page, timer };
    const frame: ClientRequest = { t: 'sync', id, after: page.after };
    if (this.opts.syncLimit !== undefined) frame.limit = this.opts.syncLimit;
    this.sendOn(session, frame);
  }

  /** Whether request `id` is the session's sync page. */
  isSyncReply(session: Session, id: number): boolean {
    return session.sync?.id === id;
  }

  /** The reply to the session's sync page (`isSyncReply`). */
  onReply(session: Session, reply: Reply | undefined, err: ErrFrame | undefined): void {
    const sync = session.sync as NonNullable<Session['sync']>;
    this.opts.clock.clearTimeout(sync.timer);
    session.sync = undefined;
    if (err !== undefined || reply === undefined) {
      // The node cannot serve the inbox (UNAVAILABLE): back off and reconnect, then sync again.
      this.opts.logger.warn({ code: err?.code }, 'sync failed, reconnecting');
      session.socket.close(1000, 'sync failed');
      this.hooks.lost(session, { code: 1006, reason: 'sync failed' });
      return;
    }
    const seq = typeof reply.seq === 'number' ? reply.seq : 0;
    const more = reply.more === true;
    this.deliver(this.seqs.endPage(sync.page, { seq, more }), false);
    this.flushAck(true);
    if (more || this.seqs.hasGap) {
      this.start(session);
      return;
    }
    this.hooks.synced(session);
  }

  /** The session is gone: its sync page is not waited for any more. */
  abandon(session: Session): void {
    if (session.sync !== undefined) this.opts.clock.clearTimeout(session.sync.timer);
    session.sync = undefined;
  }

  /** The current connection is gone: no ack waits (the node knows what this device acked). */
  connectionLost(): void {
    this.stop();
    this.acks.resetConnection();
  }

  /** The client stopped: no ack goes out any more. */
  stop(): void {
    if (this.ackTimer !== undefined) this.opts.clock.clearTimeout(this.ackTimer);
    this.ackTimer = undefined;
  }

  /**
   * A welcome naming another store epoch than the one the seqs are from: they start over at 0,
   * and the sync that follows the welcome fetches the user's inbox as the database has it now.
   */
  private adoptStoreEpoch(welcome: WelcomeFrame): void {
    const epoch = welcome.storeEpoch;
    if (epoch === undefined || epoch === this.epoch) return;
    const previous = this.epoch;
    this.epoch = epoch;
    if (previous === undefined) return;
    const lastSeq = this.seqs.lastContiguous;
    this.opts.logger.warn(
      { node: welcome.node, previous, epoch, lastSeq },
      'the store epoch changed (database restored or failed over); resyncing from seq 0',
    );
    this.seqs = new SeqTracker(0);
    this.acks = this.ackCoalescer(0);
    this.events.emit('storeEpochChanged', { previous, epoch, lastSeq });
  }

  private ackCoalescer(ackedSeq: number): AckCoalescer {
    return new AckCoalescer(
      { maxDelayMs: this.opts.ackDelayMs, maxEvents: this.opts.ackEveryEvents },
      ackedSeq,
    );
  }

  private deliver(events: EventFrame[], scheduleAck = true): void {
    if (events.length === 0) return;
    for (const evt of events) if (this.delivered.firstTime(evt)) this.events.emit('event', evt);
    if (!scheduleAck) return;
    const decision = this.acks.delivered(events.length);
    if (decision === 'now') this.flushAck(false);
    else if (decision === 'arm-timer') {
      this.ackTimer = this.opts.clock.setTimeout(() => {
        this.ackTimer = undefined;
        this.acks.timerFired();
        this.flushAck(false);
      }, this.opts.ackDelayMs);
    }
  }

  private flushAck(force: boolean): void {
    const targets = this.hooks.ackTargets();
    if (targets.length === 0) return;
    const seq = this.acks.take(this.seqs.lastContiguous, force);
    if (seq === undefined) return;
    for (const session of targets) this.sendOn(session, { t: 'ack', seq });
  }
}
