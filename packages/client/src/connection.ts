/**
 * The connection lifecycle: one session at a time (two while a move overlaps), from the
 * registry lookup and the open through `welcome`, liveness and close, to the reconnect (when:
 * ReconnectSchedule), the `moved` redirect or the stop for good; the connection state the app
 * sees. What a session carries is the inbox's (events, sync, acks) and the dispatch's
 * (requests, sends).
 */
import { ChatError } from '@chat/protocol';
import type { Codec, ErrFrame, MovedFrame, ServerFrame, WelcomeFrame } from '@chat/protocol';
import type { ChatClientEvents, ConnectionState, ConnectionStatus } from './client-events';
import { closeDecision } from './close-policy';
import { ConnectionError } from './errors';
import type { InboxSync } from './inbox-sync';
import type { ResolvedOptions } from './options';
import { connectUrl } from './options';
import type { RequestDispatch } from './request-dispatch';
import { ReconnectSchedule } from './reconnect-schedule';
import { lookupRoute } from './route';
import { parseServerFrame } from './server-frames';
import type { FrameSender, Reply, Session } from './session';
import { newSession } from './session';
import type { SocketClose } from './transport';
import { openSocket } from './transport';
import type { TypedEvents } from './typed-events';

/**
 * @example
 * const connection = new Connection(opts, codec, events, sendOn, inbox, dispatch);
 * const ready = connection.whenReady();
 * connection.start();
 */
export class Connection {
  private readonly schedule: ReconnectSchedule;
  private current: ConnectionState = { status: 'closed', node: null };
  /** The state of `session` itself; `current` shows the move instead while one overlaps. */
  private settled: ConnectionState = this.current;
  private session: Session | undefined;
  /**
   * The previous connection while a move overlaps (`moved` with `closeInMs`): it keeps
   * delivering and carries requests (`serving`) while `session` connects to the new owner;
   * once that one is synced it only finishes the requests it carries, then it is closed.
   */
  private leaving: { session: Session; to: string; serving: boolean } | undefined;
  private halted = false;
  private everReady = false;
  private attemptGen = 0;
  private movedTarget: string | undefined;
  private movedHops = 0;
  private readyWaiters: { resolve: () => void; reject: (err: Error) => void }[] = [];
  private closeWaiter: (() => void) | undefined;

  constructor(
    private readonly opts: ResolvedOptions,
    private readonly codec: Codec,
    private readonly events: TypedEvents<ChatClientEvents>,
    private readonly sendOn: FrameSender,
    private readonly inbox: InboxSync,
    private readonly dispatch: RequestDispatch,
  ) {
    this.schedule = new ReconnectSchedule(opts, {
      attempt: () => void this.attempt(),
      waiting: () => this.setState('reconnecting', null),
      giveUp: (err) => this.shutdown(err, true),
    });
  }

  get state(): ConnectionState {
    return this.current;
  }

  /** Stopped for good: by `close()`, or by itself (`state.reason`). */
  get stopped(): boolean {
    return this.halted;
  }

  /** Resolves when the client is first ready; rejects when it stops before. */
  whenReady(): Promise<void> {
    if (this.everReady) return Promise.resolve();
    return new Promise<void>((resolve, reject) => this.readyWaiters.push({ resolve, reject }));
  }

  /** Watches the page signals and makes the first attempt; call once. */
  start(): void {
    this.schedule.watchPage();
    void this.attempt();
  }

  /** Closes for good: no reconnect; resolves once the socket closed (or after 1 s). */
  async close(): Promise<void> {
    if (this.halted) return;
    const session = this.session;
    this.shutdown(new ConnectionError('client closed', 1000), false);
    if (session === undefined) return;
    await new Promise<void>((resolve) => {
      const timer = this.opts.clock.setTimeout(() => {
        session.socket.terminate();
        resolve();
      }, 1000);
      this.closeWaiter = () => {
        this.opts.clock.clearTimeout(timer);
        resolve();
      };
      session.socket.close(1000, 'client closed');
    });
  }

  /**
   * The connection requests and sends go on: the one being left while it still serves (the
   * new one is not synced yet), else the current one once welcomed.
   */
  wire(): Session | undefined {
    const leaving = this.leaving;
    if (leaving?.serving === true && leaving.session.socket.isOpen) return leaving.session;
    return this.session?.welcomed === true ? this.session : undefined;
  }

