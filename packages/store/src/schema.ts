/**
 * Kysely table types of the store (docs/architecture.md "Data model"). Times are bigint ms since
 * the epoch, like every `ts` on the wire. pg returns int8 columns as decimal strings; the store
 * converts them with Number() (sequence numbers and times stay far below 2^53) and keeps
 * message ids as the strings they are on the wire.
 */
import type { ColumnType } from 'kysely';
import type { LastSeenVisibility } from '@chat/protocol';

/** An int8 column: read as a decimal string, written as a number or a string. */
export type Int8 = ColumnType<string, number | string, number | string>;
/** An int8 column with a default. */
export type Int8Default = ColumnType<string, number | string | undefined, number | string>;

export interface UsersTable {
  id: string;
  /**
   * A floor of the user's next inbox sequence number. The next seq is the greatest of this,
   * the highest seq in the inbox + 1 and the highest device cursor + 1 (see user-step.ts), so
   * appending an event never writes this row; retention raises it when it deletes the events
   * and devices that held the latest seq.
   */
  next_seq: Int8Default;
  /**
   * The highest of the user's seqs that retention deleted by age (0: none): a device whose
   * cursor is below it missed events for good and is told `reset` (migration-expired-seq.ts).
   */
  expired_seq: Int8Default;
  last_seen: ColumnType<string | null, number | null | undefined, number | null>;
  /** Who may see last_seen and whether the user is online (issue 16; 'contacts' by default). */
  last_seen_visibility: ColumnType<
    LastSeenVisibility,
    LastSeenVisibility | undefined,
    LastSeenVisibility
  >;
}

/** The users `user_id` blocked, keyed by the blocker (issue 16). */
export interface UserBlocksTable {
  user_id: string;
  blocked_id: string;
  created_at: Int8;
}

export interface DevicesTable {
  user_id: string;
  device_id: string;
  /** Highest seq the device acknowledged (cumulative). */
  acked_seq: Int8Default;
  /** The user's latest seq when the device was first seen. */
  created_seq: Int8Default;
  last_active: Int8;
  /**
   * The device did not announce the `receipt-marks` feature: receipts reach it as `receipt`
   * inbox events, as protocol v1 had them.
   */
  receipt_events: ColumnType<boolean, boolean | undefined, boolean>;
}

export interface ChatsTable {
  id: string;
  name: string | null;
  created_by: string;
  created_at: Int8;
  /** Time of a recent message, written at most once a minute (listChats' activity order). */
  last_message_at: ColumnType<string | null, number | null | undefined, number | null>;
}

export interface ChatMembersTable {
  chat_id: string;
  user_id: string;
  joined_at: Int8;
  /** May add and remove others; the creator is one from the start. */
  is_admin: ColumnType<boolean, boolean | undefined, boolean>;
  /** Highest message id this member marked read (0: none). */
  read_upto: Int8Default;
  /** Highest message id that reached a device of this member (0: none); read implies it. */
  delivered_upto: Int8Default;
  /**
   * Members of the chat who blocked this member, as marked by block-marks.ts (issue 16): in a
   * chat of two, the member cannot send while the other is listed here. May name former
   * members; only current ones count.
   */
  blocked_by: ColumnType<string[], string[] | undefined, string[]>;
}

/** "My chats": the chats of a user, keyed by user (written by the user step of chat events). */
export interface UserChatsTable {
  user_id: string;
  chat_id: string;
  joined_at: Int8;
}

/** The receipt watermarks of `reader` in a chat, as the user `user_id` is to be told them. */
export interface ReceiptMarksTable {
  user_id: string;
  chat_id: string;
  reader: string;
  delivered_upto: Int8Default;
  read_upto: Int8Default;
  updated_at: Int8;
}

/**
 * Each node's fan-out promise: every message it stored with created_at below `upto` is in its
 * recipients' inboxes. A sweeper finishes the rest for a node that stopped heartbeating, and
 * sets `swept_upto` so that the node itself, should it wake up, leaves those alone.
 */
export interface FanoutMarksTable {
  node_id: string;
  upto: Int8;
  heartbeat_at: Int8;
  swept_upto: ColumnType<string | null, number | null | undefined, number | null>;
}

export type MessageKind = 'message' | 'chat';

/**
 * Messages and chat changes of a chat, keyed by chat. Ids are ordered within the chat (the
 * chat row is locked while they are assigned) and never reused: each is at least its
 * created_at in ms times 1000, and above the chat's previous one.
 */
export interface MessagesTable {
  id: ColumnType<string, number | string, never>;
  chat_id: string;
  kind: ColumnType<MessageKind, MessageKind | undefined, MessageKind>;
  sender_id: string;
  /** Null for chat changes. */
  client_msg_id: string | null;
  body: string | null;
  /** JSON array of AttachmentRef. */
  attachments: ColumnType<unknown, string, string>;
  created_at: Int8;
  /**
   * Set by retention when the message reached every device: body and attachments are gone
   * (null, []) and the row only keeps what read receipts need, until every recipient read it or
   * the retention period ends.
   */
  content_removed_at: ColumnType<string | null, number | null | undefined, number | null>;
  /** A chat change's fields (change, members, by, admin). */
  payload: ColumnType<unknown, string | null | undefined, string | null>;
  /** A chat change's recipients (members before and after). */
  recipients: string[] | null;
  /** The node that stored it and owes its fan-out (see FanoutMarksTable). */
  origin: string | null;
}

/** `receipt`: rows written before receipts became watermarks (migration 0007). */
export type InboxKind = 'message' | 'chat' | 'receipt';

/**
 * A user's events, keyed by user. Self-contained: a message event carries its sender, body and
 * attachments, so sync reads nothing else (the message row lives in another shard on Citus).
 */
export interface InboxTable {
  user_id: string;
  seq: Int8;
  kind: InboxKind;
  chat_id: string;
  /** The message or chat change (messages.id within chat_id). */
  message_id: ColumnType<string | null, number | string | null | undefined, number | string | null>;
  sender_id: string | null;
  body: string | null;
  attachments: ColumnType<unknown, string | undefined, string>;
  /** The event's own fields for chat and receipt events (JSON object). */
  payload: ColumnType<unknown, string | null | undefined, string | null>;
  created_at: Int8;
}

export interface Database {
  users: UsersTable;
  devices: DevicesTable;
  chats: ChatsTable;
  chat_members: ChatMembersTable;
  messages: MessagesTable;
  inbox: InboxTable;
  user_chats: UserChatsTable;
  user_blocks: UserBlocksTable;
  receipt_marks: ReceiptMarksTable;
  fanout_marks: FanoutMarksTable;
}
