/**
 * What the chat page knows, as plain data: chats, the latest messages of each, each member's
 * receipt watermarks and the last inbox seq. The server keeps no history for a device that has
 * it already (messages are removed once delivered), so this state is the device's copy and is
 * saved locally. Pure: no DOM, no storage, no clock; the page applies events and renders what
 * this answers.
 */
import { compareMessageIds } from '@chat/protocol';
import type { AttachmentRef, ChatSummary, EventFrame, ReceiptsFrame } from '@chat/protocol';

/** One message as the page shows it. `messageId` is absent while the send is unconfirmed. */
export interface StoredMessage {
  readonly chatId: string;
  readonly messageId?: string;
  readonly clientMsgId?: string;
  readonly from: string;
  readonly body: string | null;
  readonly attachments: readonly AttachmentRef[];
  readonly ts: number;
  /** The send failed for good (e.g. the user was removed from the chat). */
  readonly failed?: boolean;
}

export interface StoredChat {
  readonly chatId: string;
  readonly name: string | null;
  readonly members: readonly string[];
  readonly lastMessageAt: number | null;
  readonly unread: number;
  /** This user was removed from the chat. */
  readonly left: boolean;
}

/**
 * How far one member got in a chat: every message up to `delivered` reached one of their
 * devices, every one up to `read` they read (message ids, null: none yet).
 */
export interface Watermarks {
  readonly delivered: string | null;
  readonly read: string | null;
}

/**
 * Ticks of an own message: `pending` until the server confirmed the send, `sent` once stored,
 * `delivered` once every other member has it on a device, `read` once every other member read it.
 */
export type Ticks = 'pending' | 'failed' | 'sent' | 'delivered' | 'read';

export interface SavedState {
  readonly version: 2;
  readonly lastSeq: number;
  readonly chats: readonly StoredChat[];
  readonly messages: Readonly<Record<string, readonly StoredMessage[]>>;
  /** Chat id -> member -> their watermarks. */
  readonly marks: Readonly<Record<string, Readonly<Record<string, Watermarks>>>>;
}

/** What a page saved before receipts became watermarks: a receipt per message. */
export interface SavedStateV1 extends Omit<SavedState, 'version' | 'marks'> {
  readonly version: 1;
  readonly receipts: Readonly<
    Record<string, { readonly delivered: readonly string[]; readonly read: readonly string[] }>
  >;
}

/** Messages kept per chat; older ones are dropped from the device copy. */
export const MESSAGES_PER_CHAT = 200;

export class ChatModel {
  private readonly chats = new Map<string, StoredChat>();
  private readonly messages = new Map<string, StoredMessage[]>();
  /** Chat id -> member -> watermarks. */
  private readonly marks = new Map<string, Map<string, Watermarks>>();
  private seq = 0;

  constructor(
    readonly me: string,
    saved?: SavedState | SavedStateV1,
  ) {
    if (saved === undefined) return;
    this.seq = saved.lastSeq;
    for (const chat of saved.chats) this.chats.set(chat.chatId, chat);
    for (const [chatId, list] of Object.entries(saved.messages)) {
      this.messages.set(chatId, [...list]);
    }
    if (saved.version === 2) {
      for (const [chatId, members] of Object.entries(saved.marks)) {
        this.marks.set(chatId, new Map(Object.entries(members)));
      }
      return;
    }
    // A per-message receipt of an old copy is a watermark at that message.
    for (const list of this.messages.values()) {
      for (const m of list) {
        const r = m.messageId === undefined ? undefined : saved.receipts[m.messageId];
        if (r === undefined || m.messageId === undefined) continue;
        for (const user of r.delivered) this.raise(m.chatId, user, m.messageId, null);
        for (const user of r.read) this.raise(m.chatId, user, m.messageId, m.messageId);
      }
    }
  }

  /** Seq of the last event applied (what the client resumes from). */
  get lastSeq(): number {
    return this.seq;
  }

  /** Chats, most recently active first. */
  chatList(): StoredChat[] {
    return [...this.chats.values()].sort(
      (a, b) => (b.lastMessageAt ?? 0) - (a.lastMessageAt ?? 0) || (a.chatId < b.chatId ? -1 : 1),
    );
  }

  chat(chatId: string): StoredChat | undefined {
    return this.chats.get(chatId);
  }

  messagesOf(chatId: string): readonly StoredMessage[] {
    return this.messages.get(chatId) ?? [];
  }

