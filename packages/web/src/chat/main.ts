/**
 * The web chat page: the client SDK in the browser, a local copy of the chats (model +
 * localStorage) and the DOM (view). Served by the registry at `/chat/`; the registry is also
 * where the SDK asks for the user's node, so the page works against any cluster it is served by.
 */
import type { ConnectionState } from '@chat/client';
import { ChatClient } from '@chat/client';
import type { AttachmentRef, EventFrame } from '@chat/protocol';
import { isChatError } from '@chat/protocol';
import type { Identity } from './identity';
import {
  fetchDevToken,
  forgetIdentity,
  invalidIdReason,
  rememberedIdentity,
  saveIdentity,
  defaultDevice,
} from './identity';
import { ChatModel } from './model';
import { loadState, storeState } from './saved-state';
import type { Dom } from './view';
import {
  MessageView,
  findDom,
  logConnection,
  presenceText,
  renderChatList,
  renderConnection,
} from './view';

/** How often the open chat's peer is asked for presence. */
const PRESENCE_POLL_MS = 5000;
/** A typing notice shows this long unless renewed. */
const TYPING_SHOWN_MS = 4000;
/** Typing notices sent at most this often (the node rate-limits them too). */
const TYPING_EVERY_MS = 2000;
const SAVE_DELAY_MS = 100;

/** One signed-in tab: a client, its model and the timers that belong to it. */
class ChatSession {
  private readonly model: ChatModel;
  private readonly client: ChatClient;
  private readonly messages: MessageView;
  private readonly disposers: (() => void)[] = [];
  private readonly imageUrls = new Map<string, Promise<string>>();
  private readonly readsInFlight = new Set<string>();
  private openChatId: string | undefined;
  private moves = 0;
  private lastNode: string | null = null;
  private saveTimer: ReturnType<typeof setTimeout> | undefined;
  private presenceTimer: ReturnType<typeof setInterval> | undefined;
  private typingTimer: ReturnType<typeof setTimeout> | undefined;
  private lastTypingSent = 0;
  private closed = false;

  constructor(
    private readonly dom: Dom,
    private readonly identity: Identity,
  ) {
    this.model = new ChatModel(identity.user, loadState(localStorage, identity));
    this.client = new ChatClient({
      registryUrl: location.origin,
      user: identity.user,
      // A fresh token for every connect, so a long-open page never presents an expired one.
      token: () => fetchDevToken(location.origin, identity),
      lastSeq: this.model.lastSeq,
    });
    this.messages = new MessageView(
      dom.messages,
      this.model,
      (key, retry) => this.imageUrl(key, retry),
      Date.now,
    );
  }

