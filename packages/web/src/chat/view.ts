/**
 * DOM rendering of the chat page. Elements are keyed (chats by id, messages by message or
 * client id) and updated in place, so images are not reloaded and scrolling is kept when
 * something changes. Elements carry `data-*` attributes that tests and styles read.
 */
import type { ConnectionState } from '@chat/client';
import type { AttachmentRef } from '@chat/protocol';
import type { ChatModel, StoredChat, StoredMessage } from './model';
import { el } from '../dom';

export interface Dom {
  readonly signin: HTMLElement;
  readonly signinForm: HTMLFormElement;
  readonly signinError: HTMLElement;
  readonly app: HTMLElement;
  readonly me: HTMLElement;
  readonly signout: HTMLButtonElement;
  readonly conn: HTMLElement;
  readonly connLog: HTMLElement;
  readonly newChat: HTMLFormElement;
  readonly newChatError: HTMLElement;
  readonly chatList: HTMLElement;
  readonly chatTitle: HTMLElement;
  readonly chatPresence: HTMLElement;
  readonly chatTyping: HTMLElement;
  readonly messages: HTMLElement;
  readonly composer: HTMLFormElement;
  readonly attach: HTMLInputElement;
  readonly text: HTMLInputElement;
  readonly composerError: HTMLElement;
  readonly notify: HTMLElement;
  readonly notifyButton: HTMLButtonElement;
  readonly notifyPreviewsLabel: HTMLElement;
  readonly notifyPreviews: HTMLInputElement;
  readonly notifyStatus: HTMLElement;
}

export function findDom(doc: Document): Dom {
  const get = <T extends HTMLElement>(id: string): T => {
    const el = doc.getElementById(id);
    if (el === null) throw new Error(`the page has no #${id}`);
    return el as T;
  };
  return {
    signin: get('signin'),
    signinForm: get('signin-form'),
    signinError: get('signin-error'),
    app: get('app'),
    me: get('me'),
    signout: get('signout'),
    conn: get('conn'),
    connLog: get('conn-log'),
    newChat: get('new-chat'),
    newChatError: get('new-chat-error'),
    chatList: get('chat-list'),
    chatTitle: get('chat-title'),
    chatPresence: get('chat-presence'),
    chatTyping: get('chat-typing'),
    messages: get('messages'),
    composer: get('composer'),
    attach: get('attach'),
    text: get('text'),
    composerError: get('composer-error'),
    notify: get('notify'),
    notifyButton: get('notify-button'),
    notifyPreviewsLabel: get('notify-previews-label'),
    notifyPreviews: get('notify-previews'),
    notifyStatus: get('notify-status'),
  };
}

/** `14:03`, or `Mon 14:03` when not today; with seconds for the connection log. */
export function formatTime(ts: number, now: number, seconds = false): string {
  const d = new Date(ts);
  const time = d.toLocaleTimeString([], {
    hour: '2-digit',
    minute: '2-digit',
    hourCycle: 'h23',
    ...(seconds ? { second: '2-digit' } : {}),
  });
  return new Date(now).toDateString() === d.toDateString()
    ? time
    : `${d.toLocaleDateString([], { weekday: 'short' })} ${time}`;
}

/** "online", "last seen 14:03", or "never seen". */
export function presenceText(online: boolean, lastSeen: number | null, now: number): string {
  if (online) return 'online';
  return lastSeen === null ? 'never seen' : `last seen ${formatTime(lastSeen, now)}`;
}

const TICK_TEXT = {
  pending: '…',
  failed: 'not sent',
  sent: '✓',
  delivered: '✓✓',
  read: '✓✓',
};

function preview(msg: StoredMessage | undefined): string {
  if (msg === undefined) return 'no messages yet';
  if (msg.body !== null && msg.body !== '') return msg.body;
  return msg.attachments.length > 0 ? 'Photo' : '';
}

/** The chat list, keyed by chat id, in activity order. */
export function renderChatList(
  dom: Dom,
  model: ChatModel,
  openChatId: string | undefined,
  open: (chatId: string) => void,
): void {
  const existing = new Map<string, HTMLElement>();
  for (const child of Array.from(dom.chatList.children) as HTMLElement[]) {
    existing.set(child.dataset.chatId ?? '', child);
  }
  const chats = model.chatList();
  chats.forEach((chat: StoredChat, i) => {
    let item = existing.get(chat.chatId);
    if (item === undefined) {
      item = el(document, 'li', 'chat-item');
      item.dataset.chatId = chat.chatId;
      const text = el(document, 'div', 'text');
      text.append(el(document, 'div', 'title'), el(document, 'div', 'preview'));
      item.append(text, el(document, 'span', 'unread'));
      item.addEventListener('click', () => open(chat.chatId));
    }
    existing.delete(chat.chatId);
    const list = model.messagesOf(chat.chatId);
    (item.querySelector('.title') as HTMLElement).textContent =
      model.title(chat) + (chat.left ? ' (left)' : '');
    (item.querySelector('.preview') as HTMLElement).textContent = preview(list[list.length - 1]);
    (item.querySelector('.unread') as HTMLElement).textContent =
      chat.unread > 0 ? String(chat.unread) : '';
    item.classList.toggle('open', chat.chatId === openChatId);
    if (dom.chatList.children[i] !== item)
      dom.chatList.insertBefore(item, dom.chatList.children[i] ?? null);
  });
  for (const stale of existing.values()) stale.remove();
}

