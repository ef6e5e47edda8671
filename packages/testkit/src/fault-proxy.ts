/**
 * A loopback TCP fault proxy (this kernel has no netem): put it between two nodes, or between a
 * node and etcd or Postgres, and inject link faults while the test runs.
 *
 * - `setDelay(ms)`: every chunk is delivered `ms` later, in order, in both directions.
 * - `resetAll()`: every current connection is torn down with a TCP RST on both sides.
 * - `blackhole(true)`: connections are accepted and kept, but every byte in both directions is
 *   silently dropped (FIN and RST too, like a partition); `blackhole(false)` heals it, and a side
 *   whose peer went away meanwhile then gets an RST, as a real peer's kernel would answer.
 * - `corrupt(p)`: each forwarded chunk has, with probability p, one random byte flipped
 *   (`true` = 1, `false` = 0).
 * - `close()`: every connection is closed (FIN on both sides), then the listener.
 *
 * @example
 * const proxy = await startFaultProxy({ target: '127.0.0.1:5432' });
 * const db = new Pool({ connectionString: `postgres://u@${proxy.address}/db` });
 * proxy.setDelay(200);
 * proxy.blackhole(true);
 * proxy.blackhole(false);
 * await proxy.close();
 */
import { connect, createServer } from 'node:net';
import type { AddressInfo, Socket } from 'node:net';

export interface FaultProxyOptions {
  /** Where to forward: `host:port`, or a URL such as `http://127.0.0.1:2379`. */
  readonly target: string;
  /** Port to listen on (loopback); default 0, a free one. */
  readonly listenPort?: number;
  /** Random source in [0, 1) for corruption; default Math.random. */
  readonly random?: () => number;
}

export interface FaultProxyStats {
  /** Connections accepted since the start. */
  readonly accepted: number;
  /** Connections currently open (downstream side). */
  readonly active: number;
  /** Bytes forwarded client -> target. */
  readonly bytesUp: number;
  /** Bytes forwarded target -> client. */
  readonly bytesDown: number;
  /** Bytes dropped by the blackhole. */
  readonly bytesDropped: number;
  /** Chunks that had a byte flipped. */
  readonly chunksCorrupted: number;
  /** Connections torn down by resetAll (or reset on heal). */
  readonly resets: number;
}

export interface FaultProxy {
  /** `127.0.0.1:<port>`. */
  readonly address: string;
  readonly port: number;
  /** Delay of every chunk in both directions, in ms (0 = none). */
  setDelay(ms: number): void;
  /** Destroys every current connection with RST, both sides. New connections still work. */
  resetAll(): void;
  /** Drops every byte in both directions while on; connections stay open. */
  blackhole(on: boolean): void;
  /** Flips one random byte of each chunk with this probability (true = 1, false = 0). */
  corrupt(on: boolean | number): void;
  readonly stats: FaultProxyStats;
  close(): Promise<void>;
}

/** Largest number of bytes held in one direction's delay queue before the source is paused. */
const MAX_QUEUED_BYTES = 1 << 20;

interface Item {
  /** A chunk, or null for the end of the stream (FIN). */
  readonly data: Buffer | null;
  readonly due: number;
}

/** One direction of one connection: source -> destination through a delay queue. */
class Pipe {
  private readonly queue: Item[] = [];
  private queuedBytes = 0;
  private lastDue = 0;
  private timer: NodeJS.Timeout | undefined;
  private pausedForQueue = false;
  private pausedForDrain = false;
  private ended = false;

  constructor(
    private readonly src: Socket,
    private readonly dst: Socket,
    private readonly proxy: ProxyState,
    private readonly onBytes: (n: number) => void,
    private readonly onLostEnd: () => void,
  ) {
    src.on('data', (chunk: Buffer) => this.offer(chunk));
    src.on('end', () => this.offer(null));
    dst.on('drain', () => {
      this.pausedForDrain = false;
      this.updateFlow();
    });
  }

  /** Whether everything received has been written on (or dropped). */
  get idle(): boolean {
    return this.queue.length === 0;
  }

