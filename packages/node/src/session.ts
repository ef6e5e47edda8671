/**
 * One connected device: its socket, the pushes it has not acked, its heartbeat and its rate
 * limit. The socket is reached through `SocketPort` so this logic runs without uWS in tests.
 */
import type { Feature } from '@chat/protocol';
import type { Codec, ServerFrame, WireData } from '@chat/protocol';
import { CloseCode } from '@chat/protocol';
import { PendingPushes } from './pending-pushes';
import type { DeliveredMessage } from './pending-pushes';
import { TokenBucket } from './token-bucket';

/** What a session needs of its socket. Never called after `end`. */
export interface SocketPort {
  send(data: WireData, binary: boolean): void;
  bufferedAmount(): number;
  end(code: number, reason: string): void;
}

export interface SessionPolicy {
  readonly heartbeatMs: number;
  readonly heartbeatTimeoutMs: number;
  readonly ackTimeoutMs: number;
  readonly maxPushTries: number;
  readonly ratePerSec: number;
  readonly rateBurst: number;
  readonly rateStrikes: number;
  readonly maxBufferedBytes: number;
  readonly maxPendingPushes: number;
}

export type AdmitResult = 'ok' | 'refuse' | 'close';

/** Sync-delivered messages remembered per connection until acked. */
const MAX_SYNCED = 2000;

export class Session {
  /** Set once the device row exists and `welcome` went out; requests wait for it. */
  ready = false;
  /**
   * The node this connection was told to move to while it stays open for the move (feature
   * `overlap-moves`): it keeps being served until the client or the overlap deadline closes it.
   */
  movingTo: string | undefined;
  private closed = false;
  /** Pushes are paused while the socket is over its buffer bound or the pending list is full. */
  private lagging = false;
  private readonly pending = new PendingPushes();
  /** Messages handed over by sync, not acked yet (bounded: the oldest are forgotten). */
  private synced: { seq: number; message: DeliveredMessage }[] = [];
  private readonly bucket: TokenBucket;
  private strikes = 0;
  private nextPingAt: number;
  /** When the outstanding ping must have been answered by; 0 when none is outstanding. */
  private pongDeadline = 0;

  constructor(
    readonly user: string,
    readonly device: string,
    readonly codec: Codec,
    private readonly socket: SocketPort,
    private readonly policy: SessionPolicy,
    now: number,
    /** What the client opted into when it connected (protocol features.ts). */
    readonly features: ReadonlySet<Feature> = new Set(),
    /** When the token stops being honoured (`exp` plus leeway, ms): the session closes with 4003. */
    readonly expiresAt: number = Number.POSITIVE_INFINITY,
  ) {
    this.bucket = new TokenBucket(policy.ratePerSec, policy.rateBurst, now);
    this.nextPingAt = now + policy.heartbeatMs;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  get pendingCount(): number {
    return this.pending.size;
  }

  get bufferedBytes(): number {
    return this.closed ? 0 : this.socket.bufferedAmount();
  }

  /** Encodes and sends one frame; typed as the server-frame union so a misspelt frame fails tsc. */
  send(frame: ServerFrame): void {
    this.sendData(this.codec.encode(frame));
  }

  sendData(data: WireData): void {
    if (!this.closed) this.socket.send(data, this.codec.binary);
  }

  /**
   * Pushes one already-encoded event. Skipped (the device will sync) while the socket is
   * lagging, so a slow reader never makes the node buffer more than the bound.
   */
  push(seq: number, data: WireData, now: number, message?: DeliveredMessage): void {
    if (this.closed || !this.ready) return;
    if (this.lagging || this.isBackedUp()) {
      this.lagging = true;
      return;
    }
    this.pending.add(seq, data, now, message);
    this.sendData(data);
  }

  /** A message handed over in a sync page: delivered once acked, like a push. */
  noteSynced(seq: number, message: DeliveredMessage): void {
    this.synced.push({ seq, message });
    if (this.synced.length > MAX_SYNCED) this.synced.splice(0, this.synced.length - MAX_SYNCED);
  }

  /**
   * A cumulative ack: `resumed` is true when pushes resume (see `onDrain`); `delivered` are the
   * messages from others it covers that this connection handed over.
   */
  onAck(seq: number): { resumed: boolean; delivered: DeliveredMessage[] } {
    const delivered = this.pending.ackUpTo(seq);
    if (this.synced.length > 0 && this.synced[0]!.seq <= seq) {
      const rest = this.synced.filter((s) => s.seq > seq);
      for (const s of this.synced) if (s.seq <= seq) delivered.push(s.message);
      this.synced = rest;
    }
    return { resumed: this.resumeIfClear(), delivered };
  }

  onPong(): void {
    this.pongDeadline = 0;
  }

  /**
   * Called when the socket drained. Returns true when pushes resume, so the caller can send a
   * ping with the latest seq and the device syncs what it missed.
   */
  onDrain(): boolean {
    return this.resumeIfClear();
  }

  private resumeIfClear(): boolean {
    if (!this.lagging || this.closed || this.isBackedUp()) return false;
    this.lagging = false;
    return true;
  }

  /** Rate limit for one inbound frame. */
  admit(now: number): AdmitResult {
    if (this.bucket.take(now)) {
      this.strikes = 0;
      return 'ok';
    }
    this.strikes += 1;
    return this.strikes > this.policy.rateStrikes ? 'close' : 'refuse';
  }

  /**
   * Token expiry, heartbeat deadline and ack timeouts: closes with 4003 once the token is no
   * longer honoured, with 4002 when a pong or an ack never came, and pushes overdue events
   * again. Returns true when a ping is due; the caller then calls
   * `startPing` and sends the ping with the user's latest seq.
   */
  tick(now: number): boolean {
    if (this.closed) return false;
    if (now >= this.expiresAt) {
      this.close(CloseCode.UNAUTHORIZED, 'token expired');
      return false;
    }
    if (!this.ready) return false;
    if (this.pongDeadline !== 0 && now >= this.pongDeadline) {
      this.close(CloseCode.TIMEOUT, 'heartbeat timeout');
      return false;
    }
    if (this.pending.isOverdue(now, this.policy.ackTimeoutMs) && !this.isBackedUp()) {
      if (this.pending.maxTries() >= this.policy.maxPushTries) {
        this.close(CloseCode.TIMEOUT, 'ack timeout');
        return false;
      }
      for (const item of this.pending.retryAll(now)) this.sendData(item.data);
    }
    return now >= this.nextPingAt;
  }

  /** Starts a heartbeat now: the pong deadline runs from here, whenever the ping goes out. */
  startPing(now: number): void {
    this.nextPingAt = now + this.policy.heartbeatMs;
    if (this.pongDeadline === 0) this.pongDeadline = now + this.policy.heartbeatTimeoutMs;
  }

  ping(latestSeq: number): void {
    this.send({ t: 'ping', seq: latestSeq });
  }

  close(code: number, reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.pending.clear();
    this.socket.end(code, reason);
  }

  /** The socket closed from the other side or by uWS: never touch it again. */
  markClosed(): void {
    this.closed = true;
    this.pending.clear();
  }

  private isBackedUp(): boolean {
    return (
      this.socket.bufferedAmount() > this.policy.maxBufferedBytes ||
      this.pending.size >= this.policy.maxPendingPushes
    );
  }
}