/** Keyed rendering of one chat's messages; resolves attachment keys to image URLs lazily. */
export class MessageView {
  private chatId: string | undefined;
  private readonly items = new Map<string, HTMLElement>();

  constructor(
    private readonly list: HTMLElement,
    private readonly model: ChatModel,
    private readonly imageUrl: (key: string, retry: boolean) => Promise<string>,
    private readonly now: () => number,
  ) {}

  render(chatId: string | undefined): void {
    if (chatId !== this.chatId) {
      this.list.replaceChildren();
      this.items.clear();
      this.chatId = chatId;
    }
    if (chatId === undefined) return;
    const atBottom = this.list.scrollHeight - this.list.scrollTop - this.list.clientHeight < 40;
    const messages = this.model.messagesOf(chatId);
    const seen = new Set<string>();
    messages.forEach((msg, i) => {
      const key = msg.clientMsgId ?? msg.messageId ?? '';
      seen.add(key);
      let item = this.items.get(key);
      if (item === undefined) {
        item = this.create(msg);
        this.items.set(key, item);
      }
      this.update(item, msg);
      if (this.list.children[i] !== item)
        this.list.insertBefore(item, this.list.children[i] ?? null);
    });
    for (const [key, item] of this.items) {
      if (!seen.has(key)) {
        item.remove();
        this.items.delete(key);
      }
    }
    if (atBottom) this.list.scrollTop = this.list.scrollHeight;
  }

  private create(msg: StoredMessage): HTMLElement {
    const mine = msg.from === this.model.me;
    const item = el(document, 'li', mine ? 'msg mine' : 'msg');
    const chat = this.model.chat(msg.chatId);
    if (!mine && chat !== undefined && chat.members.length > 2)
      item.append(el(document, 'div', 'from', msg.from));
    for (const attachment of msg.attachments) item.append(this.attachment(attachment));
    if (msg.body !== null && msg.body !== '') item.append(el(document, 'div', 'body', msg.body));
    const meta = el(document, 'div', 'meta', formatTime(msg.ts, this.now()));
    if (mine) meta.append(el(document, 'span', 'ticks'));
    item.append(meta);
    return item;
  }

  private update(item: HTMLElement, msg: StoredMessage): void {
    if (msg.messageId !== undefined) item.dataset.messageId = msg.messageId;
    if (msg.clientMsgId !== undefined) item.dataset.clientMsgId = msg.clientMsgId;
    this.loadImages(item, msg);
    const ticks = item.querySelector<HTMLElement>('.ticks');
    if (ticks === null) return;
    const state = this.model.ticks(msg);
    if (ticks.dataset.ticks === state) return;
    ticks.dataset.ticks = state;
    ticks.textContent = TICK_TEXT[state];
    ticks.title = state;
    item.dataset.ticks = state;
  }

  private attachment(ref: AttachmentRef): HTMLElement {
    if (!ref.mime.startsWith('image/')) {
      return el(document, 'div', 'file', `file: ${ref.mime}, ${Math.ceil(ref.size / 1024)} KiB`);
    }
    const img = el(document, 'img', 'attachment');
    img.alt = 'image';
    img.dataset.key = ref.key;
    // A presigned URL can expire while the page is open: ask for a fresh one once.
    let retried = false;
    img.addEventListener('error', () => {
      if (retried) return;
      retried = true;
      this.loadImage(img, true);
    });
    return img;
  }

  /**
   * Asks for the images' URLs once the message is stored: the node gives a URL only for a key
   * that a stored message carries, and an own message is stored once the send is confirmed.
   */
  private loadImages(item: HTMLElement, msg: StoredMessage): void {
    if (msg.messageId === undefined) return;
    for (const img of Array.from(item.querySelectorAll<HTMLImageElement>('img.attachment'))) {
      if (img.dataset.requested !== undefined) continue;
      img.dataset.requested = '1';
      this.loadImage(img, false);
    }
  }

  private loadImage(img: HTMLImageElement, retry: boolean): void {
    this.imageUrl(img.dataset.key ?? '', retry).then(
      (url) => {
        img.src = url;
      },
      () => {
        img.alt = 'image unavailable';
      },
    );
  }
}

const STATUS_TEXT: Record<ConnectionState['status'], (node: string | null) => string> = {
  connecting: () => 'connecting…',
  syncing: (node) => `catching up on ${node ?? 'the node'}…`,
  ready: (node) => `connected to ${node ?? 'a node'}`,
  reconnecting: () => 'reconnecting…',
  closed: () => 'offline',
};

export function renderConnection(dom: Dom, state: ConnectionState, moves: number): void {
  dom.conn.dataset.status = state.status;
  dom.conn.dataset.node = state.node ?? '';
  dom.conn.dataset.moves = String(moves);
  dom.conn.dataset.movingTo = state.movingTo ?? '';
  // A move without a gap: still connected (and delivering) on the old node meanwhile.
  dom.conn.textContent =
    state.movingTo === undefined
      ? STATUS_TEXT[state.status](state.node)
      : `moving: ${state.node ?? '?'} → ${state.movingTo}`;
}

/** Adds a line to the connection log (newest first, a few kept). */
export function logConnection(dom: Dom, line: string, now: number): void {
  const item = el(document, 'li', '', `${formatTime(now, now, true)} ${line}`);
  dom.connLog.prepend(item);
  while (dom.connLog.children.length > 6) dom.connLog.lastElementChild?.remove();
}
