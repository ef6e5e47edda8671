/**
 * Lean users for the cluster tests: one device each on a `LeanSocket`, so that thousands of them
 * cost the test process little. A lean user reconnects like the SDK: on `moved` + close 4001 it
 * connects to the named URL after a random 0..250 ms; after a 503 it waits Retry-After plus up
 * to 1 s of jitter; after any other drop or refusal it backs off with full jitter. Before
 * reconnecting it asks the registry where to go (`resolve`), or without one goes back to the
 * URL it had.
 */
import { Backoff, CloseCode } from '@chat/protocol';
import type { BackoffPolicy } from '@chat/protocol';
import { LeanSocket } from './lean-socket';
import { testToken } from './raw-client';
import { AT_CONNECT } from './sdk-watch';
import type { CloseSeen, MoveSeen, WelcomeSeen } from './sdk-watch';

/** The SDK's default: on `moved`, reconnect after a random delay up to this. */
const MOVED_JITTER_MS = 250;
/** After a 503, the wait beyond Retry-After: uniform in [0, this). */
const RETRY_AFTER_JITTER_MS = 1000;

export interface LeanUserOptions {
  /** Where the user is to connect (the registry's route), asked again after every drop. */
  readonly resolve?: (user: string) => Promise<string>;
  /** Full-jitter backoff: uniform in [0, min(maxMs, baseMs * 2^attempt)); default 50 / 1000. */
  readonly backoff?: Pick<BackoffPolicy, 'baseMs' | 'maxMs'>;
}

/** An upgrade the node accepted (it admitted the connection). */
export interface OpenSeen {
  readonly url: string;
  readonly at: number;
}

/** One device of a user, recording what it observed. */
export class LeanUser {
  readonly welcomes: WelcomeSeen[] = [];
  readonly moves: MoveSeen[] = [];
  readonly opens: OpenSeen[] = [];
  /** Connections that ended after a welcome (drops, moves), with the close code (1006: none). */
  readonly closes: CloseSeen[] = [];
  refusals = 0;
  private readonly socket: LeanSocket;
  private readonly token: string;
  /** Delays after drops and refusals; reset by a welcome. */
  private readonly retries: Backoff;
  /** The URL of the current (or last) connection. */
  private url = '';
  private node: string | null = null;
  private movedTo: string | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    readonly user: string,
    private readonly options: LeanUserOptions = {},
  ) {
    this.token = testToken(user, 'd1');
    this.retries = new Backoff(
      { baseMs: 50, maxMs: 1000, ...options.backoff, jitter: 'full' },
      Math.random,
    );
    this.socket = new LeanSocket({
      onRefused: (status, retryAfterSec) => this.onRefused(status, retryAfterSec),
      onOpen: () => this.opens.push({ url: this.url, at: Date.now() }),
      onFrame: (frame) => this.onFrame(frame),
      onClose: (code) => this.onClose(code),
    });
  }

  /** The node this device is connected and welcomed on, or null. */
  get connectedTo(): string | null {
    return this.node;
  }

  /** Connects to `url`, or where `resolve` says. */
  start(url?: string): void {
    if (url !== undefined) this.open(url);
    else void this.reconnect();
  }

  /** The connection drops as when the network loses it (no close handshake); the device
   * reconnects after `reconnectInMs`. */
  drop(reconnectInMs: number): void {
    this.node = null;
    this.socket.destroy();
    this.schedule(reconnectInMs, () => void this.reconnect());
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.socket.destroy();
  }

  private async reconnect(): Promise<void> {
    if (this.stopped) return;
    const resolve = this.options.resolve;
    if (resolve === undefined) return this.open(this.url);
    let url: string;
    try {
      url = await resolve(this.user);
    } catch {
      this.backoff();
      return;
    }
    this.open(url);
  }

  private open(url: string): void {
    if (this.stopped) return;
    this.url = url;
    this.node = null;
    this.movedTo = undefined;
    this.socket.connect(url, this.token, undefined);
  }

  private onRefused(status: number, retryAfterSec: number | undefined): void {
    if (this.stopped) return;
    this.refusals++;
    if (status === 503 && retryAfterSec !== undefined) {
      const delay = retryAfterSec * 1000 + Math.random() * RETRY_AFTER_JITTER_MS;
      this.schedule(delay, () => void this.reconnect());
    } else {
      this.backoff();
    }
  }

  /** `code`: of the close frame; undefined when the connection ended without one. */
  private onClose(code: number | undefined): void {
    if (this.stopped) return;
    const node = this.node;
    this.node = null;
    if (node !== null || code !== undefined) {
      this.closes.push({ code: code ?? 1006, node, at: Date.now() });
    }
    const movedTo = this.movedTo;
    if (code === CloseCode.MOVED && movedTo !== undefined) {
      this.schedule(Math.random() * MOVED_JITTER_MS, () => this.open(movedTo));
    } else {
      this.backoff();
    }
  }

  private backoff(): void {
    this.schedule(this.retries.next(), () => void this.reconnect());
  }

  private onFrame(frame: Record<string, unknown>): void {
    if (frame.t === 'welcome') {
      this.node = frame.node as string;
      this.retries.reset();
      this.welcomes.push({ node: this.node, at: Date.now() });
    } else if (frame.t === 'ping') {
      this.socket.send({ t: 'pong', seq: frame.seq });
    } else if (frame.t === 'moved') {
      this.movedTo = frame.url as string;
      this.moves.push({
        user: this.user,
        from: this.node ?? AT_CONNECT,
        to: frame.node as string,
        at: Date.now(),
      });
    }
  }

  private schedule(delayMs: number, action: () => void): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(action, delayMs);
  }
}
