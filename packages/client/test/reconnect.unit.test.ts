/**
 * Reconnect options (attempt cap, off switch, browser page signals) with the client's injected
 * clock and random source and a scripted WebSocket: no network, no real time.
 */
import { ChatClient, ConnectionError } from '../src';
import type {
  ChatClientOptions,
  Clock,
  ConnectionState,
  PageSignals,
  TimerHandle,
  WebSocketLike,
} from '../src';
import { browserPageSignals } from '../src/page-signals';

/** Timers that run only when the test moves time forward. */
class ManualClock implements Clock {
  private time = 0;
  private nextHandle = 1;
  private readonly timers = new Map<number, { at: number; fn: () => void }>();

  now(): number {
    return this.time;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const handle = this.nextHandle++;
    this.timers.set(handle, { at: this.time + ms, fn });
    return handle;
  }

  clearTimeout(handle: TimerHandle): void {
    this.timers.delete(handle as number);
  }

  get pending(): number {
    return this.timers.size;
  }

  /** Runs every timer due within `ms`, in time order. */
  advance(ms: number): void {
    const end = this.time + ms;
    for (;;) {
      const due = [...this.timers].filter(([, t]) => t.at <= end).sort((a, b) => a[1].at - b[1].at);
      const first = due[0];
      if (first === undefined) break;
      this.timers.delete(first[0]);
      this.time = first[1].at;
      first[1].fn();
    }
    this.time = end;
  }
}

/** A WebSocket the test drives: opens, speaks JSON frames, fails. */
class ScriptedSocket implements WebSocketLike {
  static readonly all: ScriptedSocket[] = [];
  readonly protocol = 'chat.v1.json';
  readyState = 0;
  binaryType = 'blob';
  readonly sent: Record<string, unknown>[] = [];
  onopen: ((event: never) => void) | null = null;
  onmessage: ((event: never) => void) | null = null;
  onerror: ((event: never) => void) | null = null;
  onclose: ((event: never) => void) | null = null;

  constructor(readonly url: string) {
    ScriptedSocket.all.push(this);
  }

  send(data: string | Uint8Array): void {
    this.sent.push(JSON.parse(String(data)) as Record<string, unknown>);
  }

  close(code = 1000, reason = ''): void {
    this.drop(code, reason);
  }

  /** Opens, is welcomed and answers the first sync: the client becomes ready. */
  welcome(): void {
    this.readyState = 1;
    (this.onopen as (() => void) | null)?.();
    this.receive({
      t: 'welcome',
      user: 'alice',
      device: 'd1',
      node: 'node-1',
      epoch: 1,
      seq: 0,
      heartbeatMs: 30_000,
    });
    const sync = this.sent.find((f) => f.t === 'sync');
    this.receive({ t: 'ok', id: sync?.id, seq: 0, more: false });
  }

  /** The connection fails or drops. */
  drop(code = 1006, reason = ''): void {
    if (this.readyState === 3) return;
    this.readyState = 3;
    (this.onclose as ((e: { code: number; reason: string }) => void) | null)?.({ code, reason });
  }

  private receive(frame: object): void {
    (this.onmessage as ((e: { data: string }) => void) | null)?.({ data: JSON.stringify(frame) });
  }
}

/** Page signals the test flips, counting its listeners. */
class TestPage implements PageSignals {
  hidden = false;
  online = true;
  readonly listeners = new Set<() => void>();

