/**
 * What the chat page knows, as plain data: chats, the latest messages of each, receipts and the
 * last inbox seq. The server keeps no history for a device that has it already (messages are
 * removed once delivered), so this state is the device's copy and is saved locally. Pure: no
 * DOM, no storage, no clock; the page applies events and renders what this answers.
 */
import type { AttachmentRef, ChatSummary, EventFrame } from '@chat/protocol';

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

/** Who has a message: recipients that got it on a device, recipients that read it. */
export interface MessageReceipts {
  readonly delivered: readonly string[];
  readonly read: readonly string[];
}

/**
 * Ticks of an own message: `pending` until the server confirmed the send, `sent` once stored,
 * `delivered` once every other member has it on a device, `read` once every other member read it.
 */
export type Ticks = 'pending' | 'failed' | 'sent' | 'delivered' | 'read';

export interface SavedState {
  readonly version: 1;
  readonly lastSeq: number;
  readonly chats: readonly StoredChat[];
  readonly messages: Readonly<Record<string, readonly StoredMessage[]>>;
  readonly receipts: Readonly<Record<string, MessageReceipts>>;
}

/** Messages kept per chat; older ones are dropped from the device copy. */
export const MESSAGES_PER_CHAT = 200;

export class ChatModel {
  private readonly chats = new Map<string, StoredChat>();
  private readonly messages = new Map<string, StoredMessage[]>();
  private readonly receipts = new Map<string, MessageReceipts>();
  private seq = 0;

  constructor(
    readonly me: string,
    saved?: SavedState,
  ) {
    if (saved === undefined) return;
    this.seq = saved.lastSeq;
    for (const chat of saved.chats) this.chats.set(chat.chatId, chat);
    for (const [chatId, list] of Object.entries(saved.messages)) {
      this.messages.set(chatId, [...list]);
    }
    for (const [messageId, r] of Object.entries(saved.receipts)) this.receipts.set(messageId, r);
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
        this.addReceipt(evt.messageId, evt.user, evt.status);
        return;
    }
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

  /** Ticks of an own message, by the receipts of the chat's other members. */
  ticks(msg: StoredMessage): Ticks {
    if (msg.failed === true) return 'failed';
    if (msg.messageId === undefined) return 'pending';
    const others = (this.chats.get(msg.chatId)?.members ?? []).filter((m) => m !== this.me);
    const r = this.receipts.get(msg.messageId);
    if (others.length === 0 || r === undefined) return 'sent';
    if (others.every((m) => r.read.includes(m))) return 'read';
    if (others.every((m) => r.delivered.includes(m) || r.read.includes(m))) return 'delivered';
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
      return this.receipts.get(m.messageId)?.read.includes(this.me) === true
        ? undefined
        : m.messageId;
    }
    return undefined;
  }

  /** Notes that this user read `messageId` (so it is not marked read again). */
  markedRead(messageId: string): void {
    this.addReceipt(messageId, this.me, 'read');
  }

  /** A copy to save; at most {@link MESSAGES_PER_CHAT} messages per chat. */
  save(): SavedState {
    const messages: Record<string, StoredMessage[]> = {};
    const kept = new Set<string>();
    for (const [chatId, list] of this.messages) {
      const recent = list.slice(-MESSAGES_PER_CHAT);
      messages[chatId] = recent;
      for (const m of recent) if (m.messageId !== undefined) kept.add(m.messageId);
    }
    const receipts: Record<string, MessageReceipts> = {};
    for (const [id, r] of this.receipts) if (kept.has(id)) receipts[id] = r;
    return {
      version: 1,
      lastSeq: this.lastSeq,
      chats: [...this.chats.values()],
      messages,
      receipts,
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
    if (list.length > MESSAGES_PER_CHAT * 2) {
      for (const old of list.splice(0, list.length - MESSAGES_PER_CHAT)) {
        if (old.messageId !== undefined) this.receipts.delete(old.messageId);
      }
    }
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

  private addReceipt(messageId: string, user: string, status: 'delivered' | 'read'): void {
    const r = this.receipts.get(messageId) ?? { delivered: [], read: [] };
    if (r[status].includes(user)) return;
    this.receipts.set(messageId, { ...r, [status]: [...r[status], user] });
  }
}
