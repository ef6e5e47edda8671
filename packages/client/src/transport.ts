/**
 * The thin socket glue: a minimal WebSocket shape that both the browser's WebSocket and the
 * `ws` package satisfy, the default implementation lookup, and the one `ws`-only extra (reading
 * the HTTP status and Retry-After of a refused upgrade). Nothing here imports Node built-ins.
 */

/** The subset of the WHATWG WebSocket API the client uses. */
export interface WebSocketLike {
  readonly protocol: string;
  readonly readyState: number;
  binaryType: string;
  send(data: string | Uint8Array): void;
  close(code?: number, reason?: string): void;
  // Handlers take `never` so that both the DOM's and `ws`'s event types are accepted.
  onopen: ((event: never) => void) | null;
  onmessage: ((event: never) => void) | null;
  onerror: ((event: never) => void) | null;
  onclose: ((event: never) => void) | null;
}

/** A WebSocket class: `globalThis.WebSocket`, `ws`'s default export, or a test double. */
export type WebSocketConstructor = new (
  url: string,
  protocols?: string | string[],
) => WebSocketLike;

/** Extras of the `ws` package, detected at runtime. */
interface NodeWsExtras {
  on(
    event: 'unexpected-response',
    listener: (req: unknown, res: { statusCode?: number; headers: IncomingHeaders }) => void,
  ): unknown;
  terminate(): void;
}
type IncomingHeaders = Record<string, string | string[] | undefined>;

const OPEN = 1;

/**
 * `globalThis.WebSocket` when the runtime has one (browsers, Node >= 22), else the `ws` package.
 * The require sits behind this function so that browser code paths never reach it.
 */
export function defaultWebSocket(): WebSocketConstructor {
  const global = (globalThis as { WebSocket?: unknown }).WebSocket;
  if (typeof global === 'function') return global as WebSocketConstructor;
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- optional Node fallback
  return require('ws') as WebSocketConstructor;
}

export interface SocketClose {
  readonly code: number;
  readonly reason: string;
  /** Status of a refused upgrade, when the implementation exposes it (`ws` does). */
  readonly httpStatus?: number;
  /** Parsed Retry-After of a refused upgrade, in ms. */
  readonly retryAfterMs?: number;
}

export interface SocketHandlers {
  open(): void;
  message(data: unknown): void;
  close(info: SocketClose): void;
}

/** One WebSocket attempt. After `close` has been reported, nothing else is. */
export interface Socket {
  readonly protocol: string;
  /** False once closing started; sends are then dropped. */
  readonly isOpen: boolean;
  send(data: string | Uint8Array): void;
  close(code: number, reason: string): void;
  /** Drops the connection without a closing handshake when the implementation allows it. */
  terminate(): void;
}

/** Parses Retry-After (delta-seconds or an HTTP date) into ms from `now`. */
export function parseRetryAfter(value: string | undefined, now: number): number | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const at = Date.parse(trimmed);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

export function openSocket(
  Impl: WebSocketConstructor,
  url: string,
  subprotocol: string,
  handlers: SocketHandlers,
  now: () => number,
): Socket {
  const ws = new Impl(url, [subprotocol]);
  ws.binaryType = 'arraybuffer';
  let httpStatus: number | undefined;
  let retryAfterMs: number | undefined;
  let closed = false;

  const extras = ws as unknown as Partial<NodeWsExtras>;
  if (typeof extras.on === 'function') {
    extras.on('unexpected-response', (_req, res) => {
      httpStatus = res.statusCode;
      const header = res.headers['retry-after'];
      retryAfterMs = parseRetryAfter(Array.isArray(header) ? header[0] : header, now());
      // With a listener attached, `ws` leaves aborting the handshake to us; this reports close.
      extras.terminate?.();
    });
  }

  ws.onopen = () => {
    if (!closed) handlers.open();
  };
  ws.onmessage = (event: { data: unknown }) => {
    if (!closed) handlers.message(event.data);
  };
  // Errors are always followed by a close event, which carries what we act on.
  ws.onerror = () => undefined;
  ws.onclose = (event: { code: number; reason: string }) => {
    if (closed) return;
    closed = true;
    const info: { -readonly [K in keyof SocketClose]: SocketClose[K] } = {
      code: event.code,
      reason: event.reason,
    };
    if (httpStatus !== undefined) info.httpStatus = httpStatus;
    if (retryAfterMs !== undefined) info.retryAfterMs = retryAfterMs;
    handlers.close(info);
  };

  return {
    get protocol() {
      return ws.protocol;
    },
    get isOpen() {
      return !closed && ws.readyState === OPEN;
    },
    send(data) {
      if (!closed && ws.readyState === OPEN) ws.send(data);
    },
    close(code, reason) {
      try {
        ws.close(code, reason);
      } catch {
        // already closing, or CONNECTING in an implementation that refuses close()
        extras.terminate?.();
      }
    },
    terminate() {
      if (typeof extras.terminate === 'function') extras.terminate();
      else ws.close();
    },
  };
}
