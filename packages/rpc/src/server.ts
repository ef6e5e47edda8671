import { randomBytes } from 'node:crypto';
import type { AddressInfo, Server, Socket } from 'node:net';
import { ChatError } from '@chat/protocol';
import { toWireError } from './errors';
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
import type { AuthMsg, RequestMsg } from './messages';
import { isValidNodeId, parseClientMsg } from './messages';
import type { Method } from './method';
import { channelBinding, createTransportServer } from './transport';
import type { RpcTls } from './transport';

/** The authenticated peer a request came from. */
export interface PeerInfo {
  readonly nodeId: string;
  readonly remoteAddress: string | undefined;
}

export type Handler<Req, Res> = (req: Req, peer: PeerInfo) => Promise<Res> | Res;

export interface RpcServerOptions {
  /** This node's id, announced to peers once they are authenticated. */
  readonly nodeId: string;
  /** The shared cluster secret (CHAT_CLUSTER_SECRET); both sides prove they know it. */
  readonly secret: string;
  readonly logger: RpcLogger;
  /** Mutual TLS with the cluster CA; absent: plain TCP. */
  readonly tls?: RpcTls;
  /** Largest frame accepted after authentication, in bytes. Default 4 MiB. */
  readonly maxFrameBytes?: number;
  /** Largest frame accepted before authentication, in bytes. Default 1 KiB. */
  readonly maxHandshakeFrameBytes?: number;
  /** Time a new connection has to authenticate, in ms. Default 5000. */
  readonly authTimeoutMs?: number;
  /**
   * Requests of one connection being handled at once; past it the server stops reading that
   * socket until some are answered. Default 4096.
   */
  readonly maxInflightPerConnection?: number;
  readonly timers?: Timers;
}

type ResolvedServerOptions = Required<Omit<RpcServerOptions, 'tls'>>;

/** Opaque handler table entry: the request type is checked at `handle`, not at dispatch. */
type AnyHandler = (req: unknown, peer: PeerInfo) => Promise<unknown> | unknown;

/**
 * The RPC server of a chat node. Peers and server authenticate each other with the cluster
 * secret (handshake.ts) before any request is processed; with `tls`, over mutual TLS. Handlers' ChatErrors go back to the caller with their code; anything
 * else goes back as INTERNAL and is logged here.
 *
 * @example
 * const server = new RpcServer({ nodeId: 'node-1', secret, logger });
 * server.handle(Deliver, async (req, peer) => ({ delivered: req.deliveries.length }));
 * await server.listen({ host: '127.0.0.1', port: 0 });
 * console.log(server.port);
 */
export class RpcServer {
  private readonly options: ResolvedServerOptions;
  private readonly handlers = new Map<string, AnyHandler>();
  private readonly connections = new Set<ServerConnection>();
  private readonly server: Server;
  private readonly log: RpcLogger;
  private readonly tls: boolean;
  private boundPort: number | undefined;
  private closed = false;

  constructor(options: RpcServerOptions) {
    if (options.secret.length === 0) throw new RangeError('the cluster secret must not be empty');
    if (!isValidNodeId(options.nodeId)) throw new RangeError(`bad node id ${options.nodeId}`);
    const { tls, ...rest } = options;
    this.tls = tls !== undefined;
    this.options = Object.freeze({
      maxFrameBytes: DEFAULT_MAX_FRAME_BYTES,
      maxHandshakeFrameBytes: 1024,
      authTimeoutMs: 5000,
      maxInflightPerConnection: 4096,
      timers: realTimers,
      ...rest,
    });
    this.log = options.logger.child({ component: 'rpc-server', nodeId: options.nodeId });
    this.server = createTransportServer(tls, (socket) => this.accept(socket));
    this.server.on('error', (err) => this.log.error({ err }, 'rpc server error'));
    // A dialer without a certificate from the cluster CA never reaches accept().
    this.server.on('tlsClientError', (err: Error, socket: Socket) =>
      this.log.warn(
        {
          reason: 'TLS handshake failed',
          err,
          remote: `${socket.remoteAddress}:${socket.remotePort}`,
        },
        'refused rpc connection',
      ),
    );
  }

  /** Registers the handler of a method; a second handler for the same name replaces the first. */
  handle<Req, Res>(method: Method<Req, Res>, handler: Handler<Req, Res>): void {
    this.handlers.set(method.name, handler as AnyHandler);
  }

