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
   * True when the device had been removed by retention (away longer than the retention
   * period) and starts fresh: events it never got may be gone. Absent otherwise.
   */
  readonly reset?: true;
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
}

export interface SendResult {
  readonly messageId: string;
  readonly ts: number;
  /** True when (senderId, clientMsgId) was stored before: nothing new was written. */
  readonly dup: boolean;
  /** The committed inbox events, one per member (sender included); empty when dup. */
  readonly deliveries: readonly Delivery[];
}

export interface MembershipResult {
  readonly chatId: string;
  /** The `chat` events committed for every member (and, on removal, every removed member). */
  readonly deliveries: readonly Delivery[];
}

export interface SyncPage {
  /** Events with seq > after, ascending, at most `limit`. */
  readonly events: readonly InboxEvent[];
  /** The user's latest sequence number. */
  readonly latestSeq: number;
  /** True when events after the last returned one remain. */
  readonly more: boolean;
}

export interface ChatStore {
  /**
   * Makes sure the user and the device exist (users are implicit) and returns the device's
   * cursor. Updates the device's last_active.
   */
  connectDevice(userId: string, deviceId: string, now: number): Promise<DeviceState>;
  /**
   * Moves the device's cursor forward to `seq` (never backwards, never past the user's latest
   * seq) and deletes the user's inbox events that every device of the user has acked.
   */
  ack(userId: string, deviceId: string, seq: number): Promise<void>;
  /** `ack` for many devices in one statement (the node flushes coalesced acks with it). */
  ackMany(cursors: readonly DeviceCursor[], now?: number): Promise<void>;
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
   * Stores a message and one inbox event per member, in a transaction shared with other
   * concurrent sends (group commit). Resolves only after the commit. NOT_FOUND for an unknown
   * chat, NOT_MEMBER when the sender is not a member (nothing written in either case).
   */
  send(input: SendInput): Promise<SendResult>;

  sync(userId: string, after: number, limit: number): Promise<SyncPage>;

  /** Waits for in-flight batches, then closes the pool. */
  close(): Promise<void>;
}
