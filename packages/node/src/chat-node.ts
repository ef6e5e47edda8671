/**
 * The chat node's behaviour, independent of the socket library: admission of authenticated
 * devices, frame handling, delivery to connected devices, heartbeats and ack timeouts.
 * `server.ts` binds it to uWebSockets.js.
 */
import type {
  ClientFrame,
  ClientRequest,
  Codec,
  ErrorCode,
  Feature,
  ReceiptsFrame,
  TokenClaims,
  TypingNotice,
  VerifyOptions,
  WireData,
} from '@chat/protocol';
import {
  ChatError,
  CloseCode,
  decodeClientFrame,
  isChatError,
  requestIdOf,
  verifyToken,
} from '@chat/protocol';
import type { ChatStore, Delivery, ReceiptMark, ReceiptNotice, SyncPage } from '@chat/store';
import type { Logger } from 'pino';
import { AckWriter } from './ack-writer';
import type { Clock } from './clock';
import type { NodeConfig } from './config';
import { DeliveredReceipts } from './delivered-receipts';
import type { MediaGateway } from './media';
import { mediaNotConfigured } from './media';
import type { NodeMetrics } from './metrics';
import type { DeliveredMessage } from './pending-pushes';
import type { RequestContext } from './requests';
import { handleRequest } from './requests';
import type { DeliveryFabric, LocalDeliverer, Ownership } from './routing';
import { localFabric, singleNodeOwnership } from './routing';
import type { SocketPort } from './session';
import { Session } from './session';
import { SessionRegistry } from './sessions';
import type { LocalPresence, PresencePeers, TypingItem } from './presence';
import { localPresencePeers } from './presence';
import type { SocialOptions, SocialStores } from './social';
import { Social } from './social';
import type { AdmissionVerdict } from './admission';
import { Admission, addressKey } from './admission';
import { clientAddress, parseTrustedProxies } from '@chat/cluster';
import type { TrustedProxies } from '@chat/cluster';
import { eventFrame } from './event-frame';
import { pushNotConfigured } from './push/push-registration';
import type { PushFigures, PushServiceDeps } from './push/push-service';
import { PushService } from './push/push-service';

export interface ChatNodeDeps {
  readonly config: NodeConfig;
  readonly store: ChatStore;
  readonly clock: Clock;
  readonly log: Logger;
  readonly ownership?: Ownership;
  /** Builds the delivery fabric around this node's local delivery; local-only by default. */
  readonly fabric?: (local: LocalDeliverer) => DeliveryFabric;
  /** Object storage for attachments; media requests get BAD_REQUEST without it. */
  readonly media?: MediaGateway;
  /** Counters and histograms for `/metrics`; none when absent. */
  readonly metrics?: NodeMetrics;
  /** Group administration, last seen and receipts (issue 7). */
  readonly social: SocialStores;
  readonly socialOptions?: SocialOptions;
  /** Builds presence questions and typing fan-out around this node's own; local-only by default. */
  readonly presence?: (local: LocalPresence) => PresencePeers;
  /** The store epoch the node runs under, sent in `welcome` (store-epoch.ts); none when absent. */
  readonly storeEpoch?: () => string | undefined;
  /**
   * Devices per cursor-write call (AckWriter; 32 by default). On Citus a call becomes one
   * statement per user shard, so main.ts gives it 32 per shard: a call of 32 would be 32
   * statements of about one device each.
   */
  readonly ackDevicesPerStatement?: number;
  /** Push notifications to devices that are away (issue 18); the requests are refused without. */
  readonly push?: Pick<PushServiceDeps, 'store' | 'providers' | 'config' | 'events'>;
}

/**
 * A reader's delivered watermark in a chat is pushed live at most this often: a busy chat
 * would otherwise cost its sender a frame per flush (CHAT_RECEIPT_FLUSH_MS).
 */
const RECEIPT_MIN_INTERVAL_MS = 1000;
const NO_PUSH: PushFigures = Object.freeze({
  depth: 0,
  oldestAgeMs: 0,
  sent: 0,
  failed: 0,
  inflight: 0,
  awaitingAck: 0,
});
/** Frames a device may send before its welcome; more means a broken client. */
const MAX_FRAMES_BEFORE_READY = 64;

