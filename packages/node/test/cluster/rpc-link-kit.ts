/**
 * Shared pieces of the tests of faults on the node-to-node RPC link (rpc-faults, corrupt-link):
 * two ring members where node-2's RPC port is reached only through a fault proxy, the SDK
 * users that chat across that link, the traffic they send and what is missing of it.
 */
import { jsonCodec } from '@chat/protocol';
import type { FaultProxy, SdkUser } from '@chat/testkit';
import { RawClient, TestCluster, freePort, sdkUser, startFaultProxy, waitFor } from '@chat/testkit';

export interface ProxiedLinkCluster {
  readonly cluster: TestCluster;
  /** Between node-1 and node-2's RPC port (node-2's CHAT_RPC_ADVERTISE). */
  readonly proxy: FaultProxy;
  /** node id -> exit code or signal, for every node process that exited. */
  readonly exits: Map<string, number | string>;
}

/**
 * Starts node-1 and node-2, both ring members, node-2 reachable over RPC only through a fault
 * proxy, and waits until the registry sees both live.
 */
export async function startProxiedLinkCluster(
  nodeEnv: Readonly<Record<string, string>>,
): Promise<ProxiedLinkCluster> {
  // Both are ring members; node-2 joins once it registers.
  const cluster = await TestCluster.start({ nodes: 1, members: 2, nodeEnv: { ...nodeEnv } });
  const rpcPort = await freePort();
  const proxy = await startFaultProxy({ target: `127.0.0.1:${rpcPort}` });
  await cluster.startNode('node-2', {
    CHAT_RPC_PORT: String(rpcPort),
    CHAT_RPC_ADVERTISE: proxy.address,
  });
  const exits = new Map<string, number | string>();
  for (const node of cluster.nodes.values())
    void node.exited.then((code) => exits.set(node.nodeId, code));
  await waitFor(async () => {
    const ring = await cluster.registryRing();
    expect(ring.nodes.filter((n) => n.live && n.member).map((n) => n.id)).toEqual([
      'node-1',
      'node-2',
    ]);
  }, 30_000);
  return { cluster, proxy, exits };
}

/** A chat between SDK users on both sides of the link. */
export interface LinkChat {
  readonly chatId: string;
  readonly members: SdkUser[];
}

/**
 * An SDK user routed by the registry, with a send deadline long enough to outlast the link's
 * faults (a blackhole, a run of corrupted frames) and the SDK's default request timeout.
 */
export function linkUser(registryUrl: string, id: string): SdkUser {
  return sdkUser(registryUrl, id, { requestTimeoutMs: 10_000, sendDeadlineMs: 45_000 });
}

/** A raw device of a user on `node` that never syncs: what it is pushed came over RPC. */
export async function linkObserver(
  cluster: TestCluster,
  node: string,
  prefix: string,
): Promise<{ id: string; device: RawClient }> {
  const [id] = await cluster.usersOn(node, 1, prefix);
  const device = await RawClient.ready({
    url: cluster.node(node).url,
    codec: jsonCodec,
    user: id!,
    autoAck: true,
  });
  return { id: id!, device };
}

/** `chatId:messageId`, what identifies a message across devices. */
export const messageKey = (chatId: string, messageId: string): string => `${chatId}:${messageId}`;

export interface LinkTrafficOptions {
  readonly chats: readonly LinkChat[];
  /** Sends the probes to `observer` in `probeChat`. */
  readonly probeSender: SdkUser;
  readonly probeChat: string;
  readonly observer: RawClient;
  /** Appended to every body (long bodies put flipped bytes in message text). */
  readonly padding?: string;
  /** Bound on the sends of one `run`. */
  readonly maxSendsPerRun?: number;
}

/** Acked messages across the link, and what the members have of them. */
export class LinkTraffic {
  /** The body of each acked message, by messageKey. */
  readonly bodies = new Map<string, string>();
  readonly acked: Array<{ key: string; chat: LinkChat; sender: SdkUser }> = [];
  /** Sends started by `run` (acked or not). */
  sends = 0;
  private failures = 0;
  private readonly pending: Array<Promise<void>> = [];

  constructor(private readonly o: LinkTrafficOptions) {}

  /** Sends `body` (padded); resolves with its key once acked. */
  async send(sender: SdkUser, chatId: string, body: string): Promise<string> {
    const text = `${body}${this.o.padding ?? ''}`;
    const { messageId } = await sender.client.send(chatId, text);
    const key = messageKey(chatId, messageId);
    this.bodies.set(key, text);
    return key;
  }

  /** One message every `everyMs` for `ms`, alternating chats and senders; bounded. */
  async run(ms: number, everyMs: number): Promise<void> {
    const { chats } = this.o;
    const until = Date.now() + ms;
    for (let k = 0; Date.now() < until && k < (this.o.maxSendsPerRun ?? 2000); k++) {
      const i = this.sends++;
      const chat = chats[i % chats.length]!;
      const sender = chat.members[Math.floor(i / chats.length) % chat.members.length]!;
      this.pending.push(
        this.send(sender, chat.chatId, `m${i}`).then(
          (key) => void this.acked.push({ key, chat, sender }),
          () => void this.failures++,
        ),
      );
      await new Promise((resolve) => setTimeout(resolve, everyMs));
    }
  }

  /** A message to the observer; resolves with how long it took to be pushed to it. */
  async probe(label: string, timeoutMs: number): Promise<number> {
    const started = Date.now();
    const key = await this.send(this.o.probeSender, this.o.probeChat, label);
    await this.o.observer.next(
      (f) => f.t === 'evt' && f.kind === 'message' && messageKey(f.chatId, f.messageId) === key,
      timeoutMs,
    );
    return Date.now() - started;
  }

  /** Waits for every send of `run`; how many of them failed. */
  async failed(): Promise<number> {
    await Promise.all(this.pending);
    return this.failures;
  }

  /** Deliveries of acked messages still missing at a member other than the sender. */
  missing(): number {
    let count = 0;
    for (const s of this.acked)
      for (const m of s.chat.members)
        if (
          m !== s.sender &&
          !m.events.some((e) => e.kind === 'message' && messageKey(e.chatId, e.messageId) === s.key)
        )
          count++;
    return count;
  }

  /**
   * One more message in every chat: forwards the link lost surface as seq gaps on the next
   * push, which the SDK syncs (the sending device has its message from the `ok`).
   */
  async sendFinalRound(): Promise<void> {
    for (const chat of this.o.chats) {
      const sender = chat.members[0]!;
      const key = await this.send(sender, chat.chatId, 'final');
      this.acked.push({ key, chat, sender });
    }
  }
}

/** Every user got each message once, and their seqs run 1, 2, 3... */
export function expectContiguousOnce(users: readonly SdkUser[]): void {
  for (const u of users) {
    const keys = u.events.flatMap((e) =>
      e.kind === 'message' ? [messageKey(e.chatId, e.messageId)] : [],
    );
    expect({ user: u.id, duplicates: keys.length - new Set(keys).size }).toEqual({
      user: u.id,
      duplicates: 0,
    });
    expect(u.events.map((e) => e.seq)).toEqual(u.events.map((_, i) => i + 1));
  }
}
