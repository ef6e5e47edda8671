import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { Backoff, ChatError } from '@chat/protocol';
import type { BackoffPolicy, RandomSource } from '@chat/protocol';
import { fromWireError, unavailable } from './errors';
import {
  DEFAULT_MAX_FRAME_BYTES,
  FrameDecoder,
  FrameError,
  createPackr,
  encodeFrame,
  frameChecksum,
} from './frame';
import type { RpcLogger, Timers } from './logger';
import { realTimers } from './logger';
import { NONCE_BYTES, handshakeProof, verifyHandshakeProof } from './handshake';
import type { HandshakeTranscript } from './handshake';
import { isValidNodeId, parseServerMsg } from './messages';
import type { Method } from './method';
import { channelBinding, connectTransport } from './transport';
import type { RpcTls } from './transport';

export interface PeerClientOptions {
  /** This node's id, sent to the peer when authenticating. */
  readonly nodeId: string;
  /** The shared cluster secret (CHAT_CLUSTER_SECRET); both sides prove they know it. */
  readonly secret: string;
  readonly host: string;
  readonly port: number;
  readonly logger: RpcLogger;
  /** Mutual TLS with the cluster CA; absent: plain TCP. */
  readonly tls?: RpcTls;
  /** When set, a peer announcing another node id is treated as unreachable. */
  readonly expectedNodeId?: string;
  /** Default timeout of a call, from `call` to the answer, queueing included, in ms. Default 5000. */
  readonly callTimeoutMs?: number;
  /**
   * How often expired calls are looked for, in ms: a call fails at most this much after its
   * timeout. One sweep timer instead of one timer per call (which cost a quarter of the
   * throughput in the echo bench). Default 10.
   */
  readonly timeoutCheckMs?: number;
  /** Time to connect and authenticate, in ms. Default 5000. */
  readonly connectTimeoutMs?: number;
  /**
   * Most calls waiting to be written, while disconnected or while the socket is backed up.
   * Past it `call` rejects at once with UNAVAILABLE. Default 10000.
   */
  readonly maxQueued?: number;
  /** Largest frame sent or accepted, in bytes. Default 4 MiB. */
  readonly maxFrameBytes?: number;
  /** Reconnect delays. Default `defaultBackoff`. */
  readonly backoff?: BackoffPolicy;
  readonly timers?: Timers;
  /** Source of jitter in [0, 1). Default Math.random. */
  readonly random?: RandomSource;
}

/**
 * Reconnects: 50 ms doubling up to 5 s, full jitter, because when a node restarts every other
 * node reconnects to it at once and the widest spread keeps them from arriving together.
 */
export const defaultBackoff: BackoffPolicy = Object.freeze({
  baseMs: 50,
  maxMs: 5000,
  jitter: 'full',
});

type ResolvedClientOptions = Required<Omit<PeerClientOptions, 'expectedNodeId' | 'tls'>> &
  Pick<PeerClientOptions, 'expectedNodeId' | 'tls'>;

export interface CallOptions {
  /** Overrides the client's callTimeoutMs for this call. */
  readonly timeoutMs?: number;
}

/** Counters of one peer, for metrics. */
export interface PeerStats {
  readonly connected: boolean;
  /** Calls waiting to be written. */
  readonly queued: number;
  /** Calls written and not answered yet. */
  readonly inflight: number;
  /** Calls that failed (timeout, connection lost, queue full, error answer), since creation. */
  readonly errors: number;
  /** Connections established and authenticated, since creation. */
  readonly connects: number;
}

type State = 'connecting' | 'handshake' | 'ready' | 'backoff' | 'closed';

interface Pending {
  readonly id: number;
  readonly method: string;
  readonly frame: Buffer;
  readonly resolve: (value: unknown) => void;
  readonly reject: (err: ChatError) => void;
  readonly deadline: number;
  sent: boolean;
}

/**
 * A connection to one peer node, multiplexing every call on one socket. Reconnects by itself
 * with exponential backoff and full jitter. While it cannot write (disconnected, or the socket
 * is backed up) calls wait in a bounded queue; past `maxQueued` they fail at once with
 * UNAVAILABLE. A call whose connection is lost after it was written fails with UNAVAILABLE too:
 * the peer may or may not have run it.
 *
 * @example
 * const client = new PeerClient({ nodeId: 'node-1', secret, host: '10.0.0.2', port: 7001, logger });
 * const res = await client.call(Deliver, { deliveries }, { timeoutMs: 2000 });
 * await client.close();
 */