export class ChatNode {
  readonly sessions: SessionRegistry;
  private readonly config: NodeConfig;
  private readonly store: ChatStore;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly ownership: Ownership;
  private readonly fabric: DeliveryFabric;
  private readonly acks: AckWriter;
  private readonly receipts: DeliveredReceipts;
  private receiptTimer: NodeJS.Timeout | undefined;
  private readonly stopListening: () => void;
  private readonly presence: PresencePeers;
  private readonly social: Social;
  private readonly requestContext: RequestContext;
  private readonly notReady = new Map<Session, ClientFrame[]>();
  /** Moved connections still open for the overlap (moveUser). */
  private readonly overlapping = new Set<Session>();
  private sweeper: NodeJS.Timeout | undefined;
  private readonly admission: Admission;
  private readonly trustedProxies: TrustedProxies;
  private readonly metrics: NodeMetrics | undefined;
  private readonly storeEpoch: () => string | undefined;
  private readonly verifyOptions: VerifyOptions;
  private readonly push: PushService | undefined;
  /** Cumulative, for `/v1/stats`: readers turn them into rates (the registry's dashboard). */
  private sendsAccepted = 0;
  private eventsPushed = 0;

  constructor(deps: ChatNodeDeps) {
    this.config = deps.config;
    this.metrics = deps.metrics;
    this.store = deps.store;
    this.clock = deps.clock;
    this.log = deps.log;
    this.ownership = deps.ownership ?? singleNodeOwnership;
    this.storeEpoch = deps.storeEpoch ?? (() => undefined);
    this.verifyOptions = {
      keys: this.config.authKeys,
      leewaySec: this.config.tokenLeewaySec,
      ...(this.config.authAudience === undefined ? {} : { audience: this.config.authAudience }),
      ...(this.config.authIssuer === undefined ? {} : { issuer: this.config.authIssuer }),
    };
    this.sessions = new SessionRegistry(this.config.limits.maxDevicesPerUser);
    this.trustedProxies = parseTrustedProxies('CHAT_TRUSTED_PROXIES', this.config.trustedProxies);
    this.admission = new Admission(
      {
        ratePerSec: this.config.admitRatePerSec,
        burst: this.config.admitBurst,
        perUserPerSec: this.config.admitPerUserPerSec,
        perUserBurst: this.config.admitPerUserBurst,
        perAddressPerSec: this.config.admitPerAddressPerSec,
        perAddressBurst: this.config.admitPerAddressBurst,
        maxTrackedKeys: this.config.admitTrackedKeys,
      },
      this.clock.now(),
    );
    const local: LocalDeliverer = {
      deliver: (deliveries) => this.pushToLocalDevices(deliveries),
      notify: (notices) => this.pushReceipts(notices),
    };
    this.fabric = (deps.fabric ?? localFabric)(local);
    this.stopListening = this.store.onDeliveries((deliveries) => this.fabric.deliver(deliveries));
    this.presence = (deps.presence ?? localPresencePeers)({
      isOnlineHere: (user) => this.sessions.isOnline(user),
      pushTyping: (items) => this.pushTyping(items),
    });
    this.social = new Social({
      stores: deps.social,
      peers: this.presence,
      clock: this.clock,
      log: this.log.child({ component: 'social' }),
      notify: (notices) => this.fabric.notify(notices),
      deliver: (deliveries) => this.fabric.deliver(deliveries),
      ...(deps.socialOptions ? { options: deps.socialOptions } : {}),
    });
    this.receipts = new DeliveredReceipts((notices) => this.fabric.notify(notices), {
      minIntervalMs: RECEIPT_MIN_INTERVAL_MS,
    });
    this.acks = new AckWriter({
      store: this.store,
      flushMs: this.config.ackFlushMs,
      log: this.log.child({ component: 'acks' }),
      now: () => this.clock.now(),
      beforeWrite: (slice) => this.social.recordDelivered(this.receipts, slice),
      ...(deps.ackDevicesPerStatement === undefined
        ? {}
        : { maxDevicesPerStatement: deps.ackDevicesPerStatement }),
    });
    this.push =
      deps.push === undefined
        ? undefined
        : new PushService({
            ...deps.push,
            nodeId: this.config.nodeId,
            isConnected: (user, device) => this.sessions.hasDevice(user, device),
            isOwned: (user) => this.ownership.redirectFor(user) === undefined,
            now: () => this.clock.now(),
            log: this.log.child({ component: 'push' }),
          });
    this.requestContext = {
      push: this.push?.registration ?? pushNotConfigured,
      store: this.store,
      now: () => this.clock.now(),
      syncPageSize: this.config.syncPageSize,
      media: deps.media ?? mediaNotConfigured,
      sendEvents: (session, page) => this.sendSyncPage(session, page),
      social: this.social,
    };
  }