  private offer(data: Buffer | null): void {
    if (this.proxy.blackholed) {
      if (data !== null) this.proxy.bytesDropped += data.length;
      else this.onLostEnd();
      return;
    }
    const now = Date.now();
    const delay = this.proxy.delayMs;
    if (delay <= 0 && this.queue.length === 0) {
      this.write(data);
      return;
    }
    const due = Math.max(now + delay, this.lastDue);
    this.lastDue = due;
    this.queue.push({ data, due });
    if (data !== null) this.queuedBytes += data.length;
    this.updateFlow();
    this.arm();
  }

  /** Drops whatever waits in the queue (blackhole switched on, connection torn down). */
  clear(): void {
    this.queue.length = 0;
    this.queuedBytes = 0;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.updateFlow();
  }

  private arm(): void {
    if (this.timer !== undefined) return;
    const head = this.queue[0];
    if (head === undefined) return;
    this.timer = setTimeout(() => this.flush(), Math.max(0, head.due - Date.now()));
  }

  private flush(): void {
    this.timer = undefined;
    const now = Date.now();
    while (this.queue.length > 0 && this.queue[0]!.due <= now) {
      const item = this.queue.shift()!;
      if (item.data !== null) this.queuedBytes -= item.data.length;
      this.write(item.data);
    }
    this.updateFlow();
    this.arm();
  }

  private write(data: Buffer | null): void {
    if (this.dst.destroyed || this.ended) return;
    if (data === null) {
      this.ended = true;
      this.dst.end();
      return;
    }
    const out = this.proxy.maybeCorrupt(data);
    this.onBytes(out.length);
    if (!this.dst.write(out)) {
      this.pausedForDrain = true;
      this.updateFlow();
    }
  }

  private updateFlow(): void {
    this.pausedForQueue = this.queuedBytes > MAX_QUEUED_BYTES;
    if (this.src.destroyed) return;
    const stop = this.pausedForQueue || this.pausedForDrain;
    if (stop && !this.src.isPaused()) this.src.pause();
    else if (!stop && this.src.isPaused()) this.src.resume();
  }
}

/** Mutable settings and counters shared by every connection of one proxy. */
class ProxyState {
  delayMs = 0;
  blackholed = false;
  corruptProbability = 0;
  accepted = 0;
  bytesUp = 0;
  bytesDown = 0;
  bytesDropped = 0;
  chunksCorrupted = 0;
  resets = 0;

  constructor(private readonly random: () => number) {}

  maybeCorrupt(data: Buffer): Buffer {
    if (this.corruptProbability <= 0 || data.length === 0) return data;
    if (this.random() >= this.corruptProbability) return data;
    const copy = Buffer.from(data);
    const at = Math.floor(this.random() * copy.length) % copy.length;
    // XOR with a non-zero mask, so the byte really changes.
    copy[at] = copy[at]! ^ (1 + Math.floor(this.random() * 255));
    this.chunksCorrupted++;
    return copy;
  }
}

/** A proxied connection: the accepted client socket and its upstream socket. */
class Connection {
  readonly up: Pipe;
  readonly down: Pipe;
  /** A side closed (or sent FIN) while blackholed: the other side gets an RST on heal. */
  orphaned = false;

  constructor(
    readonly client: Socket,
    readonly upstream: Socket,
    private readonly proxy: ProxyState,
    private readonly onGone: (c: Connection) => void,
  ) {
    const lostEnd = (): void => void (this.orphaned = true);
    this.up = new Pipe(client, upstream, proxy, (n) => (proxy.bytesUp += n), lostEnd);
    this.down = new Pipe(upstream, client, proxy, (n) => (proxy.bytesDown += n), lostEnd);
    client.on('error', () => undefined);
    upstream.on('error', () => undefined);
    client.once('close', (hadError) => this.sideClosed(upstream, hadError));
    upstream.once('close', (hadError) => this.sideClosed(client, hadError));
  }

  /** Tears both sides down with RST. */
  reset(): void {
    this.up.clear();
    this.down.clear();
    resetSocket(this.client);
    resetSocket(this.upstream);
  }