  async start(): Promise<void> {
    const { client, dom } = this;
    this.disposers.push(
      client.on('event', (evt) => this.onEvent(evt)),
      client.on('state', (state) => this.onState(state)),
      client.on('moved', (moved) => {
        this.moves += 1;
        logConnection(dom, `moved: ${this.lastNode ?? '?'} → ${moved.node}`, Date.now());
        renderConnection(dom, client.state, this.moves);
      }),
      client.on('typing', (notice) => this.showTyping(notice.chatId, notice.user)),
      client.on('reset', () => {
        logConnection(dom, 'the server had removed this device; refreshing', Date.now());
        void this.refreshChats();
      }),
      client.on('error', (err) => logConnection(dom, `error: ${err.message}`, Date.now())),
    );
    dom.me.textContent = `${this.identity.user} · ${this.identity.device}`;
    this.renderAll();
    await client.connect();
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const dispose of this.disposers.splice(0)) dispose();
    clearInterval(this.presenceTimer);
    clearTimeout(this.typingTimer);
    this.flushSave();
    await this.client.close();
  }

  open(chatId: string): void {
    this.openChatId = chatId;
    this.dom.composer.hidden = false;
    this.dom.chatTyping.textContent = '';
    this.dom.composerError.textContent = '';
    this.markRead();
    this.renderAll();
    clearInterval(this.presenceTimer);
    this.dom.chatPresence.textContent = '';
    this.dom.chatPresence.dataset.online = '';
    if (this.model.peerOf(chatId) !== undefined) {
      void this.refreshPresence();
      this.presenceTimer = setInterval(() => void this.refreshPresence(), PRESENCE_POLL_MS);
    }
    this.dom.text.focus();
  }

  async createChat(members: string[], name: string | undefined): Promise<void> {
    const { chatId } = await this.client.createChat(members, name);
    await this.refreshChats();
    this.open(chatId);
  }

  send(body: string): void {
    const chatId = this.openChatId;
    if (chatId === undefined || body.trim() === '') return;
    // Sending ends this bout of typing: the next keystroke may announce a new one.
    this.lastTypingSent = 0;
    this.sendMessage(chatId, body, []);
  }

  async sendImage(file: File): Promise<void> {
    const chatId = this.openChatId;
    if (chatId === undefined) return;
    this.dom.composerError.textContent = `uploading ${file.name}…`;
    const ref = await this.client.uploadAttachment(file, file.type || 'application/octet-stream');
    this.dom.composerError.textContent = '';
    this.sendMessage(chatId, null, [ref]);
  }

  typed(): void {
    const now = Date.now();
    if (this.openChatId === undefined || now - this.lastTypingSent < TYPING_EVERY_MS) return;
    this.lastTypingSent = now;
    this.client.typing(this.openChatId);
  }

  /** The tab became visible: what is on screen now counts as read. */
  visible(): void {
    this.markRead();
    this.renderAll();
  }

  private sendMessage(chatId: string, body: string | null, attachments: AttachmentRef[]): void {
    const clientMsgId = `web-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
    this.model.addPending(chatId, clientMsgId, body, attachments, Date.now());
    this.changed();
    this.client
      .send(chatId, body ?? undefined, { clientMsgId, attachments })
      .then(
        (ok) => this.model.confirmSent(chatId, clientMsgId, ok.messageId, ok.ts),
        (err: unknown) => {
          this.model.failSend(chatId, clientMsgId);
          this.dom.composerError.textContent = `not sent: ${(err as Error).message}`;
        },
      )
      .finally(() => this.changed());
  }

  private onEvent(evt: EventFrame): void {
    this.model.apply(evt, this.openChatId);
    if (evt.kind === 'message' && evt.chatId === this.openChatId) {
      if (evt.from !== this.identity.user) this.dom.chatTyping.textContent = '';
      this.markRead();
    }
    if (evt.kind === 'chat' && this.model.chat(evt.chatId)?.name === null) {
      // A new chat: its name comes with the listing.
      void this.refreshChats();
    }
    this.changed();
  }

  private onState(state: ConnectionState): void {
    renderConnection(this.dom, state, this.moves);
    if (state.status === 'ready') {
      if (state.node !== this.lastNode)
        logConnection(this.dom, `connected to ${state.node ?? '?'}`, Date.now());
      this.lastNode = state.node;
      // Chats created or renamed while away, and members changed, come with the listing.
      void this.refreshChats();
      this.markRead();
    } else if (state.status === 'reconnecting') {
      logConnection(this.dom, 'connection lost, reconnecting', Date.now());
    }
  }

  private async refreshChats(): Promise<void> {
    try {
      this.model.mergeSummaries(await this.client.listChats());
      this.changed();
    } catch {
      // Offline: the next ready state refreshes again.
    }
  }

  private async refreshPresence(): Promise<void> {
    const chatId = this.openChatId;
    const peer = chatId === undefined ? undefined : this.model.peerOf(chatId);
    if (peer === undefined || this.client.state.status !== 'ready') return;
    try {
      const { online, lastSeen } = await this.client.lastSeen(peer);
      if (this.openChatId !== chatId || this.closed) return;
      this.dom.chatPresence.textContent = presenceText(online, lastSeen, Date.now());
      this.dom.chatPresence.dataset.online = String(online);
    } catch {
      // Shown again at the next poll.
    }
  }

  private showTyping(chatId: string, user: string): void {
    if (chatId !== this.openChatId || user === this.identity.user) return;
    this.dom.chatTyping.textContent = `${user} is typing…`;
    clearTimeout(this.typingTimer);
    this.typingTimer = setTimeout(() => {
      this.dom.chatTyping.textContent = '';
    }, TYPING_SHOWN_MS);
  }

  private markRead(): void {
    const chatId = this.openChatId;
    if (chatId === undefined || document.visibilityState !== 'visible') return;
    const messageId = this.model.open(chatId);
    if (messageId === undefined || this.readsInFlight.has(messageId)) return;
    if (this.client.state.status !== 'ready') return;
    this.readsInFlight.add(messageId);
    this.client.read(chatId, messageId).then(
      () => {
        this.readsInFlight.delete(messageId);
        this.model.markedRead(messageId);
        this.changed();
      },
      (err: unknown) => {
        this.readsInFlight.delete(messageId);
        // NOT_FOUND: the message is gone from the server; marking it again would not help.
        if (isChatError(err) && err.code === 'NOT_FOUND') this.model.markedRead(messageId);
      },
    );
  }

  private imageUrl(key: string, retry: boolean): Promise<string> {
    let url = this.imageUrls.get(key);
    if (url === undefined || retry) {
      url = this.client.attachmentUrl(key);
      url.catch(() => this.imageUrls.delete(key));
      this.imageUrls.set(key, url);
    }
    return url;
  }

  private changed(): void {
    if (this.closed) return;
    this.renderAll();
    if (this.saveTimer === undefined) {
      this.saveTimer = setTimeout(() => this.flushSave(), SAVE_DELAY_MS);
    }
  }

  private flushSave(): void {
    clearTimeout(this.saveTimer);
    this.saveTimer = undefined;
    storeState(localStorage, this.identity, this.model.save());
  }

  private renderAll(): void {
    const { dom, model } = this;
    renderChatList(dom, model, this.openChatId, (chatId) => this.open(chatId));
    const chat = this.openChatId === undefined ? undefined : model.chat(this.openChatId);
    dom.chatTitle.textContent = chat === undefined ? 'No chat open' : model.title(chat);
    dom.chatTitle.title = chat?.members.join(', ') ?? '';
    this.messages.render(this.openChatId);
  }
}

/** Sign-in, sign-out and the forms: wires the DOM to the current session. */
function main(): void {
  const dom = findDom(document);
  let session: ChatSession | undefined;

  const showSignIn = (error = ''): void => {
    dom.app.hidden = true;
    dom.signin.hidden = false;
    dom.signinError.textContent = error;
  };

  const signIn = async (identity: Identity): Promise<void> => {
    const reason =
      invalidIdReason('user', identity.user) ?? invalidIdReason('device', identity.device);
    if (reason !== undefined) return showSignIn(reason);
    try {
      // Fails early, on the form, when the registry mints no tokens.
      await fetchDevToken(location.origin, identity);
    } catch (err) {
      return showSignIn((err as Error).message);
    }
    saveIdentity(identity, sessionStorage);
    dom.signin.hidden = true;
    dom.app.hidden = false;
    session = new ChatSession(dom, identity);
    session.start().catch((err: unknown) => {
      logConnection(dom, `could not connect: ${(err as Error).message}`, Date.now());
    });
  };

  dom.signinForm.addEventListener('submit', (e) => {
    e.preventDefault();
    const data = new FormData(dom.signinForm);
    void signIn({
      user: String(data.get('user')).trim(),
      device: String(data.get('device')).trim(),
    });
  });
  const userInput = dom.signinForm.elements.namedItem('user') as HTMLInputElement;
  const deviceInput = dom.signinForm.elements.namedItem('device') as HTMLInputElement;
  userInput.addEventListener('change', () => {
    if (invalidIdReason('user', userInput.value) === undefined && deviceInput.value === '') {
      deviceInput.value = defaultDevice(localStorage, userInput.value);
    }
  });

  dom.signout.addEventListener('click', () => {
    forgetIdentity(sessionStorage);
    const ending = session;
    session = undefined;
    void ending?.close();
    dom.chatList.replaceChildren();
    dom.messages.replaceChildren();
    dom.connLog.replaceChildren();
    dom.composer.hidden = true;
    history.replaceState(null, '', location.pathname);
    showSignIn();
  });

  dom.newChat.addEventListener('submit', (e) => {
    e.preventDefault();
    const data = new FormData(dom.newChat);
    const members = String(data.get('members'))
      .split(/[\s,]+/)
      .filter((m) => m !== '');
    const name = String(data.get('name') ?? '').trim();
    const invalid = members.map((m) => invalidIdReason('member', m)).find((r) => r !== undefined);
    if (invalid !== undefined || members.length === 0) {
      dom.newChatError.textContent = invalid ?? 'name at least one member';
      return;
    }
    dom.newChatError.textContent = '';
    session?.createChat(members, name === '' ? undefined : name).then(
      () => dom.newChat.reset(),
      (err: unknown) => {
        dom.newChatError.textContent = (err as Error).message;
      },
    );
  });

  dom.composer.addEventListener('submit', (e) => {
    e.preventDefault();
    session?.send(dom.text.value);
    dom.text.value = '';
  });
  dom.text.addEventListener('input', () => session?.typed());
  dom.attach.addEventListener('change', () => {
    const file = dom.attach.files?.[0];
    dom.attach.value = '';
    if (file === undefined) return;
    session?.sendImage(file).catch((err: unknown) => {
      dom.composerError.textContent = `upload failed: ${(err as Error).message}`;
    });
  });
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible') session?.visible();
  });

  const remembered = rememberedIdentity(location.search, sessionStorage, localStorage);
  if (remembered === undefined) showSignIn();
  else void signIn(remembered);
}

main();
