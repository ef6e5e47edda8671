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
import type { PushAccount } from './notify-control';
import { NotifyControl } from './notify-control';
import { clearState, loadState, storeState } from './saved-state';
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
/** Chat list refreshes (new chats, members) are coalesced over this long during a catch-up. */
const REFRESH_DELAY_MS = 300;
/** A download URL is asked again this long before it expires. */
const URL_MARGIN_MS = 30_000;

/** One signed-in tab: a client, its model and the timers that belong to it. */
class ChatSession {
  private readonly model: ChatModel;
  private readonly client: ChatClient;
  private readonly messages: MessageView;
  private readonly disposers: (() => void)[] = [];
  private readonly imageUrls = new Map<string, Promise<{ url: string; expiresAt: number }>>();
  /** Chats with a `read` request on the wire: one at a time per chat. */
  private readonly readsInFlight = new Set<string>();
  private openChatId: string | undefined;
  private moves = 0;
  private lastNode: string | null = null;
  private saveQueued = false;
  /** Another tab of this device took over: this one must not write its older copy. */
  private superseded = false;
  private refreshTimer: ReturnType<typeof setTimeout> | undefined;
  private presenceTimer: ReturnType<typeof setInterval> | undefined;
  private typingTimer: ReturnType<typeof setTimeout> | undefined;
  private lastTypingSent = 0;
  private closed = false;