  start(): void {
    this.sweeper = setInterval(() => this.sweep(), this.config.sweepIntervalMs);
    this.sweeper.unref();
    this.receiptTimer = setInterval(
      () => this.receipts.flushLive(this.clock.now()),
      this.config.receiptFlushMs,
    );
    this.receiptTimer.unref();
    this.push?.start();
  }

  /** Checks a device token; throws ChatError UNAUTHORIZED. */
  authenticate(token: string | undefined): TokenClaims {
    if (token === undefined || token === '') throw new ChatError('UNAUTHORIZED', 'missing token');
    return verifyToken(token, this.config.authSecret, this.clock.now(), this.verifyOptions);
  }

  /** True when a browser Origin may connect (clients that send none are not browsers). */
  isOriginAllowed(origin: string): boolean {
    return (
      origin === '' ||
      this.config.allowedOrigins.length === 0 ||
      this.config.allowedOrigins.includes(origin)
    );
  }

  /** A socket opened for an authenticated device. Returns its session. */
  open(
    claims: TokenClaims,
    codec: Codec,
    socket: SocketPort,
    features: ReadonlySet<Feature> = new Set(),
  ): Session {
    this.metrics?.connectionsOpened.inc();
    const session = new Session(
      claims.sub,
      claims.dev,
      codec,
      socket,
      this.config,
      this.clock.now(),
      features,
      claims.exp * 1000 + this.config.tokenLeewaySec * 1000,
    );
    const moved = this.ownership.redirectFor(claims.sub);
    if (moved !== undefined) {
      session.send(moved);
      session.close(CloseCode.MOVED, 'moved');
      return session;
    }
    const added = this.sessions.add(session);
    if (!added.ok) {
      session.send({
        t: 'err',
        code: 'LIMIT',
        message: `at most ${this.config.limits.maxDevicesPerUser} devices per user`,
      });
      session.close(CloseCode.DEVICE_LIMIT, 'device limit reached');
      return session;
    }
    this.notReady.set(session, []);
    void this.welcome(session);
    return session;
  }

  private async welcome(session: Session): Promise<void> {
    let reset = false;
    let missed: readonly ReceiptMark[] = [];
    try {
      const moving = this.ownership.movingHere(session.user);
      const state = await this.store.connectDevice(session.user, session.device, this.clock.now(), {
        receiptEvents: !session.features.has('receipt-marks'),
        moving,
      });
      this.sessions.noteSeq(session.user, state.latestSeq);
      reset = state.reset === true;
      missed = state.receipts;
      // Also on connect, so that a crash of this node does not leave an old time behind (a
      // moving user's too: the old owner writes no last seen when the overlap ends).
      this.social.touchLastSeen(session.user);
    } catch (err) {
      this.log.warn({ err, user: session.user }, 'cannot register device');
      this.notReady.delete(session);
      session.send({
        t: 'err',
        code: 'UNAVAILABLE',
        message: 'storage is unavailable, try again later',
      });
      session.close(CloseCode.TRY_AGAIN_LATER, 'storage unavailable');
      return;
    }
    if (session.isClosed) return;
    const storeEpoch = this.storeEpoch();
    session.send({
      t: 'welcome',
      user: session.user,
      device: session.device,
      node: this.config.nodeId,
      epoch: this.ownership.epoch(),
      seq: this.sessions.latestSeq(session.user),
      heartbeatMs: this.config.heartbeatMs,
      ...(reset ? { reset: true as const } : {}),
      ...(session.features.size > 0 ? { features: [...session.features].sort() } : {}),
      ...(storeEpoch === undefined ? {} : { storeEpoch }),
    });
    // Receipt watermarks that moved while the device was away (as events without the feature).
    if (session.features.has('receipt-marks')) {
      for (const mark of missed) session.send(receiptsFrame(mark));
    }
    session.ready = true;
    const early = this.notReady.get(session) ?? [];
    this.notReady.delete(session);
    for (const frame of early) this.dispatch(session, frame);
  }

