/** Options of ChatClient: the documented interface, its defaults, and resolution (copy + freeze). */
import { FEATURES_PARAM } from '@chat/protocol';
import type { RandomSource } from './backoff';
import type { OutboxStore } from './outbox-store';
import type { PageSignals } from './page-signals';
import { browserPageSignals } from './page-signals';
import { MemoryOutboxStore } from './outbox-store';
import type { FetchLike } from './route';
import type { WebSocketConstructor } from './transport';
import { defaultWebSocket } from './transport';

/** A device token, or a function returning a fresh one (called before every connect). */
export type TokenSource = string | (() => string | Promise<string>);

export type TimerHandle = unknown;

/** Time and timers, injectable so that tests can control them. */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

/** A pino-compatible logger subset. */
export interface Logger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/** How the client reconnects after it lost a connection or could not open one. */
export interface ReconnectOptions {
  /**
   * Attempts in a row that may fail (counted from the last time the client was ready; `moved`
   * redirects do not count) before it gives up: state `closed` with a `reason`, an `error`
   * event, and `connect()` rejects. Default: no limit.
   */
  readonly maxAttempts?: number;
  /**
   * Browser hints: while the page is hidden or the device offline no attempt is made (and none
   * counted); coming back online or into view reconnects at once. Default: the browser's
   * (`online`/`offline` on `window`, `visibilitychange` on `document`) where those globals
   * exist, none elsewhere; `false` turns them off.
   */
  readonly pageSignals?: PageSignals | false;
}

export interface ChatClientOptions {
  /** WebSocket URL of a node, e.g. `ws://host:port/ws`. A bare origin gets `/ws`. */
  readonly url?: string;
  /** Registry base URL; the node is found with `GET /v1/route?user=` before every connect. */
  readonly registryUrl?: string;
  /** The user id, required with `registryUrl`. */
  readonly user?: string;
  /** Token string, or a function returning a fresh token, called on every connect. */
  readonly token: TokenSource;
  /** Wire codec (subprotocol chat.v1.json or chat.v1.msgpack). Default 'json'. */
  readonly codec?: 'json' | 'msgpack';
  /** Last contiguous seq the app persisted; events up to it are not delivered again. Default 0. */
  readonly lastSeq?: number;
  /**
   * The store epoch `lastSeq` belongs to (`client.storeEpoch` when it was persisted). When the
   * node's `welcome` names another one, the database was restored since: the client starts
   * over from seq 0 (`storeEpochChanged`). Without it the first epoch seen is taken as given.
   */
  readonly storeEpoch?: string;
  /** Backoff ceiling of the first retry, ms. Default 250. */
  readonly backoffBaseMs?: number;
  /** Highest backoff ceiling, ms. Default 10 000. */
  readonly backoffMaxMs?: number;
  /**
   * Reconnecting: an attempt cap and browser hints, or `false` to stop (state `closed` with a
   * `reason`) at the first lost or failed connection. Default: retry without limit.
   */
  readonly reconnect?: ReconnectOptions | false;
  /** Time a request may wait for connection plus reply, and for `welcome`, ms. Default 10 000. */
  readonly requestTimeoutMs?: number;
  /** Overall time `send()` keeps retrying before it rejects, ms. Default 60 000. */
  readonly sendDeadlineMs?: number;
  /** Longest delay of a coalesced ack, ms. Default 20. */
  readonly ackDelayMs?: number;
  /** Ack at once after this many delivered events. Default 50. */
  readonly ackEveryEvents?: number;
  /** `limit` of each sync page; undefined lets the node choose. */
  readonly syncLimit?: number;
  /** Consecutive `moved` redirects followed without backoff before falling back. Default 3. */
  readonly maxMovedHops?: number;
  /** On `moved`, wait a random 0..movedJitterMs before connecting to the new node (default 250). */
  readonly movedJitterMs?: number;
  /**
   * Moves without a gap (protocol feature `overlap-moves`, default true): on `moved` the
   * connection to the old node stays up and keeps delivering until the one to the new node is
   * welcomed and synced; `state.movingTo` names the new node meanwhile. false: the old node
   * closes the connection at once and the client reconnects (protocol v1).
   */
  readonly overlapMoves?: boolean;
  /**
   * The connection is considered dead after this many heartbeat intervals (`welcome.heartbeatMs`)
   * without any frame. Default 2.5.
   */
  readonly heartbeatTimeoutFactor?: number;
  /** WebSocket implementation. Default `globalThis.WebSocket`, else the `ws` package. */
  readonly WebSocket?: WebSocketConstructor;
  /** fetch for the registry. Default `globalThis.fetch`. */
  readonly fetch?: FetchLike;
  /** Default: Date.now and the global timers. */
  readonly clock?: Clock;
  /** Random source for backoff jitter and ids. Default Math.random. */
  readonly random?: RandomSource;
  /** Default: no logging. */
  readonly logger?: Logger;
  /**
   * Where sends wait for their `ok`. Give a persistent one (a file, localStorage, a database)
   * and sends pending when the app stopped go out again, with the same clientMsgId, on the next
   * run's first `connect()` (`restoredSend` tells how each ended). Default: in memory.
   */
  readonly outboxStore?: OutboxStore;
}