  /** A chat's name, or the other members' ids for an unnamed one. */
  title(chat: StoredChat): string {
    if (chat.name !== null && chat.name !== '') return chat.name;
    const others = chat.members.filter((m) => m !== this.me);
    return others.length > 0 ? others.join(', ') : this.me;
  }

  /** The other member of a two-person chat (whose presence the page shows), else undefined. */
  peerOf(chatId: string): string | undefined {
    const chat = this.chats.get(chatId);
    if (chat === undefined || chat.members.length !== 2) return undefined;
    return chat.members.find((m) => m !== this.me);
  }

  /** Applies one inbox event; events at or below `lastSeq` were applied before and are skipped. */
  apply(evt: EventFrame, openChatId: string | undefined): void {
    if (evt.seq <= this.seq) return;
    this.seq = evt.seq;
    switch (evt.kind) {
      case 'message':
        this.addMessage(
          {
            chatId: evt.chatId,
            messageId: evt.messageId,
            from: evt.from,
            body: evt.body,
            attachments: evt.attachments,
            ts: evt.ts,
          },
          evt.from !== this.me && evt.chatId !== openChatId,
        );
        return;
      case 'chat':
        this.applyChatChange(evt.chatId, evt.change, evt.members, evt.ts);
        return;
      case 'receipt':
        // Written by servers before receipts became watermarks; one message each.
        this.raise(
          evt.chatId,
          evt.user,
          evt.messageId,
          evt.status === 'read' ? evt.messageId : null,
        );
        return;
    }
  }

  /** A member's watermarks moved (or were re-sent after a welcome): keep the greater. */
  applyReceipts(frame: ReceiptsFrame): void {
    this.raise(frame.chatId, frame.user, frame.delivered ?? null, frame.read ?? null);
  }

  /** Takes the server's view of chats (names, members) without losing local unread counts. */
  mergeSummaries(summaries: readonly ChatSummary[]): void {
    for (const s of summaries) {
      const known = this.chats.get(s.chatId);
      this.chats.set(s.chatId, {
        chatId: s.chatId,
        name: s.name,
        members: [...s.members],
        lastMessageAt: Math.max(known?.lastMessageAt ?? 0, s.lastMessageAt ?? s.activeAt ?? 0),
        unread: known?.unread ?? 0,
        left: !s.members.includes(this.me),
      });
    }
  }

  /** Shows an own message at once, before the server confirmed it. */
  addPending(
    chatId: string,
    clientMsgId: string,
    body: string | null,
    attachments: readonly AttachmentRef[],
    ts: number,
  ): void {
    this.addMessage({ chatId, clientMsgId, from: this.me, body, attachments, ts }, false);
  }

  /** The send was stored as `messageId`; its inbox event may have arrived already. */
  confirmSent(chatId: string, clientMsgId: string, messageId: string, ts: number): void {
    const list = this.messages.get(chatId);
    const pending = list?.findIndex((m) => m.clientMsgId === clientMsgId) ?? -1;
    if (list === undefined || pending < 0) return;
    const [sent] = list.splice(pending, 1) as [StoredMessage];
    if (list.some((m) => m.messageId === messageId)) return;
    // The server's time replaces the device's: the message may move to its place among others.
    this.insertInOrder(list, { ...sent, messageId, ts });
  }

  /** Own messages not confirmed yet (a reload lost the SDK's outbox: send them again). */
  unconfirmed(): StoredMessage[] {
    return [...this.messages.values()].flatMap((list) =>
      list.filter((m) => m.messageId === undefined && m.failed !== true),
    );
  }

  failSend(chatId: string, clientMsgId: string): void {
    const list = this.messages.get(chatId);
    const i = list?.findIndex((m) => m.clientMsgId === clientMsgId) ?? -1;
    if (list !== undefined && i >= 0) list[i] = { ...(list[i] as StoredMessage), failed: true };
  }

  /** Ticks of an own message, by the watermarks of the chat's other members. */
  ticks(msg: StoredMessage): Ticks {
    if (msg.failed === true) return 'failed';
    if (msg.messageId === undefined) return 'pending';
    const id = msg.messageId;
    const others = (this.chats.get(msg.chatId)?.members ?? []).filter((m) => m !== this.me);
    if (others.length === 0) return 'sent';
    const marks = others.map((m) => this.marksOf(msg.chatId, m));
    if (marks.every((w) => covers(w.read, id))) return 'read';
    if (marks.every((w) => covers(w.delivered, id) || covers(w.read, id))) return 'delivered';
    return 'sent';
  }