  /** One inbound WebSocket message. */
  onMessage(session: Session, data: ArrayBuffer, isBinary: boolean): void {
    if (session.isClosed) return;
    if (isBinary !== session.codec.binary) {
      session.send({
        t: 'err',
        code: 'BAD_REQUEST',
        message: `${session.codec.subprotocol} uses ${session.codec.binary ? 'binary' : 'text'} frames`,
      });
      session.close(CloseCode.PROTOCOL_ERROR, 'wrong frame kind');
      return;
    }
    // Every frame takes a token before it is decoded: undecodable or invalid frames cost the
    // same as good ones, so no frame streams past the limit.
    const admitted = session.admit(this.clock.now());
    if (admitted === 'close') {
      session.close(CloseCode.RATE_LIMITED, 'rate limited');
      return;
    }
    let frame: ClientFrame;
    try {
      frame = decodeClientFrame(session.codec, data, this.config.limits);
    } catch (err) {
      // Over the limit, the refusal wins over the frame's own error (at most rateStrikes of
      // these are decoded before the close).
      if (admitted === 'ok') this.replyError(session, err, undefined);
      else
        this.replyError(
          session,
          new ChatError('RATE_LIMITED', 'too many frames, slow down'),
          isChatError(err) ? requestIdOf(err.context) : undefined,
        );
      return;
    }
    if (admitted === 'refuse') {
      if ('id' in frame)
        this.replyError(
          session,
          new ChatError('RATE_LIMITED', 'too many frames, slow down'),
          frame.id,
        );
      return;
    }
    const early = this.notReady.get(session);
    if (early !== undefined) {
      if (early.length >= MAX_FRAMES_BEFORE_READY)
        session.close(CloseCode.PROTOCOL_ERROR, 'too many frames before welcome');
      else early.push(frame);
      return;
    }
    this.dispatch(session, frame);
  }

  private dispatch(session: Session, frame: ClientFrame): void {
    switch (frame.t) {
      case 'ack': {
        // Never past what the user has: the cursor decides what is deleted.
        const seq = Math.min(frame.seq, this.sessions.latestSeq(session.user));
        const acked = session.onAck(seq);
        if (acked.resumed) session.ping(this.sessions.latestSeq(session.user));
        if (acked.delivered.length > 0) this.receipts.delivered(session.user, acked.delivered);
        this.acks.note(session.user, session.device, seq);
        this.push?.noteAck(session.user, session.device, seq);
        return;
      }
      case 'pong':
        session.onPong();
        return;
      case 'typing':
        this.social.typing(session.user, frame.chatId);
        return;
      default:
        void this.request(session, frame);
    }
  }

  private async request(session: Session, req: ClientRequest): Promise<void> {
    const started = req.t === 'send' && this.metrics !== undefined ? performance.now() : 0;
    try {
      const fields = await handleRequest(this.requestContext, session, req);
      session.send({ t: 'ok', id: req.id, ...fields });
      if (req.t === 'send') this.sendsAccepted += 1;
      if (started !== 0 && this.metrics !== undefined) {
        this.metrics.messagesIn.inc();
        this.metrics.sendAckSeconds.observe((performance.now() - started) / 1000);
      }
    } catch (err) {
      this.replyError(session, err, req.id, 'chatId' in req ? req.chatId : undefined);
    }
  }