  /** Starts listening; port 0 picks a free port, read it from `port` afterwards. */
  async listen(address: { host?: string; port: number }): Promise<void> {
    const host = address.host ?? '127.0.0.1';
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      this.server.once('error', onError);
      this.server.listen(address.port, host, () => {
        this.server.off('error', onError);
        resolve();
      });
    });
    this.boundPort = (this.server.address() as AddressInfo).port;
    this.log.info({ host, port: this.boundPort, tls: this.tls }, 'rpc server listening');
  }

  /** The bound port; throws before `listen` resolved. */
  get port(): number {
    if (this.boundPort === undefined) throw new Error('RpcServer is not listening');
    return this.boundPort;
  }

  /** Authenticated connections currently open. */
  get connectionCount(): number {
    let n = 0;
    for (const c of this.connections) if (c.authenticated) n++;
    return n;
  }

  /** Stops accepting, drops every connection (their pending calls fail on the callers' side). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const c of this.connections) c.destroy('server closing');
    if (!this.server.listening) return;
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(socket: Socket): void {
    if (this.closed) {
      socket.destroy();
      return;
    }
    const conn = new ServerConnection(socket, this.options, this.log, (m) => this.handlers.get(m));
    this.connections.add(conn);
    socket.once('close', () => this.connections.delete(conn));
  }
}

/** One accepted socket: handshake, then request dispatch with read backpressure. */
class ServerConnection {
  authenticated = false;
  private peer: PeerInfo | undefined;
  private readonly nonce = randomBytes(NONCE_BYTES);
  private readonly packr = createPackr();
  private readonly decoder: FrameDecoder;
  private readonly authTimer: unknown;
  private inflight = 0;
  private writeBlocked = false;
  private corked = false;
  private closed = false;
  /** Frames after `ready` carry a CRC-32 trailer (the dialer took the offer in `auth`). */
  private checksummed = false;
  private log: RpcLogger;