export class PeerClient {
  private readonly options: ResolvedClientOptions;
  private readonly log: RpcLogger;
  private readonly packr = createPackr();
  private readonly pending = new Map<number, Pending>();
  /** Calls waiting to be written, in call order (a Map keeps insertion order, deletes in O(1)). */
  private readonly queue = new Map<number, Pending>();
  private state: State = 'connecting';
  private socket: Socket | undefined;
  private stateTimer: unknown;
  private readonly reconnects: Backoff;
  private nextId = 1;
  private writeBlocked = false;
  private corked = false;
  private inflightCount = 0;
  private errorCount = 0;
  private connectCount = 0;
  private sweepTimer: unknown;
  private sweepArmed = false;
  /** The handshake of the current connection, once the listener's hello arrived. */
  private transcript: HandshakeTranscript | undefined;
  /** The current connection's listener offered frame checksums in its `hello` (we take it). */
  private checksumOffered = false;
  /** Frames of the current connection carry a CRC-32 trailer (from `ready` on). */
  private checksummed = false;

  constructor(options: PeerClientOptions) {
    if (!isValidNodeId(options.nodeId)) throw new RangeError(`bad node id ${options.nodeId}`);
    this.options = Object.freeze({
      callTimeoutMs: 5000,
      timeoutCheckMs: 10,
      connectTimeoutMs: 5000,
      maxQueued: 10_000,
      maxFrameBytes: DEFAULT_MAX_FRAME_BYTES,
      backoff: defaultBackoff,
      timers: realTimers,
      random: Math.random,
      ...options,
    });
    this.log = options.logger.child({
      component: 'rpc-client',
      nodeId: options.nodeId,
      peer: options.expectedNodeId ?? `${options.host}:${options.port}`,
    });
    this.reconnects = new Backoff(this.options.backoff, this.options.random);
    this.open();
  }

  /** Where this client connects. */
  get address(): string {
    return `${this.options.host}:${this.options.port}`;
  }

  get connected(): boolean {
    return this.state === 'ready';
  }

  stats(): PeerStats {
    return {
      connected: this.state === 'ready',
      queued: this.queue.size,
      inflight: this.inflightCount,
      errors: this.errorCount,
      connects: this.connectCount,
    };
  }

  /**
   * Calls `method` on the peer. Rejects with the handler's ChatError, or ChatError('UNAVAILABLE')
   * on timeout, lost connection, full queue or a closed client.
   */
  call<Req, Res>(method: Method<Req, Res>, req: Req, options: CallOptions = {}): Promise<Res> {
    if (this.state === 'closed') return this.fail(unavailable('rpc client closed'));
    const mustQueue = this.state !== 'ready' || this.writeBlocked || this.queue.size > 0;
    if (mustQueue && this.queue.size >= this.options.maxQueued) {
      return this.fail(unavailable('rpc queue full', { peer: this.address, method: method.name }));
    }
    const id = this.nextId++;
    let frame: Buffer;
    try {
      frame = encodeFrame(
        this.packr,
        { t: 'req', id, m: method.name, p: req },
        this.options.maxFrameBytes,
      );
    } catch (err) {
      return this.fail(
        err instanceof FrameError && err.reason === 'too_large'
          ? new ChatError('TOO_LARGE', 'rpc request too large', { method: method.name })
          : new ChatError('BAD_REQUEST', 'rpc request not encodable', { method: method.name }),
      );
    }
    const timeoutMs = options.timeoutMs ?? this.options.callTimeoutMs;
    return new Promise<Res>((resolve, reject) => {
      const entry: Pending = {
        id,
        method: method.name,
        frame,
        resolve: resolve as (value: unknown) => void,
        reject,
        deadline: this.options.timers.now() + timeoutMs,
        sent: false,
      };
      this.pending.set(id, entry);
      this.armSweep();
      if (mustQueue) this.queue.set(id, entry);
      else this.write(entry);
    });
  }