  private replyError(
    session: Session,
    err: unknown,
    id: number | undefined,
    chatId?: string,
  ): void {
    let code: ErrorCode = 'INTERNAL';
    let message = 'internal error';
    let replyId = id;
    if (isChatError(err)) {
      code = err.code;
      message = err.message;
      replyId ??= requestIdOf(err.context);
    } else {
      this.log.error({ err, user: session.user, chat: chatId }, 'request failed');
    }
    this.metrics?.requestErrors.inc({ code });
    session.send(
      replyId === undefined
        ? { t: 'err', code, message }
        : { t: 'err', id: replyId, code, message },
    );
  }

  private sendSyncPage(session: Session, page: SyncPage): void {
    for (const event of page.events) {
      session.send(eventFrame(event));
      const message = deliveredMessage(session.user, event);
      if (message !== undefined) session.noteSynced(event.seq, message);
    }
    this.sessions.noteSeq(session.user, page.latestSeq);
  }

  /** Pushes committed events to this node's connected devices, encoding once per codec. */
  pushToLocalDevices(deliveries: readonly Delivery[]): number {
    let pushed = 0;
    const now = this.clock.now();
    for (const { userId, event } of deliveries) {
      this.sessions.noteSeq(userId, event.seq);
      let encoded: Map<Codec, WireData> | undefined;
      const message = deliveredMessage(userId, event);
      for (const session of this.sessions.devicesOf(userId)) {
        encoded ??= new Map();
        let data = encoded.get(session.codec);
        if (data === undefined) {
          data = session.codec.encode(eventFrame(event));
          encoded.set(session.codec, data);
        }
        session.push(event.seq, data, now, message);
        pushed += 1;
      }
      if (encoded !== undefined) this.metrics?.deliverSeconds.observe((now - event.ts) / 1000);
    }
    this.eventsPushed += pushed;
    if (pushed > 0) this.metrics?.messagesOut.inc(pushed);
    this.push?.onDelivered(deliveries);
    return pushed;
  }

  /** Pushes receipt watermarks to the devices here of the users each one is for. */
  pushReceipts(notices: readonly ReceiptNotice[]): number {
    let pushed = 0;
    for (const notice of notices) {
      const frame = receiptsFrame(notice);
      for (const user of notice.notify) {
        for (const session of this.sessions.devicesOf(user)) {
          if (!session.ready || session.isClosed || !session.features.has('receipt-marks'))
            continue;
          session.send(frame);
          pushed += 1;
        }
      }
    }
    return pushed;
  }

  /**
   * Tells every device of a user that the user now belongs to another node (`moved`, close
   * 4001). A device with the `overlap-moves` feature is told `closeInMs` instead and stays
   * connected, still delivered to (dual delivery covers both owners), until it closes the
   * connection once it is at home on the new owner, or the deadline closes it: the move leaves
   * no moment without a connection. Devices already moving to the same node are not told again.
   * Returns false when no device was told (none here, or this node owns the user again).
   */
  moveUser(user: string): boolean {
    const moved = this.ownership.redirectFor(user);
    if (moved === undefined) return false;
    const sessions = [...this.sessions.devicesOf(user)].filter((s) => s.movingTo !== moved.node);
    if (sessions.length === 0) return false;
    const overlapMs = this.config.moveOverlapMs;
    let reconnecting = false;
    for (const session of sessions) {
      if (overlapMs > 0 && session.ready && session.features.has('overlap-moves')) {
        session.send({ ...moved, closeInMs: overlapMs });
        this.closeAfterOverlap(session, moved.node, overlapMs);
      } else {
        session.send(moved);
        session.close(CloseCode.MOVED, 'moved');
        reconnecting = true;
      }
    }
    // A device that overlaps keeps acking here while it connects there, and syncs from its own
    // seq: its cursor goes with the next regular flush, not one flush per move (each flush also
    // writes receipts under chat locks, which the sends then wait for).
    if (reconnecting) this.acks.flushSoon();
    this.metrics?.movedUsers.inc();
    this.metrics?.movedDevices.inc(sessions.length);
    return true;
  }