  /**
   * Closes both sides without an RST, when the proxy itself goes away. (An RST here,
   * resetAndDestroy, could leave Node 20 spinning at 100 % CPU in its exit-time handle cleanup
   * after the test run: seen with jest running the tests in band, in ci-local.)
   */
  destroy(): void {
    this.up.clear();
    this.down.clear();
    this.client.destroy();
    this.upstream.destroy();
  }

  private sideClosed(other: Socket, hadError: boolean): void {
    if (this.client.destroyed && this.upstream.destroyed) {
      this.up.clear();
      this.down.clear();
      this.onGone(this);
      return;
    }
    if (this.proxy.blackholed) {
      // A partitioned peer never hears about it, until the link heals.
      this.orphaned = true;
      return;
    }
    if (hadError) {
      resetSocket(other);
      return;
    }
    // A clean close: let the queued bytes (and the FIN) go out first, then close.
    const finish = (): void => {
      if (this.up.idle && this.down.idle) other.destroySoon();
      else setTimeout(finish, 5).unref();
    };
    finish();
  }
}

function resetSocket(socket: Socket): void {
  if (socket.destroyed) return;
  try {
    socket.resetAndDestroy();
  } catch {
    socket.destroy();
  }
}

/** Parses `host:port`, `[v6]:port` or a URL with host and port. */
function parseTarget(target: string): { host: string; port: number } {
  if (target.includes('://')) {
    const url = new URL(target);
    return { host: url.hostname.replace(/^\[|\]$/g, ''), port: Number(url.port) };
  }
  const match = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(target);
  const host = match?.[1] ?? match?.[2];
  const port = Number(match?.[3]);
  if (host === undefined || !(port > 0 && port < 65536)) {
    throw new RangeError(`fault proxy: bad target ${JSON.stringify(target)}`);
  }
  return { host, port };
}

/** Starts a fault proxy on a loopback port forwarding to `target`. */
export async function startFaultProxy(options: FaultProxyOptions): Promise<FaultProxy> {
  const { host, port: targetPort } = parseTarget(options.target);
  const state = new ProxyState(options.random ?? Math.random);
  const connections = new Set<Connection>();
  let closed = false;

  const server = createServer({ allowHalfOpen: true }, (client) => {
    client.on('error', () => undefined);
    if (closed) {
      resetSocket(client);
      return;
    }
    state.accepted++;
    client.setNoDelay(true);
    const upstream = connect({ host, port: targetPort, allowHalfOpen: true });
    upstream.setNoDelay(true);
    const conn = new Connection(client, upstream, state, (c) => connections.delete(c));
    connections.add(conn);
    // A refused or failed upstream connect resets the client (via Connection.sideClosed).
  });
  server.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.listenPort ?? 0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;

  return {
    address: `127.0.0.1:${port}`,
    port,
    setDelay(ms: number) {
      if (!(Number.isFinite(ms) && ms >= 0)) throw new RangeError('delay must be >= 0');
      state.delayMs = ms;
    },
    resetAll() {
      for (const conn of connections) {
        state.resets++;
        conn.reset();
      }
    },
    blackhole(on: boolean) {
      if (on === state.blackholed) return;
      state.blackholed = on;
      if (on) {
        for (const conn of connections) {
          conn.up.clear();
          conn.down.clear();
        }
        return;
      }
      for (const conn of connections) {
        if (!conn.orphaned) continue;
        state.resets++;
        conn.reset();
      }
    },
    corrupt(on: boolean | number) {
      const p = typeof on === 'number' ? on : on ? 1 : 0;
      if (!(p >= 0 && p <= 1)) throw new RangeError('corruption probability must be in [0, 1]');
      state.corruptProbability = p;
    },
    get stats(): FaultProxyStats {
      return {
        accepted: state.accepted,
        active: connections.size,
        bytesUp: state.bytesUp,
        bytesDown: state.bytesDown,
        bytesDropped: state.bytesDropped,
        chunksCorrupted: state.chunksCorrupted,
        resets: state.resets,
      };
    },
    close() {
      closed = true;
      for (const conn of connections) conn.destroy();
      connections.clear();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
