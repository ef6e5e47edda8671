/** Everyone connected to a test cluster for a rebalance (lean and SDK users), and what they saw. */
import { CloseCode } from '@chat/protocol';
import type { TestCluster } from './cluster';
import type { DeliverySample } from './delivery-samples';
import { deliverySamples } from './delivery-samples';
import { LeanUser } from './lean-user';
import { prng } from './prng';
import { registryOwners, registryResolver, ringOf } from './ring-routes';
import { AT_CONNECT, watchSdk } from './sdk-watch';
import type { MoveSeen, SdkWatch } from './sdk-watch';
import type { SdkUser, SentMessage, TrafficChat } from './traffic';
import { createChats, deliveryProblems, sdkUser, seqLag } from './traffic';
import { waitFor } from './wait';

/** Picks ids from `candidates` so that about `fraction` of `count` are movers. */
export function pickMix(
  candidates: readonly string[],
  isMover: (user: string) => boolean,
  count: number,
  fraction: number,
): string[] {
  const wantMovers = Math.round(count * fraction);
  const movers = candidates.filter(isMover).slice(0, wantMovers);
  const stayers = candidates.filter((u) => !isMover(u)).slice(0, count - movers.length);
  if (movers.length + stayers.length < count) throw new Error('not enough candidates');
  return [...movers, ...stayers];
}

export interface PopulationOptions {
  /** Lean users `${prefix}-0..count-1`, connected straight to their owner on `members`. */
  readonly leanPrefix: string;
  readonly leanCount: number;
  /** SDK users (routed by the registry), in the order chats pair them up. */
  readonly sdkIds: readonly string[];
  /** Ring members at the start, to find the lean users' owners. */
  readonly members: readonly string[];
  readonly chats: { readonly pairs: number; readonly groups: number; readonly groupSize: number };
  readonly seed: number;
}

/** Everyone connected to a test cluster, and what they observed. */
export class Population {
  readonly watches = new Map<string, SdkWatch>();
  readonly acked: SentMessage[] = [];
  chats: TrafficChat[] = [];

  private constructor(
    private readonly cluster: TestCluster,
    readonly lean: readonly LeanUser[],
    readonly sdk: readonly SdkUser[],
  ) {
    for (const u of sdk) this.watches.set(u.id, watchSdk(u));
  }

  /** Connects the SDK users, creates their chats, then connects the lean users at a bounded pace. */
  static async start(cluster: TestCluster, options: PopulationOptions): Promise<Population> {
    const sdk = options.sdkIds.map((id) => sdkUser(cluster.registryUrl, id));
    const lean = Array.from(
      { length: options.leanCount },
      (_, i) =>
        new LeanUser(`${options.leanPrefix}-${i}`, {
          resolve: registryResolver(() => cluster.registryUrl),
        }),
    );
    const population = new Population(cluster, lean, sdk);
    // SDK users connect spread among the lean ones: a node drains its users in the order they
    // connected, so the measured SDK users move all through a drain, not first.
    const ring = ringOf(options.members);
    const batches = Math.max(1, Math.ceil(lean.length / 100));
    const sdkPerBatch = Math.ceil(sdk.length / batches);
    for (let b = 0; b < batches; b++) {
      for (const u of lean.slice(b * 100, (b + 1) * 100))
        u.start(cluster.node(ring.owner(u.user)!).url);
      await Promise.all(
        sdk.slice(b * sdkPerBatch, (b + 1) * sdkPerBatch).map((u) => u.client.connect()),
      );
      await new Promise((resolve) => setTimeout(resolve, 100)); // pacing, ~1,000 connects/s
    }
    population.chats = await createChats(sdk, options.chats, prng(options.seed));
    await waitFor(() => expect(population.misplaced(options.members)).toEqual([]), 30_000, 100);
    return population;
  }

  allUsers(): string[] {
    return [...this.lean.map((u) => u.user), ...this.sdk.map((u) => u.id)];
  }

  movesSince(since: number): MoveSeen[] {
    return [
      ...this.lean.flatMap((u) => u.moves),
      ...[...this.watches.values()].flatMap((w) => w.moves),
    ].filter((m) => m.at >= since);
  }