  /** Connections kept open for a move (`overlap-moves`) that are not closed yet. */
  get overlappingMoves(): number {
    return this.overlapping.size;
  }

  private closeAfterOverlap(session: Session, node: string, overlapMs: number): void {
    session.movingTo = node;
    this.overlapping.add(session);
    const timer = setTimeout(() => {
      // Not moved again meanwhile (a later ring change): that move has its own deadline.
      if (session.movingTo === node && !session.isClosed) {
        // Not an overlap that ended at the new owner: closed like any device that went away.
        this.overlapping.delete(session);
        session.close(CloseCode.MOVED, 'moved');
      }
    }, overlapMs);
    timer.unref();
  }

  /**
   * The database was restored or failed over (a new store epoch, store-epoch.ts). What this
   * node holds from the database it replaced no longer holds: each user's latest seq, the
   * pushes awaiting acks, and the device cursors not written yet (as seqs of the old database
   * they would delete events the devices never got in the new one). All of it is dropped, the
   * store makes good its own fan-out there, and every device is closed with 4010: it
   * reconnects, finds the new epoch in its `welcome` and resyncs. Delivered watermarks are
   * kept: they are message ids a device did get, true in the new database too (message ids of
   * a chat grow with time, so its lost messages lie above all of the restored ones).
   * Returns how many connections were closed.
   */
  storeEpochChanged(): number {
    this.acks.discard();
    this.store.storeEpochChanged?.();
    const sessions = this.sessions.removeAll();
    for (const session of sessions) {
      this.notReady.delete(session);
      session.close(CloseCode.STORE_EPOCH, 'store epoch changed');
    }
    return sessions.length;
  }

  /** The push outbox as this node's worker sees it (issue 18); zeros when push is off. */
  pushFigures(): PushFigures {
    return this.push?.figures() ?? NO_PUSH;
  }

  /** Owners of users as this node sees them, for checking that the cluster agrees. */
  owners(users: readonly string[]): { epoch: number; owners: Record<string, string | null> } {
    const owners: Record<string, string | null> = {};
    for (const user of users) owners[user] = this.ownership.ownerOf(user) ?? null;
    return { epoch: this.ownership.epoch(), owners };
  }

  /** Connected user ids, for the mover. */
  connectedUsers(): Iterable<string> {
    return this.sessions.users();
  }

  /**
   * Admission control for new connections: token buckets over upgrades for the node (a mass
   * reconnect is smoothed), the user and the client address (`addressKey`; the peer's, or
   * from X-Forwarded-For when the peer is a trusted proxy), so one token or host reconnecting
   * in a loop is refused alone. The verdict says who refused and the seconds to wait (for
   * Retry-After).
   */
  admit(user: string, peer: string, forwardedFor = ''): AdmissionVerdict {
    const address = addressKey(clientAddress(peer, forwardedFor, this.trustedProxies));
    return this.admission.admit(user, address, this.clock.now());
  }

  onDrain(session: Session): void {
    if (session.onDrain()) session.ping(this.sessions.latestSeq(session.user));
  }

  /** `code`: the close code the client sent (1006 when the connection dropped). */
  onClose(session: Session, code?: number): void {
    session.markClosed();
    this.notReady.delete(session);
    const overlapped = this.overlapping.delete(session);
    this.sessions.remove(session);
    // The device overlapped a move and closed this connection with 1000, as a client does once
    // it is at home on its new owner (docs/protocol.md, `moved`): the user is still online
    // and the device syncs from its own seq there (see moveUser). A drop during the overlap is
    // a disconnect like any other.
    if (overlapped && code === 1000) return;
    // The device may reconnect elsewhere: its cursor should be there when it does.
    this.acks.flushSoon();
    // The user's last device here went away: that is when they were last seen.
    if (session.ready && !this.sessions.isOnline(session.user))
      this.social.touchLastSeen(session.user);
  }