  /**
   * The chat is on screen: its unread count clears, and the newest message from someone else is
   * returned when it should be marked read (the server marks everything before it too).
   */
  open(chatId: string): string | undefined {
    const chat = this.chats.get(chatId);
    if (chat !== undefined && chat.unread !== 0) this.chats.set(chatId, { ...chat, unread: 0 });
    const list = this.messages.get(chatId) ?? [];
    for (let i = list.length - 1; i >= 0; i--) {
      const m = list[i] as StoredMessage;
      if (m.from === this.me || m.messageId === undefined) continue;
      return covers(this.marksOf(chatId, this.me).read, m.messageId) ? undefined : m.messageId;
    }
    return undefined;
  }

  /** Notes that this user read up to `messageId` (so it is not marked read again). */
  markedRead(chatId: string, messageId: string): void {
    this.raise(chatId, this.me, messageId, messageId);
  }

  /** A copy to save; at most {@link MESSAGES_PER_CHAT} messages per chat. */
  save(): SavedState {
    const messages: Record<string, StoredMessage[]> = {};
    for (const [chatId, list] of this.messages) messages[chatId] = list.slice(-MESSAGES_PER_CHAT);
    const marks: Record<string, Record<string, Watermarks>> = {};
    for (const [chatId, members] of this.marks) marks[chatId] = Object.fromEntries(members);
    return {
      version: 2,
      lastSeq: this.lastSeq,
      chats: [...this.chats.values()],
      messages,
      marks,
    };
  }

  private addMessage(msg: StoredMessage, unread: boolean): void {
    let list = this.messages.get(msg.chatId);
    if (list === undefined) {
      list = [];
      this.messages.set(msg.chatId, list);
    }
    if (msg.messageId !== undefined && list.some((m) => m.messageId === msg.messageId)) return;
    this.insertInOrder(list, msg);
    if (list.length > MESSAGES_PER_CHAT * 2) list.splice(0, list.length - MESSAGES_PER_CHAT);
    const chat = this.chats.get(msg.chatId) ?? this.placeholderChat(msg.chatId, msg.from);
    this.chats.set(msg.chatId, {
      ...chat,
      lastMessageAt: Math.max(chat.lastMessageAt ?? 0, msg.ts),
      unread: chat.unread + (unread ? 1 : 0),
    });
  }

  /** Keeps time order: a late event (caught up after being offline) goes where it belongs. */
  private insertInOrder(list: StoredMessage[], msg: StoredMessage): void {
    let at = list.length;
    while (at > 0 && (list[at - 1] as StoredMessage).ts > msg.ts) at--;
    list.splice(at, 0, msg);
  }

  private applyChatChange(
    chatId: string,
    change: 'created' | 'membersAdded' | 'membersRemoved',
    members: readonly string[],
    ts: number,
  ): void {
    const chat = this.chats.get(chatId) ?? this.placeholderChat(chatId, this.me);
    let next: string[];
    if (change === 'created') next = [...members];
    else if (change === 'membersAdded') next = [...new Set([...chat.members, ...members])];
    else next = chat.members.filter((m) => !members.includes(m));
    this.chats.set(chatId, {
      ...chat,
      members: next,
      lastMessageAt: chat.lastMessageAt ?? ts,
      left: !next.includes(this.me),
    });
  }

  /** A chat first heard of by a message: the list refresh fills in its name and members. */
  private placeholderChat(chatId: string, from: string): StoredChat {
    return {
      chatId,
      name: null,
      members: [...new Set([this.me, from])],
      lastMessageAt: null,
      unread: 0,
      left: false,
    };
  }

  private marksOf(chatId: string, user: string): Watermarks {
    return this.marks.get(chatId)?.get(user) ?? { delivered: null, read: null };
  }

  /** Moves a member's watermarks forward (never back); read implies delivered. */
  private raise(chatId: string, user: string, delivered: string | null, read: string | null): void {
    const was = this.marksOf(chatId, user);
    const nextRead = max(was.read, read);
    const next = { delivered: max(max(was.delivered, delivered), nextRead), read: nextRead };
    let members = this.marks.get(chatId);
    if (members === undefined) this.marks.set(chatId, (members = new Map()));
    members.set(user, next);
  }
}

/** True when the watermark reaches message `id`. */
function covers(mark: string | null, id: string): boolean {
  return mark !== null && compareMessageIds(mark, id) >= 0;
}

function max(a: string | null, b: string | null): string | null {
  if (a === null) return b;
  if (b === null) return a;
  return compareMessageIds(a, b) >= 0 ? a : b;
}
