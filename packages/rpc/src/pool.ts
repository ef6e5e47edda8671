import { PeerClient } from './client';
import type { PeerClientOptions, PeerStats } from './client';
import type { RpcLogger } from './logger';

/** What every client of the pool shares; host, port and expectedNodeId come from `peer()`. */
export type PeerPoolOptions = Omit<PeerClientOptions, 'host' | 'port' | 'expectedNodeId'>;

/** A peer's RPC address: `host:port` (IPv6 as `[::1]:7001`) or its parts. */
export type PeerAddress = string | { readonly host: string; readonly port: number };

/** Parses `host:port` or `[v6]:port`; throws RangeError on anything else. */
export function parseAddress(address: PeerAddress): { host: string; port: number } {
  if (typeof address !== 'string') return { host: address.host, port: address.port };
  const match = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(address);
  const host = match?.[1] ?? match?.[2];
  const port = Number(match?.[3]);
  if (host === undefined || !(port > 0 && port < 65536)) {
    throw new RangeError(`bad peer address ${JSON.stringify(address)}`);
  }
  return { host, port };
}

/**
 * One PeerClient per peer node, keyed by node id. A peer that comes back at another address
 * gets a new client; the old one is closed (its pending calls fail with UNAVAILABLE).
 *
 * @example
 * const pool = new PeerPool({ nodeId: 'node-1', secret, logger });
 * await pool.peer('node-2', '10.0.0.2:7001').call(Deliver, req);
 * pool.remove('node-2'); // it left the cluster
 */
export class PeerPool {
  private readonly options: PeerPoolOptions;
  private readonly clients = new Map<string, PeerClient>();
  private readonly log: RpcLogger;
  private closed = false;

  constructor(options: PeerPoolOptions) {
    this.options = Object.freeze({ ...options });
    this.log = options.logger.child({ component: 'rpc-pool' });
  }

  /** The client of `nodeId`, created (and connecting) on first use or when its address changed. */
  peer(nodeId: string, address: PeerAddress): PeerClient {
    if (this.closed) throw new Error('PeerPool is closed');
    const { host, port } = parseAddress(address);
    const existing = this.clients.get(nodeId);
    if (existing !== undefined && existing.address === `${host}:${port}`) return existing;
    if (existing !== undefined) {
      this.log.info({ peer: nodeId, from: existing.address, to: `${host}:${port}` }, 'peer moved');
      void existing.close();
    }
    const client = new PeerClient({ ...this.options, host, port, expectedNodeId: nodeId });
    this.clients.set(nodeId, client);
    return client;
  }

  /** The client of `nodeId` if there is one. */
  get(nodeId: string): PeerClient | undefined {
    return this.clients.get(nodeId);
  }

  /** Closes and forgets the client of a node that left. */
  async remove(nodeId: string): Promise<void> {
    const client = this.clients.get(nodeId);
    if (client === undefined) return;
    this.clients.delete(nodeId);
    await client.close();
  }

  /** Per-peer counters, for metrics. */
  stats(): Record<string, PeerStats> {
    const out: Record<string, PeerStats> = {};
    for (const [id, client] of this.clients) out[id] = client.stats();
    return out;
  }

  async close(): Promise<void> {
    this.closed = true;
    const clients = [...this.clients.values()];
    this.clients.clear();
    await Promise.all(clients.map((c) => c.close()));
  }
}