  /** The node each user is connected to now (lean: welcomed socket; SDK: ready state). */
  connectedNodes(): Map<string, string | null> {
    const out = new Map<string, string | null>();
    for (const u of this.lean) out.set(u.user, u.connectedTo);
    for (const u of this.sdk)
      out.set(u.id, u.client.state.status === 'ready' ? (u.client.state.node ?? null) : null);
    return out;
  }

  /** Users not connected to their owner on the ring of `members` (first 10). */
  misplaced(members: readonly string[]): string[] {
    const ring = ringOf(members);
    return [...this.connectedNodes()]
      .filter(([u, node]) => node !== ring.owner(u))
      .slice(0, 10)
      .map(([u, node]) => `${u} on ${node}, owner ${ring.owner(u)}`);
  }

  /** Users not connected to the node the registry names as their owner (first 10). */
  async notOnRegistryOwner(): Promise<string[]> {
    const owners = await registryOwners(this.cluster.registryUrl, this.allUsers());
    return [...this.connectedNodes()]
      .filter(([u, node]) => node !== owners.get(u))
      .slice(0, 10)
      .map(([u, node]) => `${u} on ${node}, registry says ${owners.get(u)}`);
  }

  /** Users who lost a connection since `since` (lean: any close; SDK: left `ready`). */
  disconnectedSince(since: number): Map<string, string> {
    const out = new Map<string, string>();
    for (const u of this.lean) {
      const c = u.closes.find((x) => x.at >= since);
      if (c !== undefined) out.set(u.user, `closed ${c.code} on ${c.node}`);
    }
    for (const u of this.sdk) {
      const s = u.states.find((x) => x.at >= since && x.status !== 'ready');
      if (s !== undefined) out.set(u.id, `SDK ${s.status}`);
    }
    return out;
  }

  /**
   * Disconnections since `since` against the ring diff: the users told `moved` are exactly the
   * movers, each to its new owner and closing with 4001, and nobody else lost a connection.
   */
  disconnectProblems(
    since: number,
    diff: ReadonlyMap<string, { from: string; to: string }>,
  ): string[] {
    const problems: string[] = [];
    const moves = this.movesSince(since);
    const moved = new Set(moves.map((m) => m.user));
    for (const user of diff.keys()) if (!moved.has(user)) problems.push(`${user}: never moved`);
    for (const user of moved) if (!diff.has(user)) problems.push(`${user}: moved, not a mover`);
    for (const m of moves) {
      const d = diff.get(m.user);
      // A node that had not seen the new ring yet may send an arriving mover back once: that is
      // part of the mover's reconnect, not a disconnection (drainReport counts them).
      if (m.from === AT_CONNECT) continue;
      if (d !== undefined && (m.from !== d.from || m.to !== d.to))
        problems.push(`${m.user}: moved ${m.from} -> ${m.to}, ring diff says ${d.from} -> ${d.to}`);
    }
    for (const [user, what] of this.disconnectedSince(since))
      if (!diff.has(user)) problems.push(`${user}: ${what}, not a mover`);
    for (const u of this.lean) {
      for (const c of u.closes.filter((x) => x.at >= since && x.code !== CloseCode.MOVED))
        problems.push(`${u.user}: closed ${c.code}, not ${CloseCode.MOVED}`);
    }
    return problems.slice(0, 30);
  }

  /** Waits until every acked message reached every member once and the SDKs caught up. */
  async settle(): Promise<void> {
    await waitFor(() => expect(deliveryProblems(this.acked, this.sdk)).toEqual([]), 20_000, 100);
    await waitFor(
      async () => expect(await seqLag(this.cluster.sql, this.sdk)).toEqual([]),
      10_000,
      100,
    );
  }

  /**
   * Send-to-deliver latencies to the given receivers of messages sent in [from, to), by the
   * given senders (default: anyone). A sender that is itself moving holds its sends until it
   * has reconnected, which is send latency, not delivery.
   */
  samples(
    from: number,
    to: number,
    receivers: ReadonlySet<string>,
    senders?: ReadonlySet<string>,
  ): DeliverySample[] {
    return deliverySamples(
      this.acked,
      this.watches,
      from,
      to,
      (u) => receivers.has(u),
      (u) => senders === undefined || senders.has(u),
    );
  }

  async close(): Promise<void> {
    for (const u of this.lean) u.stop();
    await Promise.all(this.sdk.map((u) => u.client.close()));
  }
}