  /**
   * Pushes typing notices to the recipients' devices connected here. Ephemeral and best
   * effort: a device that is behind on reading (over half its buffer bound) does not get one.
   */
  pushTyping(items: readonly TypingItem[]): number {
    let pushed = 0;
    const limit = this.config.maxBufferedBytes / 2;
    for (const item of items) {
      const frame: TypingNotice = { t: 'typing', chatId: item.chatId, user: item.user };
      for (const user of item.to) {
        for (const session of this.sessions.devicesOf(user)) {
          if (!session.ready || session.isClosed || session.bufferedBytes > limit) continue;
          session.send(frame);
          pushed += 1;
        }
      }
    }
    return pushed;
  }

  private sweep(): void {
    const now = this.clock.now();
    const due: Session[] = [];
    for (const session of this.sessions.all()) {
      if (session.tick(now)) {
        session.startPing(now);
        due.push(session);
      }
    }
    if (due.length > 0) void this.ping(due);
  }

  /**
   * Pings carry the user's latest seq so a device notices a gap within one heartbeat. This
   * node only sees the events pushed through it, and a push lost between nodes would leave its
   * figure stale, so the latest seqs are read from the store, in one query per sweep.
   */
  private async ping(sessions: readonly Session[]): Promise<void> {
    const users = [...new Set(sessions.map((s) => s.user))];
    try {
      const latest = await this.store.latestSeqs(users);
      for (const [user, seq] of latest) this.sessions.noteSeq(user, seq);
    } catch (err) {
      this.log.debug({ err }, 'latest seqs unavailable; pinging with what this node knows');
    }
    for (const session of sessions) session.ping(this.sessions.latestSeq(session.user));
  }

  /** Closes every connection with 1001, writes pending acks and stops the fabric. */
  async stop(): Promise<void> {
    if (this.sweeper !== undefined) clearInterval(this.sweeper);
    if (this.receiptTimer !== undefined) clearInterval(this.receiptTimer);
    this.stopListening();
    for (const session of [...this.sessions.all()])
      session.close(CloseCode.GOING_AWAY, 'node shutting down');
    this.receipts.flushLive();
    await this.acks.close();
    await this.push?.stop();
    await this.social.close();
    await this.presence.close();
    await this.fabric.close();
  }

  /**
   * What `/v1/stats` reports: current connections and users, the connections of moved devices
   * still open while they overlap their move (`movingOut`), the worst per-connection buffer,
   * pushes awaiting acks, and two cumulative counters since the process started: `messagesIn`
   * (`send` requests acked, duplicates included) and `messagesOut` (events pushed to devices
   * here, one per device).
   */
  stats(): {
    connections: number;
    users: number;
    movingOut: number;
    maxBufferedBytes: number;
    pendingPushes: number;
    messagesIn: number;
    messagesOut: number;
  } {
    let maxBufferedBytes = 0;
    let pendingPushes = 0;
    for (const session of this.sessions.all()) {
      maxBufferedBytes = Math.max(maxBufferedBytes, session.bufferedBytes);
      pendingPushes += session.pendingCount;
    }
    return {
      connections: this.sessions.connectionCount,
      users: this.sessions.userCount,
      movingOut: this.overlapping.size,
      maxBufferedBytes,
      pendingPushes,
      messagesIn: this.sendsAccepted,
      messagesOut: this.eventsPushed,
    };
  }
}

/** The part of a message event from someone else that a delivered receipt needs. */
function deliveredMessage(user: string, event: Delivery['event']): DeliveredMessage | undefined {
  if (event.kind !== 'message' || event.from === user) return undefined;
  return { chatId: event.chatId, messageId: event.messageId, from: event.from };
}

function receiptsFrame(mark: ReceiptMark): ReceiptsFrame {
  return {
    t: 'receipts',
    chatId: mark.chatId,
    user: mark.reader,
    ...(mark.delivered === null ? {} : { delivered: mark.delivered }),
    ...(mark.read === null ? {} : { read: mark.read }),
  };
}
