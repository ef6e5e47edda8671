/**
 * A bare protocol-v1 client for conformance tests: it sends exactly the frames a test gives it
 * and records every frame and the close code, with no retries, dedupe or acks of its own.
 */
import type { Codec, ServerFrame } from '@chat/protocol';
import { signToken } from '@chat/protocol';
import WebSocket from 'ws';
import { TEST_SECRET } from './node-process';

export interface RawClientOptions {
  readonly url: string;
  readonly codec: Codec;
  /** A full token; by default one is signed for user/device with the test secret. */
  readonly token?: string;
  readonly user?: string;
  readonly device?: string;
  readonly origin?: string;
  /** Answer pings automatically (default true). */
  readonly autoPong?: boolean;
  /** Ack every event as it arrives (default false: tests decide when to ack). */
  readonly autoAck?: boolean;
  /** Optional protocol features to opt into (`no-echo`, `receipt-marks`); none by default. */
  readonly features?: readonly string[];
}

/** The features the SDK opts into: what a client written today sees. */
export const SDK_FEATURES: readonly string[] = ['no-echo', 'receipt-marks'];

export interface CloseInfo {
  readonly code: number;
  readonly reason: string;
}

export function testToken(
  user: string,
  device: string,
  ttlSec = 3600,
  secret = TEST_SECRET,
): string {
  return signToken({ sub: user, dev: device, exp: Math.floor(Date.now() / 1000) + ttlSec }, secret);
}

export class RawClient {
  readonly frames: ServerFrame[] = [];
  readonly closed: Promise<CloseInfo>;
  private nextId = 1;
  private waiters: Array<() => void> = [];
  private listeners: Array<(frame: ServerFrame) => void> = [];

  private constructor(
    readonly ws: WebSocket,
    readonly codec: Codec,
    autoPong: boolean,
    autoAck: boolean,
  ) {
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      const frame = codec.decode(
        isBinary ? new Uint8Array(data) : data.toString('utf8'),
      ) as ServerFrame;
      this.frames.push(frame);
      for (const listener of this.listeners) listener(frame);
      if (autoPong && frame.t === 'ping') this.sendFrame({ t: 'pong', seq: frame.seq });
      if (autoAck && frame.t === 'evt') this.sendFrame({ t: 'ack', seq: frame.seq });
      this.wake();
    });
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        resolve({ code, reason: reason.toString() });
        this.wake();
      });
    });
  }

  /** Connects and resolves once the socket is open (not waiting for `welcome`). */
  static connect(options: RawClientOptions): Promise<RawClient> {
    const token = options.token ?? testToken(options.user ?? 'alice', options.device ?? 'd1');
    const headers: Record<string, string> = {};
    if (options.origin !== undefined) headers.origin = options.origin;
    const features =
      options.features !== undefined && options.features.length > 0
        ? `&features=${options.features.join(',')}`
        : '';
    const ws = new WebSocket(
      `${options.url}?token=${encodeURIComponent(token)}${features}`,
      options.codec.subprotocol,
      { headers },
    );
    const client = new RawClient(
      ws,
      options.codec,
      options.autoPong ?? true,
      options.autoAck ?? false,
    );
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(client));
      ws.once('unexpected-response', (_req, res) =>
        reject(new UpgradeRefused(res.statusCode ?? 0, res.headers)),
      );
      ws.once('error', reject);
    });
  }

  /** Connects and waits for `welcome`. */
  static async ready(options: RawClientOptions): Promise<RawClient> {
    const client = await RawClient.connect(options);
    await client.next((f) => f.t === 'welcome');
    return client;
  }

  sendFrame(frame: object): void {
    this.ws.send(this.codec.encode(frame));
  }

  sendBytes(data: string | Uint8Array): void {
    this.ws.send(data);
  }

  /** Sends a request with a fresh id and resolves with its ok or err reply. */
  async request(
    frame: Record<string, unknown>,
    timeoutMs = 10_000,
  ): Promise<ServerFrame & { t: 'ok' | 'err' }> {
    const id = this.nextId++;
    this.sendFrame({ ...frame, id });
    return (await this.next(
      (f) => (f.t === 'ok' || f.t === 'err') && f.id === id,
      timeoutMs,
    )) as ServerFrame & {
      t: 'ok' | 'err';
    };
  }

  /** Like request, but throws unless the reply is ok. */
  async ok(frame: Record<string, unknown>, timeoutMs?: number): Promise<Record<string, unknown>> {
    const reply = await this.request(frame, timeoutMs);
    if (reply.t !== 'ok') {
      const err = new Error(
        `expected ok for ${JSON.stringify(frame)}, got ${JSON.stringify(reply)}`,
      );
      // The error code of the reply, so callers can tell UNAVAILABLE from a real refusal.
      throw Object.assign(err, { code: reply.code });
    }
    return reply as unknown as Record<string, unknown>;
  }

  /** Waits for the first recorded frame (old or new) matching the predicate. */
  async next<F extends ServerFrame>(
    match: (f: ServerFrame) => boolean,
    timeoutMs = 10_000,
  ): Promise<F> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.frames.find(match);
      if (found !== undefined) return found as F;
      const left = deadline - Date.now();
      if (left <= 0)
        throw new Error(
          `no matching frame within ${timeoutMs} ms; got ${JSON.stringify(this.frames.slice(-5))}`,
        );
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /**
   * Calls `listener` with every frame as it arrives (to time arrivals; `next` is for waiting).
   * Returns the function that stops it.
   */
  onFrame(listener: (frame: ServerFrame) => void): () => void {
    this.listeners.push(listener);
    return () => {
      this.listeners = this.listeners.filter((l) => l !== listener);
    };
  }

  /** The recorded `evt` frames, in arrival order. */
  events(): Array<ServerFrame & { t: 'evt' }> {
    return this.frames.filter((f): f is ServerFrame & { t: 'evt' } => f.t === 'evt');
  }

  close(): Promise<CloseInfo> {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING)
      this.ws.close(1000);
    return this.closed;
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }
}

export class UpgradeRefused extends Error {
  constructor(
    readonly status: number,
    readonly headers: Record<string, string | string[] | undefined>,
  ) {
    super(`upgrade refused with HTTP ${status}`);
  }
}
