/**
 * Every frame of wire protocol v1 (docs/protocol.md) as a discriminated union on `t`.
 * Ids of chats and messages are opaque strings; user and device ids match ID_PATTERN.
 */
import type { ErrorCode } from './errors';

export interface AttachmentRef {
  readonly key: string;
  readonly mime: string;
  readonly size: number;
}

// ---- client -> server: requests (carry `id`, answered by ok or err) ----

export interface CreateChatRequest {
  t: 'createChat';
  id: number;
  members: string[];
  name?: string;
}
export interface AddMembersRequest {
  t: 'addMembers';
  id: number;
  chatId: string;
  members: string[];
  /** Also makes every listed user an admin (members already in the chat are promoted). */
  admin?: true;
}
export interface RemoveMembersRequest {
  t: 'removeMembers';
  id: number;
  chatId: string;
  members: string[];
}
export interface ListChatsRequest {
  t: 'listChats';
  id: number;
  /** Only chats whose `activeAt` is below this (ms): pass the last `activeAt` of the previous page. */
  before?: number;
  /** Most chats in the reply (default and maximum 100). */
  limit?: number;
}
export interface SendRequest {
  t: 'send';
  id: number;
  chatId: string;
  clientMsgId: string;
  body?: string;
  attachments?: AttachmentRef[];
}
export interface SyncRequest {
  t: 'sync';
  id: number;
  after: number;
  limit?: number;
}
export interface ReadRequest {
  t: 'read';
  id: number;
  chatId: string;
  messageId: string;
}
export interface LastSeenRequest {
  t: 'lastSeen';
  id: number;
  user: string;
}
/**
 * Who may see the caller's last seen time and online status (issue 16): `everyone` who asks,
 * `contacts` (the default: users who share a chat with them), or `nobody`.
 */
export type LastSeenVisibility = 'everyone' | 'contacts' | 'nobody';

/**
 * Blocks a user (issue 16): they can no longer create a chat with the caller, add the caller
 * to a chat, send in a one-to-one chat with the caller, or see the caller's last seen.
 */
export interface BlockRequest {
  t: 'block';
  id: number;
  user: string;
}
export interface UnblockRequest {
  t: 'unblock';
  id: number;
  user: string;
}
/** The users the caller blocked. */
export interface ListBlockedRequest {
  t: 'listBlocked';
  id: number;
}
/** Reads the caller's privacy settings, changing those given first. */
export interface PrivacyRequest {
  t: 'privacy';
  id: number;
  lastSeen?: LastSeenVisibility;
}
/**
 * Where the calling device is reached by push notifications while it is not connected (issue
 * 18): an APNs device token (with the app's bundle id as topic, and which APNs environment
 * issued it), an FCM registration token, or a Web Push subscription (`PushSubscription.toJSON()`:
 * an https endpoint, the P-256 key `p256dh` and the 16-byte `auth` secret, both base64url).
 */
export type PushTargetSpec =
  | { kind: 'apns'; token: string; topic: string; environment: 'sandbox' | 'production' }
  | { kind: 'fcm'; token: string }
  | { kind: 'webpush'; endpoint: string; keys: { p256dh: string; auth: string } };

/** Registers the calling device's push target, replacing the one it had (one per device). */
export interface PushRegisterRequest {
  t: 'pushRegister';
  id: number;
  target: PushTargetSpec;
}
/** Removes the calling device's push target (nothing happens when it has none). */
export interface PushRemoveRequest {
  t: 'pushRemove';
  id: number;
}
/**
 * Reads the caller's push settings, changing those given first. `previews`: notifications say
 * who wrote ("New message from ada"); false (the default) keeps them content-free. Message
 * bodies are never sent through push.
 */
export interface PushSettingsRequest {
  t: 'pushSettings';
  id: number;
  previews?: boolean;
}
export interface UploadTargetRequest {
  t: 'uploadTarget';
  id: number;
  mime: string;
  size: number;
}
export interface DownloadUrlRequest {
  t: 'downloadUrl';
  id: number;
  key: string;
}

export type ClientRequest =
  | CreateChatRequest
  | AddMembersRequest
  | RemoveMembersRequest
  | ListChatsRequest
  | SendRequest
  | SyncRequest
  | ReadRequest
  | LastSeenRequest
  | BlockRequest
  | UnblockRequest
  | ListBlockedRequest
  | PrivacyRequest
  | UploadTargetRequest
  | DownloadUrlRequest
  | PushRegisterRequest
  | PushRemoveRequest
  | PushSettingsRequest;

export type RequestType = ClientRequest['t'];

// ---- client -> server: fire-and-forget ----

/** Cumulative: every event with seq <= `seq` is acknowledged by this device. */
export interface AckFrame {
  t: 'ack';
  seq: number;
}
export interface TypingFrame {
  t: 'typing';
  chatId: string;
}
export interface PongFrame {
  t: 'pong';
  seq: number;
}

export type ClientNotice = AckFrame | TypingFrame | PongFrame;
export type ClientFrame = ClientRequest | ClientNotice;

// ---- server -> client ----