  /** Closes the connection for good; every pending and queued call fails with UNAVAILABLE. */
  async close(): Promise<void> {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.options.timers.clearTimeout(this.stateTimer);
    this.options.timers.clearTimeout(this.sweepTimer);
    const socket = this.socket;
    this.socket = undefined;
    for (const entry of [...this.pending.values()])
      this.settle(entry, unavailable('rpc client closed'));
    if (socket !== undefined && !socket.destroyed) {
      await new Promise<void>((resolve) => {
        socket.once('close', () => resolve());
        socket.destroy();
      });
    }
  }

  private fail<T>(err: ChatError): Promise<T> {
    this.errorCount++;
    return Promise.reject(err);
  }

  /** Resolves or rejects a call exactly once and forgets it. */
  private settle(entry: Pending, err: ChatError | undefined, value?: unknown): void {
    if (this.pending.get(entry.id) !== entry) return;
    this.pending.delete(entry.id);
    if (entry.sent) this.inflightCount--;
    else this.queue.delete(entry.id);
    if (err !== undefined) {
      this.errorCount++;
      entry.reject(err);
    } else {
      entry.resolve(value);
    }
  }

  private armSweep(): void {
    if (this.sweepArmed) return;
    this.sweepArmed = true;
    this.sweepTimer = this.options.timers.setTimeout(
      () => this.sweep(),
      this.options.timeoutCheckMs,
    );
  }

  /** Fails the calls past their deadline; runs only while calls are pending. */
  private sweep(): void {
    this.sweepArmed = false;
    const now = this.options.timers.now();
    // Deleting the visited entry while iterating a Map is safe.
    for (const entry of this.pending.values()) {
      if (entry.deadline <= now) {
        this.settle(entry, unavailable('rpc call timed out', { method: entry.method }));
      }
    }
    if (this.pending.size > 0 && this.state !== 'closed') this.armSweep();
  }