  constructor(
    private readonly socket: Socket,
    private readonly options: ResolvedServerOptions,
    parentLog: RpcLogger,
    private readonly lookup: (method: string) => AnyHandler | undefined,
  ) {
    this.log = parentLog.child({ remote: `${socket.remoteAddress}:${socket.remotePort}` });
    this.decoder = new FrameDecoder(this.packr, { maxFrameBytes: options.maxHandshakeFrameBytes });
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => this.log.debug({ err }, 'rpc connection error'));
    socket.on('close', () => this.onClose());
    socket.on('drain', () => {
      this.writeBlocked = false;
      this.updateFlow();
    });
    this.authTimer = options.timers.setTimeout(() => {
      if (!this.authenticated) this.destroy('no authentication in time');
    }, options.authTimeoutMs);
    this.send({
      t: 'hello',
      nodeId: options.nodeId,
      nonce: this.nonce,
      crc32: true,
      crc32Bound: true,
    });
  }

  destroy(reason: string, err?: unknown, context: Record<string, unknown> = {}): void {
    if (this.closed) return;
    this.log.warn({ reason, err, peer: this.peer?.nodeId, ...context }, 'closing rpc connection');
    this.closed = true;
    this.socket.destroy();
  }

  private onClose(): void {
    this.closed = true;
    this.options.timers.clearTimeout(this.authTimer);
  }

  private onData(chunk: Buffer): void {
    let values: unknown[];
    try {
      values = this.decoder.push(chunk);
    } catch (err) {
      this.destroy(err instanceof FrameError ? `bad frame: ${err.reason}` : 'bad frame', err);
      return;
    }
    for (const value of values) {
      if (this.closed) return;
      const msg = parseClientMsg(value);
      if (msg === undefined) {
        this.destroy('malformed message');
        return;
      }
      if (!this.authenticated) {
        if (msg.t !== 'auth') {
          this.destroy('request before authentication');
          return;
        }
        this.authenticate(msg);
      } else if (msg.t === 'req') {
        this.dispatch(msg);
      } else {
        this.destroy('unexpected auth after authentication');
        return;
      }
    }
  }

  /**
   * Checks the dialer's proof over this connection's transcript, then answers with this
   * server's own proof, so that the dialer knows it reached a holder of the secret too.
   */
  private authenticate(msg: AuthMsg): void {
    const transcript: HandshakeTranscript = {
      dialerId: msg.nodeId,
      listenerId: this.options.nodeId,
      dialerNonce: msg.nonce,
      listenerNonce: this.nonce,
      channelBinding: channelBinding(this.socket),
      // What this listener offered (always checksums), when the dialer binds it: a dialer that
      // saw the offer flipped off proves `false` and is refused. A dialer from before binding
      // (no `crc32Bound`) proves as it always did.
      ...(msg.crc32Bound === true ? { checksums: true } : {}),
    };
    if (!verifyHandshakeProof(this.options.secret, 'dialer', transcript, msg.proof)) {
      // A wrong secret, or a proof made for another connection (replayed or relayed).
      this.destroy('wrong cluster secret or a proof not made for this connection', undefined, {
        claimedPeer: msg.nodeId,
      });
      return;
    }
    this.authenticated = true;
    this.options.timers.clearTimeout(this.authTimer);
    this.peer = Object.freeze({ nodeId: msg.nodeId, remoteAddress: this.socket.remoteAddress });
    this.log = this.log.child({ peer: msg.nodeId });
    this.decoder.setMaxFrameBytes(this.options.maxFrameBytes);
    this.send({
      t: 'ready',
      nodeId: this.options.nodeId,
      proof: handshakeProof(this.options.secret, 'listener', transcript),
    });
    // The dialer writes nothing between `auth` and our `ready`: no frame in between to misread.
    if (msg.crc32 === true) {
      this.checksummed = true;
      this.decoder.expectChecksums();
    }
    this.log.debug({}, 'rpc peer authenticated');
  }

  private dispatch(req: RequestMsg): void {
    const peer = this.peer;
    if (peer === undefined) return;
    const handler = this.lookup(req.m);
    if (handler === undefined) {
      this.reply(req, undefined, new ChatError('NOT_FOUND', `unknown rpc method ${req.m}`));
      return;
    }
    this.inflight++;
    this.updateFlow();
    let pending: Promise<unknown>;
    try {
      pending = Promise.resolve(handler(req.p, peer));
    } catch (err) {
      pending = Promise.reject(err);
    }
    pending.then(
      (result) => this.finish(req, result, undefined),
      (err: unknown) => this.finish(req, undefined, err ?? new Error('rejected without a reason')),
    );
  }

  private finish(req: RequestMsg, result: unknown, err: unknown): void {
    this.inflight--;
    this.reply(req, result, err);
    this.updateFlow();
  }

  private reply(req: RequestMsg, result: unknown, err: unknown): void {
    if (this.closed) return;
    if (err !== undefined) {
      if (!(err instanceof ChatError)) {
        this.log.error({ err, method: req.m }, 'rpc handler failed');
      }
      this.send({ t: 'err', id: req.id, ...toWireError(err) });
      return;
    }
    try {
      this.send({ t: 'res', id: req.id, r: result }, true);
    } catch (e) {
      const tooLarge = e instanceof FrameError;
      this.log.error({ err: e, method: req.m }, 'rpc response not encodable');
      this.send({
        t: 'err',
        id: req.id,
        code: tooLarge ? 'TOO_LARGE' : 'INTERNAL',
        message: tooLarge ? 'response too large' : 'response not encodable',
      });
    }
  }

  /** Writes one message; with `rethrow` an encoding failure is the caller's to handle. */
  private send(msg: object, rethrow = false): void {
    if (this.closed) return;
    let frame: Buffer;
    try {
      frame = encodeFrame(this.packr, msg, this.options.maxFrameBytes);
    } catch (err) {
      if (rethrow) throw err;
      this.destroy('could not encode a message', err);
      return;
    }
    // Responses finished in the same tick go out in one write.
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(() => {
        this.corked = false;
        this.socket.uncork();
      });
    }
    let flushed = this.socket.write(frame);
    if (this.checksummed) flushed = this.socket.write(frameChecksum(frame));
    if (!flushed) {
      this.writeBlocked = true;
      this.updateFlow();
    }
  }

  /** Stops reading while the peer does not read our answers or too many requests are running. */
  private updateFlow(): void {
    if (this.closed) return;
    const stop = this.writeBlocked || this.inflight >= this.options.maxInflightPerConnection;
    if (stop && !this.socket.isPaused()) this.socket.pause();
    else if (!stop && this.socket.isPaused()) this.socket.resume();
  }
}