  onChange(listener: () => void) {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  set(change: { hidden?: boolean; online?: boolean }): void {
    Object.assign(this, change);
    for (const l of this.listeners) l();
  }
}

const sockets = ScriptedSocket.all;
let clock: ManualClock;
const clients: ChatClient[] = [];

beforeEach(() => {
  sockets.length = 0;
  clock = new ManualClock();
});
afterEach(async () => {
  for (const c of clients.splice(0)) {
    const closing = c.close();
    clock.advance(1000);
    await closing;
  }
});

function makeClient(options: Partial<ChatClientOptions>) {
  const client = new ChatClient({
    url: 'ws://127.0.0.1:1/ws',
    token: 't',
    WebSocket: ScriptedSocket,
    clock,
    // Every backoff delay is half its ceiling: 100, 200, 400 ms with base 200.
    random: () => 0.5,
    backoffBaseMs: 200,
    reconnect: { pageSignals: false },
    ...options,
  });
  clients.push(client);
  const states: ConnectionState[] = [];
  const errors: Error[] = [];
  client.on('state', (s) => states.push(s));
  client.on('error', (e) => errors.push(e));
  return { client, states, errors };
}

/** Lets the client's promise continuations (token, outbox store) run. */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

it('gives up after maxAttempts failed attempts in a row: closed with the reason', async () => {
  const { client, states, errors } = makeClient({ reconnect: { maxAttempts: 2 } });
  const connected = client.connect().catch((e: unknown) => e);
  await settle();
  sockets[0]!.drop(1006);
  clock.advance(100);
  await settle();
  expect(sockets).toHaveLength(2);
  sockets[1]!.drop(1006);
  clock.advance(200);
  await settle();
  expect(sockets).toHaveLength(3);
  sockets[2]!.drop(1011, 'node failing');
  expect(client.state.status).toBe('closed');

  const err = (await connected) as ConnectionError;
  expect(err).toBeInstanceOf(ConnectionError);
  expect(err.message).toBe(
    'connection closed (1011 node failing); gave up after 2 reconnect attempts',
  );
  expect(err.closeCode).toBe(1011);
  expect(errors).toEqual([err]);
  expect(client.state).toEqual({ status: 'closed', node: null, reason: err });
  expect(states.at(-1)).toBe(client.state);
  // Nothing is left to fire: no reconnect timer, and time changes nothing.
  expect(clock.pending).toBe(0);
  clock.advance(60_000);
  await settle();
  expect(sockets).toHaveLength(3);
});

it('counts attempts from the last time it was ready', async () => {
  const { client } = makeClient({ reconnect: { maxAttempts: 1 } });
  const connected = client.connect();
  await settle();
  sockets[0]!.drop();
  clock.advance(100);
  await settle();
  sockets[1]!.welcome();
  await connected;
  // Ready again: a drop gets its one attempt again.
  sockets[1]!.drop();
  clock.advance(100);
  await settle();
  expect(sockets).toHaveLength(3);
  expect(client.state.status).toBe('reconnecting');
});

it('reconnect: false stops at the first lost connection', async () => {
  const { client, errors } = makeClient({ reconnect: false });
  const connected = client.connect();
  await settle();
  sockets[0]!.welcome();
  await connected;
  sockets[0]!.drop(1001, 'going away');
  expect(client.state.status).toBe('closed');
  expect(client.state.reason?.message).toBe(
    'connection closed (1001 going away); reconnect is off',
  );
  expect(errors).toHaveLength(1);
  clock.advance(60_000);
  await settle();
  expect(sockets).toHaveLength(1);
});

it('close() by the app leaves no reason', async () => {
  const { client } = makeClient({});
  const connected = client.connect();
  await settle();
  sockets[0]!.welcome();
  await connected;
  const closing = client.close();
  clock.advance(1000);
  await closing;
  expect(client.state).toEqual({ status: 'closed', node: null });
});

it('waits without spending attempts while the page is hidden, and reconnects at once when shown', async () => {
  const page = new TestPage();
  const { client } = makeClient({ reconnect: { maxAttempts: 1, pageSignals: page } });
  const connected = client.connect();
  await settle();
  sockets[0]!.welcome();
  await connected;

  page.set({ hidden: true });
  sockets[0]!.drop();
  expect(client.state.status).toBe('reconnecting');
  expect(clock.pending).toBe(0); // no backoff timer while hidden
  clock.advance(60_000);
  await settle();
  expect(sockets).toHaveLength(1);

  page.set({ hidden: false });
  await settle();
  expect(sockets).toHaveLength(2); // at once: no time passed
  // The hidden period spent no attempt: the one allowed is still there.
  sockets[1]!.drop();
  expect(client.state.status).toBe('reconnecting');
  clock.advance(100);
  await settle();
  expect(sockets).toHaveLength(3);
});

it('reconnects at once when the device comes back online, not waiting out the backoff', async () => {
  const page = new TestPage();
  const { client } = makeClient({ backoffBaseMs: 60_000, reconnect: { pageSignals: page } });
  const connected = client.connect();
  await settle();
  sockets[0]!.welcome();
  await connected;

  sockets[0]!.drop(); // visible and online: a backoff timer of 30 s
  expect(clock.pending).toBeGreaterThan(0);
  page.set({ online: false });
  page.set({ online: true });
  await settle();
  expect(sockets).toHaveLength(2);
  expect(clock.now()).toBe(0);
});

it('lets go of the page listeners when closed', async () => {
  const page = new TestPage();
  const { client } = makeClient({ reconnect: { pageSignals: page } });
  const connected = client.connect().catch((e: unknown) => e);
  await settle();
  expect(page.listeners.size).toBe(1);
  const closing = client.close();
  clock.advance(1000);
  await closing;
  expect(await connected).toBeInstanceOf(ConnectionError);
  expect(page.listeners.size).toBe(0);
});

describe('browserPageSignals', () => {
  it('is undefined without window and document (Node, React Native)', () => {
    expect(browserPageSignals({})).toBeUndefined();
    expect(browserPageSignals(globalThis)).toBeUndefined();
  });

  it('reads document.hidden and navigator.onLine and listens to the three events', () => {
    const win = new EventTarget();
    const doc = Object.assign(new EventTarget(), { hidden: false });
    const nav = { onLine: true };
    const signals = browserPageSignals(
      Object.assign(win, { document: doc, navigator: nav }) as object,
    )!;
    const calls: string[] = [];
    const off = signals.onChange(() => calls.push(`${signals.hidden}/${signals.online}`));
    doc.hidden = true;
    doc.dispatchEvent(new Event('visibilitychange'));
    nav.onLine = false;
    win.dispatchEvent(new Event('offline'));
    nav.onLine = true;
    win.dispatchEvent(new Event('online'));
    off();
    win.dispatchEvent(new Event('online'));
    expect(calls).toEqual(['true/true', 'true/false', 'true/true']);
  });
});
