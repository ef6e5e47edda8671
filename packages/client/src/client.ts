/**
 * ChatClient: the socket glue around the pure parts (Backoff, SeqTracker, AckCoalescer,
 * Outbox). One `Session` per WebSocket attempt; events of a session that is no longer current
 * are ignored, so a late close or message of an abandoned socket cannot disturb the next one.
 */
import { ChatError, CloseCode, jsonCodec, msgpackCodec } from '@chat/protocol';
import type {
  AttachmentRef,
  ChatSummary,
  ClientFrame,
  ClientRequest,
  Codec,
  ErrFrame,
  ErrorCode,
  EventFrame,
  LastSeenVisibility,
  MovedFrame,
  OkFields,
  ReceiptsFrame,
  RequestType,
  ServerFrame,
  TypingNotice,
  WelcomeFrame,
} from '@chat/protocol';
import { AckCoalescer } from './ack-coalescer';
import { Backoff } from './backoff';
import { DeliveredEvents } from './delivered-events';
import { ConnectionError } from './errors';
import { randomId } from './ids';
import type { UploadData } from './media';
import { postUpload, toBlob } from './media';
import type { ChatClientOptions, ResolvedOptions, TimerHandle } from './options';
import { connectUrl, resolveOptions } from './options';
import type { SendResult } from './outbox';
import { Outbox } from './outbox';
import { lookupRoute } from './route';
import { parseServerFrame } from './server-frames';
import type { SyncPage } from './seq-tracker';
import { SeqTracker } from './seq-tracker';
import type { Disposer, Listener } from './typed-events';
import { TypedEvents } from './typed-events';
import type { Socket, SocketClose } from './transport';
import { openSocket } from './transport';

export type ConnectionStatus = 'connecting' | 'syncing' | 'ready' | 'reconnecting' | 'closed';

export interface ConnectionState {
  readonly status: ConnectionStatus;
  /** Id of the node of the current session (from `welcome`), null while not connected. */
  readonly node: string | null;
  /**
   * Set while a move overlaps (`overlapMoves`): the node being moved to. `status` stays
   * `ready` and `node` names the old node, which keeps delivering until the new one is synced
   * ("moving: node-1 -> node-4").
   */
  readonly movingTo?: string;
}

/** Everything `client.on()` can listen to. */
export interface ChatClientEvents {
  /** An inbox event, delivered once and strictly in seq order. */
  event: EventFrame;
  typing: TypingNotice;
  /**
   * Receipt watermarks of a chat member: every message of the chat up to `delivered` reached
   * a device of `user`, every one up to `read` they read. Values only grow; keep the greater.
   */
  receipts: ReceiptsFrame;
  state: ConnectionState;
  /** Auth failures (ChatError UNAUTHORIZED), terminal stops, id-less `err` frames. */
  error: ChatError | Error;
  welcome: WelcomeFrame;
  moved: MovedFrame;
  /**
   * The server had removed this device (away longer than its retention period): events after
   * `lastSeq` may be gone for good. The client carries on (the sync that follows starts at the
   * oldest events still available and skips the missing numbers); an app should refresh what it
   * derives from events (chat list, unread counts).
   */
  reset: { readonly lastSeq: number };
  /**
   * The node's database was restored to an earlier state or failed over (`welcome` names
   * another store epoch than the one this client synced under): seqs after the restore point
   * are handed out again for other events. The client has dropped its seq state and syncs from
   * seq 0; events it already delivered are recognised by `(chatId, messageId)` and not
   * delivered again, the others arrive as `event`s as usual. Messages the database lost do not
   * come back: an app may refresh what it shows (chat list, unread counts). `lastSeq` is the
   * seq the client had reached under the previous epoch.
   */
  storeEpochChanged: {
    readonly previous: string;
    readonly epoch: string;
    readonly lastSeq: number;
  };
}

export interface SendOptions {
  /** Idempotency key, at most 64 characters; generated when absent. */
  readonly clientMsgId?: string;
  readonly attachments?: readonly AttachmentRef[];
}