  /** Acks go to every welcomed connection: during a move the old node pushes too. */
  ackTargets(): Session[] {
    return [this.leaving?.session, this.session].filter(
      (s): s is Session => s?.welcomed === true && s.socket.isOpen,
    );
  }

  /** The inbox is synced on `session`. A sync of the connection being left only fills its gap. */
  synced(session: Session): void {
    if (session === this.session && this.settled.status !== 'ready') this.becomeReady(session);
  }

  private async attempt(): Promise<void> {
    const gen = ++this.attemptGen;
    this.setState(this.everReady ? 'reconnecting' : 'connecting', null);
    let base: string;
    let token: string;
    try {
      base = await this.resolveBaseUrl();
    } catch (err) {
      if (gen !== this.attemptGen || this.halted) return;
      this.opts.logger.warn({ err }, 'registry lookup failed');
      this.schedule.afterFailure(0, { why: `registry lookup failed: ${asError(err).message}` });
      return;
    }
    try {
      token = typeof this.opts.token === 'string' ? this.opts.token : await this.opts.token();
    } catch (err) {
      if (gen !== this.attemptGen || this.halted) return;
      this.opts.logger.warn({ err }, 'token function failed');
      this.events.emit('error', asError(err));
      this.schedule.afterFailure(0, { why: `token function failed: ${asError(err).message}` });
      return;
    }
    if (gen !== this.attemptGen || this.halted) return;
    let url: string;
    try {
      url = connectUrl(base, token, this.opts.overlapMoves);
    } catch {
      this.shutdown(new ConnectionError(`invalid node url ${base}`), true);
      return;
    }
    this.opts.logger.debug({ url: base }, 'chat client connecting');
    const session = newSession();
    this.session = session;
    try {
      session.socket = openSocket(
        this.opts.WebSocket,
        url,
        this.codec.subprotocol,
        {
          open: () => this.armLiveness(session, this.opts.requestTimeoutMs),
          message: (data) => this.onMessage(session, data),
          close: (info) => this.onClose(session, info),
        },
        () => this.opts.clock.now(),
      );
    } catch (err) {
      this.session = undefined;
      this.shutdown(asError(err), true);
      return;
    }
    // Covers a connect that neither opens nor fails (black-holed SYN, stuck upgrade).
    this.armLiveness(session, this.opts.requestTimeoutMs);
  }

  private async resolveBaseUrl(): Promise<string> {
    const moved = this.movedTarget;
    this.movedTarget = undefined;
    if (moved !== undefined) return moved;
    if (this.opts.url !== undefined) return this.opts.url;
    const { fetch, registryUrl, user } = this.opts;
    if (fetch === undefined) throw new TypeError('no fetch available: pass options.fetch');
    const route = await lookupRoute(fetch, registryUrl as string, user as string);
    this.opts.logger.debug({ node: route.node, epoch: route.epoch }, 'registry route');
    return route.url;
  }

  private armLiveness(session: Session, ms: number): void {
    if (session.liveness !== undefined) this.opts.clock.clearTimeout(session.liveness);
    session.liveness = this.opts.clock.setTimeout(() => {
      this.opts.logger.warn({ node: session.node }, 'chat connection silent, dropping it');
      session.socket.terminate();
      // Do not wait for the close event of a dead connection: it may take minutes.
      this.onClose(session, { code: 1006, reason: 'liveness timeout' });
    }, ms);
  }

  private onMessage(session: Session, data: unknown): void {
    if (session !== this.session && session !== this.leaving?.session) return;
    let frame: ServerFrame | undefined;
    try {
      frame = parseServerFrame(this.codec.decode(data as string | Uint8Array | ArrayBuffer));
    } catch (err) {
      this.opts.logger.warn({ err }, 'undecodable frame from node');
      return;
    }
    if (frame === undefined) {
      this.opts.logger.debug({}, 'ignoring unknown or malformed frame');
      return;
    }
    if (session.welcomed) {
      this.armLiveness(session, session.heartbeatMs * this.opts.heartbeatTimeoutFactor);
    }
    switch (frame.t) {
      case 'welcome':
        return this.onWelcome(session, frame);
      case 'evt':
        return this.inbox.received(session, frame);
      case 'ping':
        this.sendOn(session, { t: 'pong', seq: frame.seq });
        return this.inbox.pinged(session, frame.seq);
      case 'ok':
        return this.onReply(session, frame.id, frame as unknown as Reply, undefined);
      case 'err':
        if (frame.id === undefined) {
          session.lastError = frame;
          if (frame.code !== 'LIMIT') {
            this.events.emit('error', new ChatError(frame.code, frame.message));
          }
          return;
        }
        return this.onReply(session, frame.id, undefined, frame);
      case 'typing':
        this.events.emit('typing', frame);
        return;
      case 'receipts':
        this.events.emit('receipts', frame);
        return;
      case 'moved':
        session.moved = frame;
        this.events.emit('moved', frame);
        // Without closeInMs the close 4001 follows; onClose reconnects then.
        if (frame.closeInMs !== undefined && session === this.session && this.opts.overlapMoves)
          this.moveWithOverlap(session, frame);
        return;
    }
  }