  /**
   * @param onForeignCopy called when the saved copy cannot belong to this server (it has seen
   * more events than the server has: a local cluster started again on a fresh database); the
   * copy is already cleared, and the caller starts a new session.
   */
  constructor(
    private readonly dom: Dom,
    private readonly identity: Identity,
    private readonly onForeignCopy: () => void,
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
      client.on('receipts', (frame) => {
        this.model.applyReceipts(frame);
        this.changed();
      }),
      client.on('welcome', (welcome) => {
        if (welcome.seq >= this.model.lastSeq || this.superseded) return;
        // The new node's welcome during a move without a gap: events kept arriving through the
        // old node since it was sent, so it may name fewer than the page has. Not a foreign copy.
        if (client.state.movingTo !== undefined) return;
        this.superseded = true;
        clearState(localStorage, this.identity);
        this.onForeignCopy();
      }),
      client.on('reset', () => {
        logConnection(dom, 'the server had removed this device; refreshing', Date.now());
        void this.refreshChats();
      }),
      client.on('error', (err) => {
        if (this.closed) return;
        logConnection(dom, `error: ${err.message}`, Date.now());
        if (/replaced by a newer connection/.test(err.message)) this.superseded = true;
      }),
    );
    dom.me.textContent = `${this.identity.user} · ${this.identity.device}`;
    this.renderAll();
    // Sends a reload interrupted: the same clientMsgId makes the node store each only once.
    for (const msg of this.model.unconfirmed()) {
      this.deliverSend(msg.chatId, msg.clientMsgId as string, msg.body, [...msg.attachments]);
    }
    await client.connect();
  }

  /** The SDK's push requests, for the "notify me" button. */
  get pushAccount(): PushAccount {
    return this.client;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.save();
    this.closed = true;
    for (const dispose of this.disposers.splice(0)) dispose();
    clearInterval(this.presenceTimer);
    clearTimeout(this.typingTimer);
    clearTimeout(this.refreshTimer);
    await this.client.close();
  }

  open(chatId: string): void {
    if (this.closed) return;
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
    if (this.closed) return;
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
    this.deliverSend(chatId, clientMsgId, body, attachments);
  }

  /** Hands a shown message to the SDK's outbox and settles it when the node answers. */
  private deliverSend(
    chatId: string,
    clientMsgId: string,
    body: string | null,
    attachments: AttachmentRef[],
  ): void {
    this.client.send(chatId, body ?? undefined, { clientMsgId, attachments }).then(
      (ok) => {
        this.model.confirmSent(chatId, clientMsgId, ok.messageId, ok.ts);
        this.changed();
      },
      (err: unknown) => {
        if (this.closed) return;
        this.model.failSend(chatId, clientMsgId);
        this.dom.composerError.textContent = `not sent: ${(err as Error).message}`;
        this.changed();
      },
    );
  }

  private onEvent(evt: EventFrame): void {
    const known = this.model.chat(evt.chatId) !== undefined;
    this.model.apply(evt, this.openChatId);
    if (evt.kind === 'message' && evt.chatId === this.openChatId) {
      if (evt.from !== this.identity.user) this.dom.chatTyping.textContent = '';
      this.markRead();
    }
    // A chat heard of for the first time: its name and members come with the listing.
    if (!known || evt.kind === 'chat') this.refreshChatsSoon();
    this.changed();
  }

  private onState(state: ConnectionState): void {
    renderConnection(this.dom, state, this.moves);
    // Moving without a gap: still on the old node, nothing to refresh until the move is done.
    if (state.movingTo !== undefined) return;
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
      const chats = await this.client.listChats();
      if (this.closed) return;
      this.model.mergeSummaries(chats);
      this.changed();
    } catch {
      // Offline: the next ready state refreshes again.
    }
  }

  private refreshChatsSoon(): void {
    if (this.refreshTimer !== undefined) return;
    this.refreshTimer = setTimeout(() => {
      this.refreshTimer = undefined;
      void this.refreshChats();
    }, REFRESH_DELAY_MS);
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

  /**
   * Marks the open chat read up to its newest message from others, when the tab is visible.
   * One request per chat at a time (a burst of messages must not become a burst of reads);
   * when it is answered, the chat is looked at again.
   */
  private markRead(): void {
    const chatId = this.openChatId;
    if (chatId === undefined || this.closed || document.visibilityState !== 'visible') return;
    if (this.readsInFlight.has(chatId) || this.client.state.status !== 'ready') return;
    const messageId = this.model.open(chatId);
    if (messageId === undefined) return;
    this.readsInFlight.add(chatId);
    this.client
      .read(chatId, messageId)
      .then(
        () => this.model.markedRead(chatId, messageId),
        (err: unknown) => {
          // NOT_FOUND: the message is gone from the server; marking it again would not help.
          if (isChatError(err) && err.code === 'NOT_FOUND')
            this.model.markedRead(chatId, messageId);
        },
      )
      .finally(() => {
        this.readsInFlight.delete(chatId);
        this.changed();
        if (this.openChatId === chatId && this.model.open(chatId) !== undefined) this.markRead();
      });
  }

  /** A download URL for an attachment, cached until shortly before it expires. */
  private imageUrl(key: string, retry: boolean): Promise<string> {
    let entry = this.imageUrls.get(key);
    if (entry === undefined || retry) {
      const fresh = this.client.downloadUrl(key);
      this.imageUrls.set(key, fresh);
      fresh.then(
        ({ expiresAt }) => {
          const stale = (): void => {
            if (this.imageUrls.get(key) === fresh) this.imageUrls.delete(key);
          };
          setTimeout(stale, Math.max(0, expiresAt - Date.now() - URL_MARGIN_MS));
        },
        () => {
          if (this.imageUrls.get(key) === fresh) this.imageUrls.delete(key);
        },
      );
      entry = fresh;
    }
    return entry.then(({ url }) => url);
  }

  /**
   * Something changed: render, and save before this task ends. The SDK acks delivered events in
   * this task (after a sync page, or 50 events) or in a later timer task, and the node then
   * deletes them; saving in a microtask puts every event in the local copy before any ack of it
   * can leave, whatever happens to the tab afterwards.
   */
  private changed(): void {
    if (this.closed) return;
    this.renderAll();
    if (this.saveQueued) return;
    this.saveQueued = true;
    queueMicrotask(() => {
      this.saveQueued = false;
      this.save();
    });
  }

  /** Saves at once (also called when the page is hidden or closing). */
  save(): void {
    if (this.closed || this.superseded) return;
    const result = storeState(localStorage, this.identity, this.model.save());
    if (result === 'stale') {
      this.superseded = true;
      logConnection(
        this.dom,
        'another tab of this device took over; this one stopped saving',
        Date.now(),
      );
    } else if (result === 'failed') {
      logConnection(this.dom, 'could not save locally (storage full?)', Date.now());
    }
  }

  private renderAll(): void {
    if (this.closed) return;
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
  const notify = new NotifyControl(dom, () => session?.pushAccount);
  void notify.offer();

  const showSignIn = (error = ''): void => {
    dom.app.hidden = true;
    dom.signin.hidden = false;
    dom.signinError.textContent = error;
  };

  /** Bumped by every sign-in and sign-out: a sign-in that was overtaken while it waited stops. */
  let generation = 0;
  const submit = dom.signinForm.querySelector('button[type="submit"]') as HTMLButtonElement;

  const signIn = async (identity: Identity): Promise<void> => {
    const reason =
      invalidIdReason('user', identity.user) ?? invalidIdReason('device', identity.device);
    if (reason !== undefined) return showSignIn(reason);
    const mine = ++generation;
    submit.disabled = true;
    try {
      // Fails early, on the form, when the registry mints no tokens.
      await fetchDevToken(location.origin, identity);
    } catch (err) {
      if (mine === generation) showSignIn((err as Error).message);
      return;
    } finally {
      submit.disabled = false;
    }
    if (mine !== generation) return;
    saveIdentity(identity, sessionStorage);
    dom.signin.hidden = true;
    dom.app.hidden = false;
    startSession(identity);
  };

  const startSession = (identity: Identity): void => {
    let started: ChatSession;
    try {
      started = new ChatSession(dom, identity, () => {
        if (session !== started) return;
        void started.close();
        dom.chatList.replaceChildren();
        dom.messages.replaceChildren();
        startSession(identity);
        logConnection(dom, 'this browser had chats of another server; starting fresh', Date.now());
      });
    } catch (err) {
      return showSignIn(`cannot start: ${(err as Error).message}`);
    }
    session = started;
    started.start().catch((err: unknown) => {
      if (session === started) {
        logConnection(dom, `could not connect: ${(err as Error).message}`, Date.now());
      }
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
    generation++;
    forgetIdentity(sessionStorage);
    const ending = session;
    session = undefined;
    void ending?.close();
    dom.chatList.replaceChildren();
    dom.messages.replaceChildren();
    dom.connLog.replaceChildren();
    notify.reset();
    for (const text of [dom.chatPresence, dom.chatTyping, dom.composerError, dom.newChatError]) {
      text.textContent = '';
    }
    dom.chatTitle.textContent = 'No chat open';
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
    else session?.save();
  });
  window.addEventListener('pagehide', () => session?.save());

  const remembered = rememberedIdentity(location.search, sessionStorage, localStorage);
  if (remembered === undefined) showSignIn();
  else void signIn(remembered);
}

main();