  private open(): void {
    this.state = 'connecting';
    this.writeBlocked = false;
    this.transcript = undefined;
    this.checksumOffered = false;
    this.checksummed = false;
    const { socket, readyEvent } = connectTransport(this.options.tls, this.options);
    this.socket = socket;
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 10_000);
    const decoder = new FrameDecoder(this.packr, { maxFrameBytes: this.options.maxFrameBytes });
    this.stateTimer = this.options.timers.setTimeout(() => {
      this.drop(socket, 'connect or authentication timed out');
    }, this.options.connectTimeoutMs);
    let tcpConnected = false;
    socket.on('connect', () => {
      tcpConnected = true;
    });
    socket.on(readyEvent, () => {
      if (this.socket === socket) this.state = 'handshake';
    });
    socket.on('data', (chunk: Buffer) => {
      let values: unknown[];
      try {
        values = decoder.push(chunk);
      } catch (err) {
        this.drop(socket, 'bad frame from peer', err);
        return;
      }
      for (const value of values) {
        if (this.socket !== socket) return;
        this.onMessage(socket, decoder, value);
      }
    });
    socket.on('drain', () => {
      if (this.socket !== socket) return;
      this.writeBlocked = false;
      this.flush();
    });
    socket.on('error', (err) => {
      // A refused TLS handshake (a certificate not from the cluster CA, or not for this
      // address) is a security event; a peer that is down is routine.
      if (tcpConnected && this.state === 'connecting' && this.options.tls !== undefined) {
        this.log.warn(
          { reason: 'TLS handshake failed', err, address: this.address },
          'dropping rpc connection',
        );
      } else {
        this.log.debug({ err }, 'rpc socket error');
      }
    });
    socket.on('close', () => this.onClose(socket));
  }

  private onMessage(socket: Socket, decoder: FrameDecoder, value: unknown): void {
    const msg = parseServerMsg(value);
    if (msg === undefined) {
      this.drop(socket, 'malformed message from peer');
      return;
    }
    switch (msg.t) {
      case 'hello': {
        if (this.state !== 'handshake' || this.transcript !== undefined)
          return this.drop(socket, 'unexpected hello');
        if (!this.isExpectedPeer(msg.nodeId))
          return this.drop(socket, `peer is ${msg.nodeId}, not ${this.options.expectedNodeId}`);
        this.checksumOffered = msg.crc32 === true;
        const bound = msg.crc32Bound === true;
        const transcript: HandshakeTranscript = {
          dialerId: this.options.nodeId,
          listenerId: msg.nodeId,
          dialerNonce: randomBytes(NONCE_BYTES),
          listenerNonce: msg.nonce,
          channelBinding: channelBinding(socket),
          ...(bound ? { checksums: this.checksumOffered } : {}),
        };
        this.transcript = transcript;
        this.writeRaw({
          t: 'auth',
          nodeId: this.options.nodeId,
          nonce: transcript.dialerNonce,
          proof: handshakeProof(this.options.secret, 'dialer', transcript),
          ...(this.checksumOffered ? { crc32: true } : {}),
          ...(bound ? { crc32Bound: true } : {}),
        });
        return;
      }
      case 'ready': {
        const transcript = this.transcript;
        if (this.state !== 'handshake' || transcript === undefined)
          return this.drop(socket, 'unexpected ready');
        if (msg.nodeId !== transcript.listenerId)
          return this.drop(socket, `peer said ${transcript.listenerId}, then ${msg.nodeId}`);
        // Mutual: the listener must prove the secret too, or it is an impostor that only
        // collected our proof (which is good for this connection alone).
        if (!verifyHandshakeProof(this.options.secret, 'listener', transcript, msg.proof))
          return this.drop(socket, 'peer did not prove the cluster secret');
        this.options.timers.clearTimeout(this.stateTimer);
        // Both ways from here on (the listener switched as it sent `ready`).
        if (this.checksumOffered) {
          this.checksummed = true;
          decoder.expectChecksums();
        }
        this.state = 'ready';
        this.reconnects.reset();
        this.connectCount++;
        this.log.info({ address: this.address }, 'rpc peer connected');
        this.flush();
        return;
      }
      case 'res':
      case 'err': {
        const entry = this.pending.get(msg.id);
        // Unknown ids are answers to calls that timed out meanwhile.
        if (entry === undefined || !entry.sent) return;
        if (msg.t === 'res') this.settle(entry, undefined, msg.r);
        else this.settle(entry, fromWireError(msg.code, msg.message));
        return;
      }
    }
  }

  private isExpectedPeer(nodeId: string): boolean {
    return this.options.expectedNodeId === undefined || nodeId === this.options.expectedNodeId;
  }

  /** Writes queued calls in order until the socket pushes back. */
  private flush(): void {
    for (const [id, entry] of this.queue) {
      if (this.state !== 'ready' || this.writeBlocked) return;
      this.queue.delete(id);
      this.write(entry);
    }
  }

  private write(entry: Pending): void {
    entry.sent = true;
    this.inflightCount++;
    this.writeFrame(entry.frame);
  }

  private writeRaw(msg: object): void {
    this.writeFrame(encodeFrame(this.packr, msg, this.options.maxFrameBytes));
  }

  private writeFrame(frame: Buffer): void {
    const socket = this.socket;
    if (socket === undefined) return;
    // Calls made in the same tick go out in one write (one syscall, one TCP segment).
    if (!this.corked) {
      this.corked = true;
      socket.cork();
      process.nextTick(() => {
        this.corked = false;
        socket.uncork();
      });
    }
    let flushed = socket.write(frame);
    if (this.checksummed) flushed = socket.write(frameChecksum(frame));
    if (!flushed) this.writeBlocked = true;
  }

  private drop(socket: Socket, reason: string, err?: unknown): void {
    if (this.socket !== socket) return;
    this.log.warn({ reason, err, address: this.address }, 'dropping rpc connection');
    socket.destroy();
  }

  private onClose(socket: Socket): void {
    if (this.socket !== socket) return;
    this.socket = undefined;
    this.options.timers.clearTimeout(this.stateTimer);
    const wasReady = this.state === 'ready';
    // Calls already written may or may not have run on the peer: fail them, never resend.
    for (const entry of [...this.pending.values()]) {
      if (entry.sent)
        this.settle(entry, unavailable('rpc connection lost', { method: entry.method }));
    }
    if (this.state === 'closed') return;
    if (wasReady) this.log.warn({ address: this.address }, 'rpc peer disconnected');
    const delay = this.reconnects.next();
    this.state = 'backoff';
    this.stateTimer = this.options.timers.setTimeout(() => {
      if (this.state === 'backoff') this.open();
    }, delay);
  }
}