type RequestBody<T extends RequestType> = Omit<Extract<ClientRequest, { t: T }>, 'id'>;
type RequestFields<T extends RequestType> = Omit<RequestBody<T>, 't'>;
type Reply = Record<string, unknown>;

interface PendingRequest {
  readonly body: RequestBody<RequestType>;
  readonly resolve: (reply: Reply) => void;
  readonly reject: (err: Error) => void;
  timer: TimerHandle;
  /** Request id of the attempt on the wire. */
  id: number | undefined;
}

/** Requests that are safe to send again after the connection dropped before the reply. */
const RESENDABLE: ReadonlySet<RequestType> = new Set<RequestType>([
  'listChats',
  'read',
  'lastSeen',
  // Blocking, unblocking and setting a value twice end where doing it once does.
  'block',
  'unblock',
  'listBlocked',
  'privacy',
  'uploadTarget',
  'downloadUrl',
]);

interface Session {
  socket: Socket;
  welcomed: boolean;
  /** Ids of requests and sends put on this connection, not answered yet. */
  readonly inFlight: Set<number>;
  node: string | null;
  moved: MovedFrame | undefined;
  /** An id-less `err` (LIMIT precedes close 4009). */
  lastError: ErrFrame | undefined;
  heartbeatMs: number;
  liveness: TimerHandle | undefined;
  sync: { id: number; page: SyncPage; timer: TimerHandle } | undefined;
}

/**
 * A chat connection for one device, with reconnect, resume and exactly-once, in-order delivery
 * of inbox events to the app.
 *
 * @example
 * const client = new ChatClient({ registryUrl, user: 'alice', token: getToken, lastSeq: saved });
 * client.on('event', (evt) => { render(evt); persist(client.lastSeq); });
 * await client.connect();
 * const { messageId } = await client.send(chatId, 'hello');
 */
export class ChatClient {
  private readonly opts: ResolvedOptions;
  private readonly codec: Codec;
  private readonly events: TypedEvents<ChatClientEvents>;
  // Replaced when the store epoch changes: seqs of the old database mean nothing any more.
  private seqs: SeqTracker;
  private acks: AckCoalescer;
  private readonly delivered = new DeliveredEvents();
  private epoch: string | undefined;
  private readonly outbox: Outbox;
  private readonly backoff: Backoff;

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
  private started = false;
  private stopped = false;
  private everReady = false;
  private attemptGen = 0;
  private nextId = 1;
  private movedTarget: string | undefined;
  private movedHops = 0;
  private readyWaiters: { resolve: () => void; reject: (err: Error) => void }[] = [];

  private readonly requests = new Map<number, PendingRequest>();
  private waiting: PendingRequest[] = [];
  private readonly sendTimers = new Map<number, TimerHandle>();
  private reconnectTimer: TimerHandle | undefined;
  private ackTimer: TimerHandle | undefined;
  private outboxTimer: TimerHandle | undefined;

  constructor(options: ChatClientOptions) {
    this.opts = resolveOptions(options);
    this.codec = this.opts.codec === 'msgpack' ? msgpackCodec : jsonCodec;
    this.events = new TypedEvents((err, event) =>
      this.opts.logger.error({ err, event }, 'chat client listener threw'),
    );
    this.seqs = new SeqTracker(this.opts.lastSeq);
    this.acks = this.ackCoalescer(this.opts.lastSeq);
    this.epoch = this.opts.storeEpoch;
    const backoffSettings = { baseMs: this.opts.backoffBaseMs, maxMs: this.opts.backoffMaxMs };
    this.outbox = new Outbox(backoffSettings, this.opts.random);
    this.backoff = new Backoff(backoffSettings, this.opts.random);
  }

  /** Last contiguous seq handed to the app: persist it and pass it as `lastSeq` next time. */
  get lastSeq(): number {
    return this.seqs.lastContiguous;
  }

  /**
   * The store epoch `lastSeq` belongs to (from `welcome`; undefined until then unless given in
   * the options): persist it with `lastSeq` and pass both back.
   */
  get storeEpoch(): string | undefined {
    return this.epoch;
  }

  get state(): ConnectionState {
    return this.current;
  }

