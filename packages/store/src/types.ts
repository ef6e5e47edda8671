/**
 * The store's contract with the chat node. Every method runs against Postgres; a failure to
 * reach it surfaces as ChatError('UNAVAILABLE'), a rule violation as the matching ChatError
 * (NOT_FOUND, NOT_MEMBER, LIMIT, BAD_REQUEST), anything unexpected as ChatError('INTERNAL').
 */
import type { AttachmentRef, InboxEvent } from '@chat/protocol';

/** One inbox event that was just committed for one user: the node pushes it to their devices. */
export interface Delivery {
  readonly userId: string;
  readonly event: InboxEvent;
}

export interface DeviceState {
  /** The user's latest sequence number (0 when the user has no events yet). */
  readonly latestSeq: number;
  /** Highest seq this device has acked (0 for a new device). */
  readonly ackedSeq: number;
  /** True when this call created the device row. */
  readonly created: boolean;
  /**
   * True when events this device never got are gone: retention removed the device (away longer
   * than the retention period) and it starts fresh, or deleted by age events past its cursor
   * (told on every connect until it acks past them). Absent otherwise.
   */
  readonly reset?: true;
  /** Receipt watermarks that changed in the user's chats while this device was away. */
  readonly receipts: readonly ReceiptMark[];
}

/**
 * How far `reader` got in a chat: every message up to `delivered` reached one of their devices,
 * every one up to `read` they read (message ids; null: none).
 */
export interface ReceiptMark {
  readonly chatId: string;
  readonly reader: string;
  readonly delivered: string | null;
  readonly read: string | null;
}

/** A device's ack: every event up to `seq` has reached it. */
export interface DeviceCursor {
  readonly userId: string;
  readonly deviceId: string;
  readonly seq: number;
}

export interface SendInput {
  readonly senderId: string;
  readonly chatId: string;
  readonly clientMsgId: string;
  readonly body: string | null;
  readonly attachments: readonly AttachmentRef[];
  /** Server receive time, ms since the epoch: becomes the message's ts. */
  readonly now: number;
  /**
   * The sending device: the sender's own inbox gets a copy only when they have another device
   * (the sending one has the message from its `ok`).
   */
  readonly deviceId?: string;
}

/** Resolved once the message is durable (the chat step committed); its fan-out follows. */
export interface SendResult {
  readonly messageId: string;
  readonly ts: number;
  /** True when (chat, sender, clientMsgId) was stored before: nothing new was written. */
  readonly dup: boolean;
}

/** Resolved once the change is durable; its `chat` events follow like a message's. */
export interface MembershipResult {
  readonly chatId: string;
}

export interface SyncPage {
  /** Events with seq > after, ascending, at most `limit`. */
  readonly events: readonly InboxEvent[];
  /** The user's latest sequence number. */
  readonly latestSeq: number;
  /** True when events after the last returned one remain. */
  readonly more: boolean;
}

/** What a device announced when it connected. */
export interface DeviceOptions {
  /**
   * It takes receipts as `receipt` inbox events (protocol v1, the default) rather than only as
   * `receipts` frames (feature `receipt-marks`).
   */
  readonly receiptEvents?: boolean;
  /**
   * The device is connected to another node and moving here (an open ring transition): if it
   * is registered, recently active and unchanged, its state is read without writing anything.
   * Otherwise it is registered as usual.
   */
  readonly moving?: boolean;
}

export interface ChatStore {
  /**
   * Makes sure the user and the device exist (users are implicit) and returns the device's
   * cursor. Updates the device's last_active.
   */
  connectDevice(
    userId: string,
    deviceId: string,
    now: number,
    options?: DeviceOptions,
  ): Promise<DeviceState>;
  /**
   * Moves device cursors forward (never backwards) in one statement, refreshes the devices'
   * last_active, and deletes the users' inbox events that every device of theirs has acked.
   * The node calls it lazily (every few seconds, on disconnect, at shutdown); the caller keeps
   * cursors at or below the user's latest seq.
   */
  writeCursors(cursors: readonly DeviceCursor[], now: number): Promise<void>;
  /** The user's latest sequence number, 0 when none. */
  latestSeq(userId: string): Promise<number>;
  /** Latest sequence numbers of many users in one query (unknown users are left out). */
  latestSeqs(userIds: readonly string[]): Promise<Map<string, number>>;

  /** Creates a chat of creator + members (deduplicated); LIMIT past maxMembersPerChat. */
  createChat(
    creatorId: string,
    members: readonly string[],
    name: string | null,
    now: number,
  ): Promise<MembershipResult>;

  /**
   * Stores a message (the chat step, in a statement shared with other concurrent sends) and
   * resolves once it is durable; its events are then appended to the members' inboxes and
   * handed to the `onDeliveries` listeners. NOT_FOUND for an unknown chat, NOT_MEMBER when the
   * sender is not a member (nothing written in either case).
   */
  send(input: SendInput): Promise<SendResult>;

  /** Listens to committed inbox events (for pushing to devices); returns a disposer. */
  onDeliveries(listener: (deliveries: readonly Delivery[]) => void): () => void;

  sync(userId: string, after: number, limit: number): Promise<SyncPage>;

  /**
   * The database was restored or failed over (its store epoch changed, store-epoch.ts): the
   * store makes good what that database lost of this node's own work.
   */
  storeEpochChanged?(): void;

  /** Waits (a bounded time) for in-flight batches and fan-out, then closes the pool. */
  close(): Promise<void>;
}