  /**
   * `moved` with `closeInMs`: this connection stays up, delivering and carrying requests, while
   * the next one connects to the new owner; `finishMove` closes it once that one is synced.
   * Until then the app sees `ready` on the old node with `movingTo` the new one.
   */
  private moveWithOverlap(session: Session, moved: MovedFrame): void {
    // A move while a move overlaps: the oldest connection goes, the newer one overlaps.
    if (this.leaving !== undefined) this.closeLeaving();
    this.session = undefined;
    this.leaving = { session, to: moved.node, serving: true };
    // The same spread as a reconnect after `moved`, though nobody waits in the dark now.
    this.connectToMoved(moved.url);
    this.publishState();
  }

  /**
   * Connects to the node a `moved` named after a short random delay, which spreads the users
   * a drain moves at the same moment.
   */
  private connectToMoved(url: string): void {
    this.movedTarget = url;
    this.schedule.followMoved();
  }

  /** The new connection is synced: requests go there now, the old one closes once idle. */
  private finishMove(): void {
    const leaving = this.leaving;
    if (leaving === undefined) return;
    leaving.serving = false;
    if (leaving.session.inFlight.size === 0) this.closeLeaving();
    else this.publishState();
  }

  /** Closes the connection being left; what it still carried goes on the current one. */
  private closeLeaving(): void {
    const leaving = this.leaving;
    if (leaving === undefined) return;
    this.leaving = undefined;
    this.releaseSession(leaving.session);
    leaving.session.socket.close(1000, 'moved');
    this.publishState();
    this.dispatch.redispatch();
  }

  private onWelcome(session: Session, welcome: WelcomeFrame): void {
    session.welcomed = true;
    session.node = welcome.node;
    session.heartbeatMs = welcome.heartbeatMs > 0 ? welcome.heartbeatMs : 30_000;
    this.armLiveness(session, session.heartbeatMs * this.opts.heartbeatTimeoutFactor);
    this.inbox.welcomed(welcome);
    this.events.emit('welcome', welcome);
    if (welcome.reset === true) this.inbox.reportReset(welcome.node);
    this.setState('syncing', welcome.node);
    this.dispatch.redispatch();
    // A move that overlaps: the old connection delivered everything up to the welcome's seq
    // already, so there is nothing to fetch; what comes later is pushed on both connections.
    // Skipping the sync spares the new owner two statements per mover while a drain runs.
    if (this.caughtUpOnMove(session, welcome)) this.becomeReady(session);
    else this.inbox.start(session);
  }

  private caughtUpOnMove(session: Session, welcome: WelcomeFrame): boolean {
    return (
      session === this.session &&
      this.leaving?.serving === true &&
      welcome.reset !== true &&
      this.inbox.caughtUpTo(welcome.seq)
    );
  }

  /** Synced (or nothing to sync) on the current connection. */
  private becomeReady(session: Session): void {
    this.schedule.succeeded();
    this.movedHops = 0;
    this.everReady = true;
    this.setState('ready', session.node);
    this.finishMove();
    const waiters = this.readyWaiters;
    this.readyWaiters = [];
    for (const w of waiters) w.resolve();
  }

  private onReply(
    session: Session,
    id: number,
    reply: Reply | undefined,
    err: ErrFrame | undefined,
  ): void {
    if (this.inbox.isSyncReply(session, id)) return this.inbox.onReply(session, reply, err);
    session.inFlight.delete(id);
    this.dispatch.settle(id, reply, err);
    if (this.leaving?.session === session && !this.leaving.serving && session.inFlight.size === 0)
      this.closeLeaving();
  }