export interface ResolvedOptions {
  readonly url: string | undefined;
  readonly registryUrl: string | undefined;
  readonly user: string | undefined;
  readonly token: TokenSource;
  readonly codec: 'json' | 'msgpack';
  readonly lastSeq: number;
  readonly storeEpoch: string | undefined;
  readonly backoffBaseMs: number;
  readonly backoffMaxMs: number;
  readonly reconnect: {
    readonly maxAttempts: number;
    readonly pageSignals: PageSignals | undefined;
  };
  readonly requestTimeoutMs: number;
  readonly sendDeadlineMs: number;
  readonly ackDelayMs: number;
  readonly ackEveryEvents: number;
  readonly syncLimit: number | undefined;
  readonly maxMovedHops: number;
  readonly movedJitterMs: number;
  readonly overlapMoves: boolean;
  readonly heartbeatTimeoutFactor: number;
  readonly WebSocket: WebSocketConstructor;
  readonly fetch: FetchLike | undefined;
  readonly clock: Clock;
  readonly random: RandomSource;
  readonly logger: Logger;
  readonly outboxStore: OutboxStore;
}

const noop = (): void => undefined;
const silentLogger: Logger = Object.freeze({ debug: noop, info: noop, warn: noop, error: noop });

const systemClock: Clock = Object.freeze({
  now: () => Date.now(),
  setTimeout: (fn: () => void, ms: number): TimerHandle => globalThis.setTimeout(fn, ms),
  clearTimeout: (handle: TimerHandle): void =>
    globalThis.clearTimeout(handle as Parameters<typeof globalThis.clearTimeout>[0]),
});

function positive(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value <= 0) throw new TypeError(`${name} must be > 0`);
  return value;
}

function resolveReconnect(
  option: ReconnectOptions | false | undefined,
): ResolvedOptions['reconnect'] {
  if (option === false) return Object.freeze({ maxAttempts: 0, pageSignals: undefined });
  const maxAttempts = option?.maxAttempts ?? Infinity;
  if (maxAttempts !== Infinity && (!Number.isSafeInteger(maxAttempts) || maxAttempts < 0)) {
    throw new TypeError('reconnect.maxAttempts must be a non-negative integer');
  }
  const signals = option?.pageSignals;
  return Object.freeze({
    maxAttempts,
    pageSignals: signals === false ? undefined : (signals ?? browserPageSignals()),
  });
}

/** Applies defaults, validates, and returns a frozen copy; the caller's object is not touched. */
export function resolveOptions(options: ChatClientOptions): ResolvedOptions {
  const { url, registryUrl, user } = options;
  if ((url === undefined) === (registryUrl === undefined)) {
    throw new TypeError('exactly one of url and registryUrl must be given');
  }
  if (registryUrl !== undefined && (user === undefined || user === '')) {
    throw new TypeError('user is required with registryUrl');
  }
  if (typeof options.token !== 'string' && typeof options.token !== 'function') {
    throw new TypeError('token must be a string or a function');
  }
  const codec = options.codec ?? 'json';
  if (codec !== 'json' && codec !== 'msgpack')
    throw new TypeError("codec must be 'json' or 'msgpack'");
  const lastSeq = options.lastSeq ?? 0;
  if (!Number.isSafeInteger(lastSeq) || lastSeq < 0) {
    throw new TypeError('lastSeq must be a non-negative integer');
  }
  if (options.storeEpoch !== undefined && typeof options.storeEpoch !== 'string') {
    throw new TypeError('storeEpoch must be a string');
  }
  const globalFetch = (globalThis as { fetch?: FetchLike }).fetch;
  return Object.freeze({
    url,
    registryUrl,
    user,
    token: options.token,
    codec,
    lastSeq,
    storeEpoch: options.storeEpoch,
    backoffBaseMs: positive('backoffBaseMs', options.backoffBaseMs, 250),
    backoffMaxMs: positive('backoffMaxMs', options.backoffMaxMs, 10_000),
    reconnect: resolveReconnect(options.reconnect),
    requestTimeoutMs: positive('requestTimeoutMs', options.requestTimeoutMs, 10_000),
    sendDeadlineMs: positive('sendDeadlineMs', options.sendDeadlineMs, 60_000),
    ackDelayMs: positive('ackDelayMs', options.ackDelayMs, 20),
    ackEveryEvents: positive('ackEveryEvents', options.ackEveryEvents, 50),
    syncLimit:
      options.syncLimit === undefined ? undefined : positive('syncLimit', options.syncLimit, 1),
    maxMovedHops: options.maxMovedHops ?? 3,
    movedJitterMs: options.movedJitterMs ?? 250,
    overlapMoves: options.overlapMoves ?? true,
    heartbeatTimeoutFactor: positive('heartbeatTimeoutFactor', options.heartbeatTimeoutFactor, 2.5),
    WebSocket: options.WebSocket ?? defaultWebSocket(),
    fetch: options.fetch ?? (globalFetch === undefined ? undefined : globalFetch.bind(globalThis)),
    clock: options.clock ?? systemClock,
    random: options.random ?? Math.random,
    logger: options.logger ?? silentLogger,
    outboxStore: options.outboxStore ?? new MemoryOutboxStore(),
  });
}

/** The URL of one connect attempt: `/ws` for a bare origin, and the token as a query param. */
export function connectUrl(base: string, token: string, overlapMoves = true): string {
  const u = new URL(base);
  if (u.pathname === '' || u.pathname === '/') u.pathname = '/ws';
  u.searchParams.set('token', token);
  // The SDK has its own sends from their `ok` and understands watermark receipts.
  const features = ['no-echo', 'receipt-marks', ...(overlapMoves ? ['overlap-moves'] : [])];
  u.searchParams.set(FEATURES_PARAM, features.join(','));
  return u.toString();
}
