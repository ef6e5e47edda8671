/**
 * ChatClient: the public face of the SDK. It composes the connection lifecycle (Connection),
 * the inbox (InboxSync: in-order delivery, sync, acks) and the request dispatch (requests and
 * the outbox), and turns the app's calls into requests.
 */
import { ChatError, jsonCodec, msgpackCodec } from '@chat/protocol';
import type {
  AttachmentRef,
  ChatSummary,
  LastSeenVisibility,
  OkFields,
  PushTargetSpec,
} from '@chat/protocol';
import type { ChatClientEvents, ConnectionState } from './client-events';
import { Connection } from './connection';
import { ConnectionError } from './errors';
import { randomId } from './ids';
import { InboxSync } from './inbox-sync';
import type { UploadData } from './media';
import { postUpload, toBlob } from './media';
import type { ChatClientOptions, ResolvedOptions } from './options';
import { resolveOptions } from './options';
import type { SendResult } from './outbox';
import type { RequestBody, RequestFields } from './request-dispatch';
import { RequestDispatch } from './request-dispatch';
import { frameSender, requestIds } from './session';
import type { Disposer, Listener } from './typed-events';
import { TypedEvents } from './typed-events';

export interface SendOptions {
  /** Idempotency key, at most 64 characters; generated when absent. */
  readonly clientMsgId?: string;
  readonly attachments?: readonly AttachmentRef[];
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
  private readonly events: TypedEvents<ChatClientEvents>;
  private readonly inbox: InboxSync;
  private readonly dispatch: RequestDispatch;
  private readonly connection: Connection;
  private started = false;

  constructor(options: ChatClientOptions) {
    this.opts = resolveOptions(options);
    const codec = this.opts.codec === 'msgpack' ? msgpackCodec : jsonCodec;
    this.events = new TypedEvents((err, event) =>
      this.opts.logger.error({ err, event }, 'chat client listener threw'),
    );
    const sendOn = frameSender(codec);
    const nextId = requestIds();
    // The inbox and the dispatch reach the connection only through these hooks, called once
    // the client runs (the connection is built last, from them).
    this.inbox = new InboxSync(this.opts, this.events, sendOn, nextId, {
      ackTargets: () => this.connection.ackTargets(),
      lost: (session, info) => this.connection.onClose(session, info),
      synced: (session) => this.connection.synced(session),
    });
    this.dispatch = new RequestDispatch(this.opts, this.events, sendOn, nextId, {
      wire: () => this.connection.wire(),
      stopped: () => this.connection.stopped,
    });
    this.connection = new Connection(
      this.opts,
      codec,
      this.events,
      sendOn,
      this.inbox,
      this.dispatch,
    );
  }

  /** Last contiguous seq handed to the app: persist it and pass it as `lastSeq` next time. */
  get lastSeq(): number {
    return this.inbox.lastSeq;
  }

  /**
   * The store epoch `lastSeq` belongs to (from `welcome`; undefined until then unless given in
   * the options): persist it with `lastSeq` and pass both back.
   */
  get storeEpoch(): string | undefined {
    return this.inbox.storeEpoch;
  }

  get state(): ConnectionState {
    return this.connection.state;
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
    if (this.connection.stopped) return Promise.reject(new ConnectionError('client is closed'));
    const ready = this.connection.whenReady();
    if (!this.started) {
      this.started = true;
      void this.dispatch.restore();
      this.connection.start();
    }
    return ready;
  }

  /** Closes for good: no reconnect; pending requests and sends reject. */
  close(): Promise<void> {
    return this.connection.close();
  }

  // ---- requests ----

  /** Creates a chat with the given members (the caller is added by the node). */
  async createChat(members: string[], name?: string): Promise<{ chatId: string }> {
    const reply = await this.dispatch.request(
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
    await this.dispatch.request(
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
    await this.dispatch.request('removeMembers', { chatId, members });
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
    const reply = await this.dispatch.request('listChats', fields);
    return { chats: reply.chats, more: reply.more === true };
  }

  /**
   * Marks a message, and every earlier one of the chat, read: the other members get a
   * `receipts` event with the caller's new `read` watermark.
   */
  async read(chatId: string, messageId: string): Promise<void> {
    await this.dispatch.request('read', { chatId, messageId });
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
    const reply = await this.dispatch.request('lastSeen', { user });
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
    await this.dispatch.request('block', { user });
  }

  async unblock(user: string): Promise<void> {
    await this.dispatch.request('unblock', { user });
  }

  /** The users the caller blocked, sorted. */
  async blockedUsers(): Promise<string[]> {
    return (await this.dispatch.request('listBlocked', {})).users;
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
    const reply = await this.dispatch.request(
      'privacy',
      changes.lastSeen === undefined ? {} : { lastSeen: changes.lastSeen },
    );
    return { lastSeen: reply.lastSeen };
  }

  /**
   * Registers where this device is reached by push while it is not connected, replacing what it
   * registered before: an APNs token, an FCM token, or a Web Push subscription.
   *
   * @example
   * const sub = await registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey });
   * const { endpoint, keys } = sub.toJSON();
   * await client.registerPush({ kind: 'webpush', endpoint, keys });
   */
  async registerPush(target: PushTargetSpec): Promise<void> {
    await this.dispatch.request('pushRegister', { target });
  }

  /** Stops push notifications to this device (signing out of it, for example). */
  async removePush(): Promise<void> {
    await this.dispatch.request('pushRemove', {});
  }

  /**
   * Reads the caller's push settings, changing those given first. `previews`: notifications say
   * who wrote; off by default (content-free: only that something arrived, and the badge).
   *
   * @example
   * await client.pushSettings({ previews: true }); // { previews: true }
   */
  async pushSettings(
    changes: { readonly previews?: boolean } = {},
  ): Promise<{ previews: boolean }> {
    const reply = await this.dispatch.request(
      'pushSettings',
      changes.previews === undefined ? {} : { previews: changes.previews },
    );
    return { previews: reply.previews };
  }

  async uploadTarget(mime: string, size: number): Promise<OkFields['uploadTarget']> {
    const { key, url, fields, expiresAt } = await this.dispatch.request('uploadTarget', {
      mime,
      size,
    });
    return fields === undefined ? { key, url, expiresAt } : { key, url, fields, expiresAt };
  }

  async downloadUrl(key: string): Promise<OkFields['downloadUrl']> {
    const { url, expiresAt } = await this.dispatch.request('downloadUrl', { key });
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
    this.dispatch.notify({ t: 'typing', chatId });
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
    if (this.connection.stopped) return Promise.reject(new ConnectionError('client is closed'));
    const clientMsgId = opts.clientMsgId ?? randomId(this.opts.random);
    if (clientMsgId.length === 0 || clientMsgId.length > 64) {
      return Promise.reject(new ChatError('BAD_REQUEST', 'clientMsgId must be 1-64 characters'));
    }
    const frame: RequestBody<'send'> = { t: 'send', chatId, clientMsgId };
    if (body !== undefined) frame.body = body;
    if (opts.attachments !== undefined) frame.attachments = opts.attachments.map((a) => ({ ...a }));
    return this.dispatch.send(frame);
  }
}