  /**
   * Subscribes to an event; returns a function that unsubscribes.
   *
   * @example
   * const off = client.on('state', (s) => console.log(s.status, s.node));
   */
  on<K extends keyof ChatClientEvents>(
    event: K,
    listener: Listener<ChatClientEvents[K]>,
  ): Disposer {
    return this.events.on(event, listener);
  }

  /**
   * Starts connecting (once) and resolves when the client is first ready (welcome and sync
   * done). Transient failures are retried; it rejects only when the client stops for good
   * (fixed token refused, device limit, replaced, `close()`).
   */
  connect(): Promise<void> {
    if (this.stopped) return Promise.reject(new ConnectionError('client is closed'));
    const ready = this.everReady
      ? Promise.resolve()
      : new Promise<void>((resolve, reject) => this.readyWaiters.push({ resolve, reject }));
    if (!this.started) {
      this.started = true;
      void this.attempt();
    }
    return ready;
  }

  /** Closes for good: no reconnect; pending requests and sends reject. */
  async close(): Promise<void> {
    if (this.stopped) return;
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

  private closeWaiter: (() => void) | undefined;

  // ---- requests ----

  /** Creates a chat with the given members (the caller is added by the node). */
  async createChat(members: string[], name?: string): Promise<{ chatId: string }> {
    const reply = await this.request(
      'createChat',
      name === undefined ? { members } : { members, name },
    );
    return { chatId: reply.chatId };
  }

  /**
   * Adds members; only admins may. With `admin: true` every listed user also becomes an admin
   * (members already in the chat are promoted).
   *
   * @example
   * await client.addMembers(chatId, ['carol'], { admin: true });
   */
  async addMembers(
    chatId: string,
    members: string[],
    opts: { readonly admin?: boolean } = {},
  ): Promise<void> {
    await this.request(
      'addMembers',
      opts.admin === true ? { chatId, members, admin: true } : { chatId, members },
    );
  }

  /** Makes members of the chat admins (an admin only). */
  async promote(chatId: string, members: string[]): Promise<void> {
    await this.addMembers(chatId, members, { admin: true });
  }

  /** Removes members (an admin only), or, with the caller's own id, leaves the chat. */
  async removeMembers(chatId: string, members: string[]): Promise<void> {
    await this.request('removeMembers', { chatId, members });
  }

  /** The first page of the caller's chats, most recently active first. */
  async listChats(): Promise<ChatSummary[]> {
    return (await this.listChatsPage()).chats;
  }

  /**
   * One page of the caller's chats, most recently active first. For the next page pass the
   * last chat's `activeAt` as `before`.
   *
   * @example
   * let page = await client.listChatsPage({ limit: 20 });
   * while (page.more) page = await client.listChatsPage({ limit: 20, before: page.chats.at(-1)!.activeAt });
   */
  async listChatsPage(
    opts: { readonly before?: number; readonly limit?: number } = {},
  ): Promise<{ chats: ChatSummary[]; more: boolean }> {
    const fields: RequestFields<'listChats'> = {};
    if (opts.before !== undefined) fields.before = opts.before;
    if (opts.limit !== undefined) fields.limit = opts.limit;
    const reply = await this.request('listChats', fields);
    return { chats: reply.chats, more: reply.more === true };
  }

  /**
   * Marks a message, and every earlier one of the chat, read: the other members get a
   * `receipts` event with the caller's new `read` watermark.
   */
  async read(chatId: string, messageId: string): Promise<void> {
    await this.request('read', { chatId, messageId });
  }

  /**
   * Whether a user is connected, and when they were last seen, as their privacy setting lets
   * the caller see it (by default: users who share a chat with them). `hidden: true` (with
   * `online` false and `lastSeen` null) when they hide it from a user they share a chat with;
   * NOT_FOUND for anyone else who may not see it.
   */
  async lastSeen(
    user: string,
  ): Promise<{ online: boolean; lastSeen: number | null; hidden?: true }> {
    const reply = await this.request('lastSeen', { user });
    return reply.hidden === true
      ? { online: reply.online, lastSeen: reply.lastSeen, hidden: true }
      : { online: reply.online, lastSeen: reply.lastSeen };
  }

  /**
   * Blocks a user: they can no longer create a chat with the caller, add the caller to a chat,
   * send in their one-to-one chat with the caller (BLOCKED), or see the caller's last seen.
   *
   * @example
   * await client.block('mallory');
   */
  async block(user: string): Promise<void> {
    await this.request('block', { user });
  }

  async unblock(user: string): Promise<void> {
    await this.request('unblock', { user });
  }

  /** The users the caller blocked, sorted. */
  async blockedUsers(): Promise<string[]> {
    return (await this.request('listBlocked', {})).users;
  }

  /**
   * Reads the caller's privacy settings, changing those given first. `lastSeen`: who sees the
   * caller's last seen and online status: `everyone`, `contacts` (users who share a chat with
   * the caller; the default) or `nobody`.
   *
   * @example
   * await client.privacy({ lastSeen: 'nobody' }); // { lastSeen: 'nobody' }
   */
  async privacy(
    changes: { readonly lastSeen?: LastSeenVisibility } = {},
  ): Promise<{ lastSeen: LastSeenVisibility }> {
    const reply = await this.request(
      'privacy',
      changes.lastSeen === undefined ? {} : { lastSeen: changes.lastSeen },
    );
    return { lastSeen: reply.lastSeen };
  }

  async uploadTarget(mime: string, size: number): Promise<OkFields['uploadTarget']> {
    const { key, url, fields, expiresAt } = await this.request('uploadTarget', { mime, size });
    return fields === undefined ? { key, url, expiresAt } : { key, url, fields, expiresAt };
  }

  async downloadUrl(key: string): Promise<OkFields['downloadUrl']> {
    const { url, expiresAt } = await this.request('downloadUrl', { key });
    return { url, expiresAt };
  }

  /**
   * Uploads bytes straight to object storage (a presigned POST the node hands out) and returns
   * the reference to put in `send`. Streams are read into memory first: the upload policy is
   * bound to the exact size.
   *
   * @example
   * const ref = await client.uploadAttachment(fileInput.files[0], 'image/jpeg');
   * await client.send(chatId, 'look', { attachments: [ref] });
   */
  async uploadAttachment(data: UploadData, mime: string): Promise<AttachmentRef> {
    const blob = await toBlob(data, mime);
    const target = await this.uploadTarget(mime, blob.size);
    await postUpload(target, blob);
    return { key: target.key, mime, size: blob.size };
  }

  /** A short-lived URL to fetch an attachment of a chat this user is in. */
  async attachmentUrl(key: string): Promise<string> {
    return (await this.downloadUrl(key)).url;
  }

  /**
   * Fire-and-forget typing notice; dropped while not connected. Members' devices get a
   * `typing` event; the node forwards at most one per user and chat every 2 s.
   */
  typing(chatId: string): void {
    this.sendOn(this.wire(), { t: 'typing', chatId });
  }

  /**
   * Sends a message. Kept in an outbox until the node's `ok`: resent with the same clientMsgId
   * after a reconnect, retried with backoff on UNAVAILABLE, RATE_LIMITED, INTERNAL and
   * timeouts, until `sendDeadlineMs`. Other errors reject at once.
   *
   * @example
   * const { messageId, ts } = await client.send(chatId, 'hi', { clientMsgId: draft.id });
   */
  send(chatId: string, body: string | undefined, opts: SendOptions = {}): Promise<SendResult> {
    if (this.stopped) return Promise.reject(new ConnectionError('client is closed'));
    const clientMsgId = opts.clientMsgId ?? randomId(this.opts.random);
    if (clientMsgId.length === 0 || clientMsgId.length > 64) {
      return Promise.reject(new ChatError('BAD_REQUEST', 'clientMsgId must be 1-64 characters'));
    }
    const frame: RequestBody<'send'> = { t: 'send', chatId, clientMsgId };
    if (body !== undefined) frame.body = body;
    if (opts.attachments !== undefined) frame.attachments = opts.attachments.map((a) => ({ ...a }));
    const now = this.opts.clock.now();
    const result = new Promise<SendResult>((resolve, reject) => {
      this.outbox.add(frame, now + this.opts.sendDeadlineMs, now, { resolve, reject });
    });
    this.pumpOutbox();
    return result;
  }

  private request<T extends RequestType>(t: T, fields: RequestFields<T>): Promise<OkFields[T]> {
    if (this.stopped) return Promise.reject(new ConnectionError('client is closed'));
    const body = { ...fields, t } as unknown as RequestBody<RequestType>;
    return new Promise<OkFields[T]>((resolve, reject) => {
      const pending: PendingRequest = {
        body,
        resolve: resolve as (reply: Reply) => void,
        reject,
        id: undefined,
        timer: this.opts.clock.setTimeout(() => {
          this.forgetRequest(pending);
          reject(new ChatError('UNAVAILABLE', `${body.t} timed out`));
        }, this.opts.requestTimeoutMs),
      };
      this.dispatch(pending);
    });
  }

  /** Puts a request on the wire, or keeps it for the next connection when there is none. */
  private dispatch(pending: PendingRequest): void {
    const session = this.wire();
    if (session === undefined) {
      this.waiting.push(pending);
      return;
    }
    const id = this.nextId++;
    pending.id = id;
    this.requests.set(id, pending);
    session.inFlight.add(id);
    this.sendOn(session, { ...pending.body, id } as ClientFrame);
  }

  /**
   * The connection requests and sends go on: the one being left while it still serves (the
   * new one is not synced yet), else the current one once welcomed.
   */
  private wire(): Session | undefined {
    const leaving = this.leaving;
    if (leaving?.serving === true && leaving.session.socket.isOpen) return leaving.session;
    return this.session?.welcomed === true ? this.session : undefined;
  }

  private forgetRequest(pending: PendingRequest): void {
    if (pending.id !== undefined) this.requests.delete(pending.id);
    this.waiting = this.waiting.filter((p) => p !== pending);
  }

  private pumpOutbox(): void {
    if (this.stopped) return;
    const { clock } = this.opts;
    if (this.outboxTimer !== undefined) clock.clearTimeout(this.outboxTimer);
    this.outboxTimer = undefined;
    this.outbox.expire(clock.now());
    const session = this.wire();
    if (session !== undefined) {
      for (const frame of this.outbox.due(clock.now())) {
        const id = this.nextId++;
        this.outbox.markSent(frame, id);
        session.inFlight.add(id);
        this.sendOn(session, { ...frame, id });
        this.sendTimers.set(
          id,
          clock.setTimeout(() => {
            this.sendTimers.delete(id);
            this.outbox.timedOut(id, clock.now());
            this.pumpOutbox();
          }, this.opts.requestTimeoutMs),
        );
      }
    }
    const wake = this.outbox.nextWakeup();
    if (wake !== undefined) {
      this.outboxTimer = clock.setTimeout(
        () => {
          this.outboxTimer = undefined;
          this.pumpOutbox();
        },
        Math.max(0, wake - clock.now()),
      );
    }
  }

  // ---- connection lifecycle ----

  private async attempt(): Promise<void> {
    const gen = ++this.attemptGen;
    this.setState(this.everReady ? 'reconnecting' : 'connecting', null);
    let base: string;
    let token: string;
    try {
      base = await this.resolveBaseUrl();
    } catch (err) {
      if (gen !== this.attemptGen || this.stopped) return;
      this.opts.logger.warn({ err }, 'registry lookup failed');
      this.scheduleReconnect(0);
      return;
    }
    try {
      token = typeof this.opts.token === 'string' ? this.opts.token : await this.opts.token();
    } catch (err) {
      if (gen !== this.attemptGen || this.stopped) return;
      this.opts.logger.warn({ err }, 'token function failed');
      this.events.emit('error', asError(err));
      this.scheduleReconnect(0);
      return;
    }
    if (gen !== this.attemptGen || this.stopped) return;
    let url: string;
    try {
      url = connectUrl(base, token, this.opts.overlapMoves);
    } catch {
      this.shutdown(new ConnectionError(`invalid node url ${base}`), true);
      return;
    }
    this.opts.logger.debug({ url: base }, 'chat client connecting');
    const session: Session = {
      socket: undefined as unknown as Socket,
      welcomed: false,
      inFlight: new Set(),
      node: null,
      moved: undefined,
      lastError: undefined,
      heartbeatMs: 0,
      liveness: undefined,
      sync: undefined,
    };
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

  private scheduleReconnect(minDelayMs: number): void {
    if (this.stopped) return;
    const delay = Math.max(this.backoff.next(), minDelayMs);
    this.setState('reconnecting', null);
    this.opts.logger.debug({ delay, attempt: this.backoff.attempts }, 'chat client reconnect');
    this.clearTimer('reconnectTimer');
    this.reconnectTimer = this.opts.clock.setTimeout(() => {
      this.reconnectTimer = undefined;
      void this.attempt();
    }, delay);
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
        this.deliver(this.seqs.offer(frame));
        if (this.seqs.hasGap) this.startSync(session);
        return;
      case 'ping':
        this.sendOn(session, { t: 'pong', seq: frame.seq });
        if (this.seqs.observe(frame.seq)) this.startSync(session);
        return;
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
    this.clearTimer('reconnectTimer');
    const delay = Math.floor(this.opts.random() * this.opts.movedJitterMs);
    this.reconnectTimer = this.opts.clock.setTimeout(() => {
      this.reconnectTimer = undefined;
      void this.attempt();
    }, delay);
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
    this.redispatch();
  }

  /** Requests that wait for a connection, and the outbox, go out on the wire there is. */
  private redispatch(): void {
    const waiting = this.waiting;
    this.waiting = [];
    for (const pending of waiting) this.dispatch(pending);
    this.pumpOutbox();
  }

  private onWelcome(session: Session, welcome: WelcomeFrame): void {
    session.welcomed = true;
    session.node = welcome.node;
    session.heartbeatMs = welcome.heartbeatMs > 0 ? welcome.heartbeatMs : 30_000;
    this.armLiveness(session, session.heartbeatMs * this.opts.heartbeatTimeoutFactor);
    this.acks.resetConnection();
    this.adoptStoreEpoch(welcome);
    this.seqs.observe(welcome.seq);
    this.events.emit('welcome', welcome);
    if (welcome.reset === true) {
      this.opts.logger.warn(
        { node: welcome.node, lastSeq: this.seqs.lastContiguous },
        'the server reset this device (away longer than its retention); resyncing',
      );
      this.events.emit('reset', { lastSeq: this.seqs.lastContiguous });
    }
    this.setState('syncing', welcome.node);
    this.redispatch();
    this.startSync(session);
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

  private startSync(session: Session): void {
    if (session.sync !== undefined || !session.welcomed) return;
    const page = this.seqs.beginPage();
    const id = this.nextId++;
    const timer = this.opts.clock.setTimeout(() => {
      this.opts.logger.warn({ node: session.node }, 'sync timed out, reconnecting');
      session.socket.terminate();
      this.onClose(session, { code: 1006, reason: 'sync timeout' });
    }, this.opts.requestTimeoutMs);
    session.sync = { id, page, timer };
    const frame: ClientRequest = { t: 'sync', id, after: page.after };
    if (this.opts.syncLimit !== undefined) frame.limit = this.opts.syncLimit;
    this.sendOn(session, frame);
  }

  private onSyncReply(session: Session, reply: Reply | undefined, err: ErrFrame | undefined) {
    const sync = session.sync as NonNullable<Session['sync']>;
    this.opts.clock.clearTimeout(sync.timer);
    session.sync = undefined;
    if (err !== undefined || reply === undefined) {
      // The node cannot serve the inbox (UNAVAILABLE): back off and reconnect, then sync again.
      this.opts.logger.warn({ code: err?.code }, 'sync failed, reconnecting');
      session.socket.close(1000, 'sync failed');
      this.onClose(session, { code: 1006, reason: 'sync failed' });
      return;
    }
    const seq = typeof reply.seq === 'number' ? reply.seq : 0;
    const more = reply.more === true;
    this.deliver(this.seqs.endPage(sync.page, { seq, more }), false);
    this.flushAck(true);
    if (more || this.seqs.hasGap) {
      this.startSync(session);
      return;
    }
    // A sync of the connection being left only fills its gap.
    if (session === this.session && this.settled.status !== 'ready') {
      this.backoff.reset();
      this.movedHops = 0;
      this.everReady = true;
      this.setState('ready', session.node);
      this.finishMove();
      const waiters = this.readyWaiters;
      this.readyWaiters = [];
      for (const w of waiters) w.resolve();
    }
  }

  private onReply(
    session: Session,
    id: number,
    reply: Reply | undefined,
    err: ErrFrame | undefined,
  ): void {
    if (session.sync?.id === id) return this.onSyncReply(session, reply, err);
    session.inFlight.delete(id);
    this.settleReply(id, reply, err);
    if (this.leaving?.session === session && !this.leaving.serving && session.inFlight.size === 0)
      this.closeLeaving();
  }

  private settleReply(id: number, reply: Reply | undefined, err: ErrFrame | undefined): void {
    const now = this.opts.clock.now();
    if (this.outbox.owns(id)) {
      const timer = this.sendTimers.get(id);
      if (timer !== undefined) this.opts.clock.clearTimeout(timer);
      this.sendTimers.delete(id);
      if (reply !== undefined) {
        this.outbox.succeeded(id, reply as unknown as SendResult);
      } else if (err !== undefined) {
        this.outbox.failed(id, toChatError(err), now);
      }
      this.pumpOutbox();
      return;
    }
    const pending = this.requests.get(id);
    if (pending === undefined) return;
    this.requests.delete(id);
    this.opts.clock.clearTimeout(pending.timer);
    if (err !== undefined) pending.reject(toChatError(err));
    else pending.resolve(reply as Reply);
  }

  private onClose(session: Session, info: SocketClose): void {
    if (session === this.leaving?.session) {
      // The old node's deadline, or a drop: the current connection carries on alone.
      this.opts.logger.info(
        { code: info.code, reason: info.reason, node: session.node },
        'connection being left closed',
      );
      this.leaving = undefined;
      this.releaseSession(session);
      this.publishState();
      if (!this.stopped) this.redispatch();
      return;
    }
    if (session !== this.session) return;
    this.session = undefined;
    this.dropSession(session);
    if (this.closeWaiter !== undefined) {
      this.closeWaiter();
      this.closeWaiter = undefined;
    }
    if (this.stopped) return;
    this.opts.logger.info(
      { code: info.code, reason: info.reason, httpStatus: info.httpStatus, node: session.node },
      'chat connection closed',
    );

    if (info.code === CloseCode.MOVED && session.moved !== undefined) {
      if (this.movedHops < this.opts.maxMovedHops) {
        this.movedHops += 1;
        this.connectToMoved(session.moved.url);
        return;
      }
      this.opts.logger.warn({ hops: this.movedHops }, 'too many moved hops, backing off');
      this.movedHops = 0;
      return this.scheduleReconnect(0);
    }
    if (
      info.code === CloseCode.UNAUTHORIZED &&
      session.welcomed &&
      typeof this.opts.token !== 'string'
    ) {
      // The token was accepted and has since expired: the refresh is a reconnect with a fresh
      // one, routine rather than an error. A fresh token that is refused is reported below.
      this.opts.logger.info({ node: session.node }, 'token expired, reconnecting with a new one');
      return this.scheduleReconnect(0);
    }
    if (info.code === CloseCode.UNAUTHORIZED || info.httpStatus === 401) {
      const err = new ChatError('UNAUTHORIZED', 'the node refused the token', {
        closeCode: info.code,
        httpStatus: info.httpStatus,
      });
      if (typeof this.opts.token === 'string') return this.shutdown(err, true);
      this.events.emit('error', err);
      return this.scheduleReconnect(0);
    }
    if (info.code === CloseCode.DEVICE_LIMIT) {
      const message = session.lastError?.message ?? 'device limit reached';
      return this.shutdown(new ChatError('LIMIT', message, { closeCode: info.code }), true);
    }
    if (info.code === CloseCode.REPLACED) {
      return this.shutdown(
        new ConnectionError('replaced by a newer connection of this device', info.code),
        true,
      );
    }
    if (info.httpStatus === 403) {
      return this.shutdown(
        new ConnectionError('the node refused the upgrade (403)', info.code, 403),
        true,
      );
    }
    this.scheduleReconnect(info.retryAfterMs ?? 0);
  }

  /** Releases everything tied to the current session and its acks. */
  private dropSession(session: Session): void {
    this.releaseSession(session);
    this.clearTimer('ackTimer');
    this.acks.resetConnection();
  }

  /**
   * Releases a connection's timers and what it carried: sends go out again on the next one,
   * resendable requests wait for it, others reject.
   */
  private releaseSession(session: Session): void {
    const { clock } = this.opts;
    if (session.liveness !== undefined) clock.clearTimeout(session.liveness);
    if (session.sync !== undefined) clock.clearTimeout(session.sync.timer);
    session.sync = undefined;
    for (const id of session.inFlight) {
      const timer = this.sendTimers.get(id);
      if (timer !== undefined) clock.clearTimeout(timer);
      this.sendTimers.delete(id);
      if (this.outbox.owns(id)) {
        this.outbox.lost(id);
        continue;
      }
      const pending = this.requests.get(id);
      if (pending === undefined) continue;
      this.requests.delete(id);
      pending.id = undefined;
      if (RESENDABLE.has(pending.body.t)) {
        this.waiting.push(pending);
      } else {
        clock.clearTimeout(pending.timer);
        pending.reject(
          new ChatError('UNAVAILABLE', `connection lost before the reply to ${pending.body.t}`),
        );
      }
    }
    session.inFlight.clear();
  }

  /** Stops for good: no reconnect, everything pending rejects with `err`. */
  private shutdown(err: Error, emit: boolean): void {
    if (this.stopped) return;
    this.stopped = true;
    this.attemptGen += 1;
    for (const name of ['reconnectTimer', 'ackTimer', 'outboxTimer'] as const)
      this.clearTimer(name);
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
    for (const pending of this.waiting) {
      this.opts.clock.clearTimeout(pending.timer);
      pending.reject(err);
    }
    this.waiting = [];
    this.outbox.rejectAll(err);
    const waiters = this.readyWaiters;
    this.readyWaiters = [];
    for (const w of waiters) w.reject(err);
    if (emit) {
      this.opts.logger.warn({ err }, 'chat client stopped');
      this.events.emit('error', err);
    }
    this.setState('closed', null);
  }

  // ---- delivery and acks ----

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

  /** Acks go to every welcomed connection: during a move the old node pushes too. */
  private flushAck(force: boolean): void {
    const targets = [this.leaving?.session, this.session].filter(
      (s): s is Session => s?.welcomed === true && s.socket.isOpen,
    );
    if (targets.length === 0) return;
    const seq = this.acks.take(this.seqs.lastContiguous, force);
    if (seq === undefined) return;
    for (const session of targets) this.sendOn(session, { t: 'ack', seq });
  }

  // ---- plumbing ----

  private sendOn(session: Session | undefined, frame: ClientFrame): void {
    if (session === undefined || !session.socket.isOpen) return;
    session.socket.send(this.codec.encode(frame));
  }

  private setState(status: ConnectionStatus, node: string | null): void {
    this.settled = Object.freeze({ status, node });
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
    if (cur.status === next.status && cur.node === next.node && cur.movingTo === next.movingTo)
      return;
    this.current = next;
    this.events.emit('state', this.current);
  }

  private clearTimer(name: 'reconnectTimer' | 'ackTimer' | 'outboxTimer'): void {
    const handle = this[name];
    if (handle !== undefined) this.opts.clock.clearTimeout(handle);
    this[name] = undefined;
  }
}

function toChatError(err: ErrFrame): ChatError {
  return new ChatError(err.code as ErrorCode, err.message ?? err.code);
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}