export interface WelcomeFrame {
  t: 'welcome';
  user: string;
  device: string;
  node: string;
  epoch: number;
  /** The user's latest sequence number; 0 when the user has no events yet. */
  seq: number;
  heartbeatMs: number;
  /**
   * Present (true) when events this device never got are gone: it was away longer than the
   * retention period and the server had removed it (it starts fresh), or events past its acked
   * seq reached the retention period and were deleted. The oldest still available come by sync
   * as usual (sequence numbers stay the user's, with a gap).
   */
  reset?: true;
  /** The optional features (features.ts) the node applies to this connection; absent: none. */
  features?: string[];
  /**
   * The store epoch: an opaque string that changes when the database behind the nodes was
   * restored to an earlier state or failed over to a replica that may have lost writes. Sequence
   * numbers (and the events behind them) are only comparable within one epoch: a device that
   * synced under another epoch starts over with `sync {after: 0}` and recognises what it already
   * has by `(chatId, messageId)`, not by seq. Absent from nodes older than this field.
   */
  storeEpoch?: string;
}

export interface ChatSummary {
  chatId: string;
  name: string | null;
  members: string[];
  /** Members who may add and remove others. */
  admins?: string[];
  /** Time of the chat's latest message, null when it has none yet. */
  lastMessageAt?: number | null;
  /** The sort key of listChats: lastMessageAt, or the creation time of a chat without messages. */
  activeAt?: number;
}

/** An `ok` reply with no fields beside `t` and `id`. */
export type NoFields = Record<never, never>;

/** The fields of each request's `ok` reply, beside `t` and `id`. */
export interface OkFields {
  createChat: { chatId: string };
  addMembers: NoFields;
  removeMembers: NoFields;
  listChats: { chats: ChatSummary[]; more?: boolean };
  send: { messageId: string; ts: number; dup?: boolean };
  sync: { seq: number; more: boolean };
  read: NoFields;
  /**
   * `hidden`: the target does not show their last seen to the caller (their privacy setting,
   * or a block); `online` is then false and `lastSeen` null whatever they are.
   */
  lastSeen: { online: boolean; lastSeen: number | null; hidden?: boolean };
  block: NoFields;
  unblock: NoFields;
  /** Sorted by user id. */
  listBlocked: { users: string[] };
  privacy: { lastSeen: LastSeenVisibility };
  uploadTarget: { key: string; url: string; fields?: Record<string, string>; expiresAt: number };
  downloadUrl: { url: string; expiresAt: number };
  pushRegister: NoFields;
  pushRemove: NoFields;
  pushSettings: { previews: boolean };
}

export type OkFrame<T extends RequestType = RequestType> = { t: 'ok'; id: number } & OkFields[T];

export interface ErrFrame {
  t: 'err';
  /** Absent when the failing frame had no readable id. */
  id?: number;
  code: ErrorCode;
  message: string;
}

export interface MessageEvent {
  t: 'evt';
  seq: number;
  kind: 'message';
  chatId: string;
  messageId: string;
  from: string;
  body: string | null;
  attachments: AttachmentRef[];
  ts: number;
}
export interface ChatEvent {
  t: 'evt';
  seq: number;
  kind: 'chat';
  chatId: string;
  change: 'created' | 'membersAdded' | 'membersRemoved';
  members: string[];
  by: string;
  /** On membersAdded: the listed users are admins now (new members and promoted ones). */
  admin?: true;
  ts: number;
}
export interface ReceiptEvent {
  t: 'evt';
  seq: number;
  kind: 'receipt';
  chatId: string;
  messageId: string;
  user: string;
  status: 'delivered' | 'read';
  ts: number;
}
export type EventFrame = MessageEvent | ChatEvent | ReceiptEvent;

/** An event as stored in a user's inbox, before it gets its frame type. */
export type InboxEvent = Omit<MessageEvent, 't'> | Omit<ChatEvent, 't'> | Omit<ReceiptEvent, 't'>;

/**
 * How far one member of a chat got (receipts as watermarks): every message of the chat up to
 * `delivered` reached a device of `user`, every one up to `read` they read (message ids; either
 * may be absent). Pushed when they move, and right after `welcome` for those that moved while
 * the device was away. Values only grow: keep the greater of what you have and what arrives.
 */
export interface ReceiptsFrame {
  t: 'receipts';
  chatId: string;
  user: string;
  delivered?: string;
  read?: string;
}

export interface TypingNotice {
  t: 'typing';
  chatId: string;
  user: string;
}
export interface PingFrame {
  t: 'ping';
  seq: number;
}
export interface MovedFrame {
  t: 'moved';
  node: string;
  url: string;
  epoch: number;
  /**
   * Only to clients with the `overlap-moves` feature, when the node keeps this connection open
   * for the move: the node closes it with 4001 after this many ms unless the client closed it
   * first. Absent: the 4001 close follows at once.
   */
  closeInMs?: number;
}

export type ServerFrame =
  | WelcomeFrame
  | OkFrame
  | ErrFrame
  | EventFrame
  | ReceiptsFrame
  | TypingNotice
  | PingFrame
  | MovedFrame;