  /** A session closed (or was given up: liveness, a failed sync). */
  onClose(session: Session, info: SocketClose): void {
    if (session === this.leaving?.session) {
      // The old node's deadline, or a drop: the current connection carries on alone.
      this.opts.logger.info(
        { code: info.code, reason: info.reason, node: session.node },
        'connection being left closed',
      );
      this.leaving = undefined;
      this.releaseSession(session);
      this.publishState();
      if (!this.halted) this.dispatch.redispatch();
      return;
    }
    if (session !== this.session) return;
    this.session = undefined;
    this.dropSession(session);
    if (this.closeWaiter !== undefined) {
      this.closeWaiter();
      this.closeWaiter = undefined;
    }
    if (this.halted) return;
    this.opts.logger.info(
      { code: info.code, reason: info.reason, httpStatus: info.httpStatus, node: session.node },
      'chat connection closed',
    );

    const decision = closeDecision(info, {
      ...(session.moved === undefined ? {} : { movedUrl: session.moved.url }),
      welcomed: session.welcomed,
      fixedToken: typeof this.opts.token === 'string',
      movedHops: this.movedHops,
      maxMovedHops: this.opts.maxMovedHops,
      ...(session.lastError === undefined ? {} : { lastErrorMessage: session.lastError.message }),
    });
    switch (decision.kind) {
      case 'follow-moved':
        this.movedHops += 1;
        return this.connectToMoved(decision.url);
      case 'stop':
        return this.shutdown(decision.error, true);
      case 'reconnect':
        if (decision.resetHops === true) {
          this.opts.logger.warn({ hops: this.movedHops }, 'too many moved hops, backing off');
          this.movedHops = 0;
        }
        if (decision.report !== undefined) this.events.emit('error', decision.report);
        return this.schedule.afterFailure(decision.minDelayMs, {
          why: decision.why,
          closeCode: decision.closeCode,
          ...(decision.httpStatus === undefined ? {} : { httpStatus: decision.httpStatus }),
        });
    }
  }

  /** Releases everything tied to the current session and its acks. */
  private dropSession(session: Session): void {
    this.releaseSession(session);
    this.inbox.connectionLost();
  }

  /** Releases a connection's timers and what it carried (see `RequestDispatch.release`). */
  private releaseSession(session: Session): void {
    if (session.liveness !== undefined) this.opts.clock.clearTimeout(session.liveness);
    this.inbox.abandon(session);
    this.dispatch.release(session);
  }

  /** Stops for good: no reconnect, everything pending rejects with `err`. */
  private shutdown(err: Error, emit: boolean): void {
    if (this.halted) return;
    this.halted = true;
    this.attemptGen += 1;
    this.schedule.stop();
    this.inbox.stop();
    const leaving = this.leaving;
    if (leaving !== undefined) {
      this.leaving = undefined;
      this.releaseSession(leaving.session);
      leaving.session.socket.close(1000, 'client closed');
    }
    const session = this.session;
    if (session !== undefined) {
      this.dropSession(session);
      session.socket.close(1000, 'client closed');
    }
    this.dispatch.stop(err);
    const waiters = this.readyWaiters;
    this.readyWaiters = [];
    for (const w of waiters) w.reject(err);
    if (emit) {
      this.opts.logger.warn({ err }, 'chat client stopped');
      this.events.emit('error', err);
    }
    this.setState('closed', null, emit ? err : undefined);
  }

  private setState(status: ConnectionStatus, node: string | null, reason?: Error): void {
    this.settled = Object.freeze(
      reason === undefined ? { status, node } : { status, node, reason },
    );
    this.publishState();
  }

  /** Emits the state: the session's own, or `ready` on the old node while a move overlaps. */
  private publishState(): void {
    const moving = this.leaving?.serving === true ? this.leaving : undefined;
    const next: ConnectionState =
      moving === undefined
        ? this.settled
        : Object.freeze({ status: 'ready', node: moving.session.node, movingTo: moving.to });
    const cur = this.current;
    if (
      cur.status === next.status &&
      cur.node === next.node &&
      cur.movingTo === next.movingTo &&
      cur.reason === next.reason
    )
      return;
    this.current = next;
    this.events.emit('state', this.current);
  }
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}
