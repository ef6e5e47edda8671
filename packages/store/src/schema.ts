/**
 * Kysely table types of the store (DESIGN.md section 8). Times are bigint milliseconds since
 * the epoch, like every `ts` on the wire. pg returns int8 columns as decimal strings; the store
 * converts them with Number() (sequence numbers and times stay far below 2^53) and keeps
 * message ids as the strings they are on the wire.
 */
import type { ColumnType } from 'kysely';

/** An int8 column: read as a decimal string, written as a number or a string. */
export type Int8 = ColumnType<string, number | string, number | string>;
/** An int8 column with a default. */
export type Int8Default = ColumnType<string, number | string | undefined, number | string>;

export interface UsersTable {
  id: string;
  /** The user's next inbox sequence number; the latest is next_seq - 1. */
  next_seq: Int8Default;
  last_seen: ColumnType<string | null, number | null | undefined, number | null>;
}

export interface DevicesTable {
  user_id: string;
  device_id: string;
  /** Highest seq the device acknowledged (cumulative). */
  acked_seq: Int8Default;
  /** The user's latest seq when the device was first seen. */
  created_seq: Int8Default;
  last_active: Int8;
}

export interface ChatsTable {
  id: string;
  name: string | null;
  created_by: string;
  created_at: Int8;
}

export interface ChatMembersTable {
  chat_id: string;
  user_id: string;
  joined_at: Int8;
  /** May add and remove others; the creator is one from the start. */
  is_admin: ColumnType<boolean, boolean | undefined, boolean>;
  /** Highest message id this member marked read (0: none). */
  read_upto: Int8Default;
}

export interface MessagesTable {
  id: ColumnType<string, never, never>;
  chat_id: string;
  sender_id: string;
  client_msg_id: string;
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
}

export type InboxKind = 'message' | 'chat' | 'receipt';

export interface InboxTable {
  user_id: string;
  seq: Int8;
  kind: InboxKind;
  chat_id: string;
  /** Set for message and receipt events; message events join messages for their content. */
  message_id: ColumnType<string | null, number | string | null | undefined, number | string | null>;
  /** The event's own fields for chat and receipt events (JSON object). */
  payload: ColumnType<unknown, string | null | undefined, string | null>;
  created_at: Int8;
}

export interface ReceiptsTable {
  message_id: Int8;
  user_id: string;
  delivered_at: ColumnType<string | null, number | null | undefined, number | null>;
  read_at: ColumnType<string | null, number | null | undefined, number | null>;
}

export interface Database {
  users: UsersTable;
  devices: DevicesTable;
  chats: ChatsTable;
  chat_members: ChatMembersTable;
  messages: MessagesTable;
  inbox: InboxTable;
  receipts: ReceiptsTable;
}
