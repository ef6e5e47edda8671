/**
 * `/metrics` and `/readyz` on a running cluster: counters move under traffic (messages in and
 * out, latencies, group commits, RPC per peer) and during a drain (moves, drain progress, ring
 * epoch); the registry counts its requests and follows the ring.
 */
import { jsonCodec } from '@chat/protocol';
import { RawClient, TestCluster, waitFor } from '@chat/testkit';
import type { Scrape } from './prom-text';
import { conventionProblems, has, scrape, scrapeText, total } from './prom-text';

let cluster: TestCluster;
const clients: RawClient[] = [];
beforeAll(async () => {
  // node-3 runs but is not a member until the drain test adds it; drains move 5 users/s so
  // the test can look while one is running.
  cluster = await TestCluster.start({ nodes: 3, members: 2, nodeEnv: { CHAT_DRAIN_RATE: '5' } });
});
afterAll(async () => {
  await Promise.allSettled(clients.map((c) => c.close()));
  await cluster.close();
});

async function scrapeAll(): Promise<Map<string, Scrape>> {
  const out = new Map<string, Scrape>();
  for (const [id, node] of cluster.nodes) out.set(id, await scrape(node.internalUrl));
  return out;
}

function sum(scrapes: Map<string, Scrape>, name: string): number {
  let s = 0;
  for (const one of scrapes.values()) s += total(one, name);
  return s;
}

async function connect(user: string): Promise<{ client: RawClient; node: string }> {
  const route = await cluster.route(user);
  const client = await RawClient.ready({ url: route.url, codec: jsonCodec, user, autoAck: true });
  clients.push(client);
  return { client, node: route.node };
}

describe('metrics and readiness', () => {
  it('are served by every node and the registry', async () => {
    for (const node of cluster.nodes.values()) {
      const ready = await fetch(`${node.httpUrl}/readyz`);
      expect(ready.status).toBe(200);
      expect(await ready.json()).toEqual({
        ready: true,
        checks: { cluster: 'ok', postgres: 'ok' },
      });
      expect((await fetch(`${node.httpUrl}/healthz`)).status).toBe(200);
    }
    expect((await fetch(`${cluster.registryUrl}/readyz`)).status).toBe(200);
    const registry = await scrape(cluster.registryInternalUrl);
    expect(total(registry, 'chat_registry_live_members')).toBe(2);
    expect(total(registry, 'chat_registry_ring_epoch')).toBeGreaterThan(0);
    expect(has(registry, 'process_cpu_user_seconds_total')).toBe(true);
    // Prometheus' naming conventions on what is served (prom-text.ts), and the build info.
    for (const url of [
      cluster.registryInternalUrl,
      ...[...cluster.nodes.values()].map((n) => n.internalUrl),
    ]) {
      const text = await scrapeText(url);
      expect({ url, problems: conventionProblems(text) }).toEqual({ url, problems: [] });
      expect(text).toMatch(
        /^chat_build_info\{version="[^"]+",node_version="[^"]+",protocol="v1"[,}].* 1$/m,
      );
    }
  });

  it('count messages, latencies, group commits and RPC per peer under traffic', async () => {
    const registryBefore = await scrape(cluster.registryInternalUrl);
    // A sender and a recipient on different nodes, so the message crosses RPC.
    const alice = await connect('m-alice');
    let bobId = '';
    for (let i = 0; bobId === ''; i++) {
      const route = await cluster.route(`m-bob${i}`);
      if (route.node !== alice.node) bobId = `m-bob${i}`;
    }
    const bob = await connect(bobId);
    const before = await scrapeAll();

    const { chatId } = await alice.client.ok({ t: 'createChat', members: [bobId] });
    const sends = 20;
    await Promise.all(
      Array.from({ length: sends }, (_, i) =>
        alice.client.ok({ t: 'send', chatId, clientMsgId: `c${i}`, body: `hi ${i}` }),
      ),
    );
    await waitFor(() =>
      expect(bob.client.events().filter((e) => e.kind === 'message')).toHaveLength(sends),
    );

    await waitFor(async () => {
      const after = await scrapeAll();
      const a = (name: string, having = ''): number =>
        total(after.get(alice.node)!, name, having) - total(before.get(alice.node)!, name, having);
      const b = (name: string): number =>
        total(after.get(bob.node)!, name) - total(before.get(bob.node)!, name);
      expect(a('chat_messages_in_total')).toBe(sends);
      expect(a('chat_send_ack_seconds_count')).toBe(sends);
      expect(a('chat_send_ack_seconds_sum')).toBeGreaterThan(0);
      // Every send went through a chat step (kind send), every event through a user step.
      expect(a('chat_pg_batch_size_sum', 'kind="send"')).toBe(sends);
      expect(a('chat_pg_batch_size_sum', 'kind="fanout"')).toBeGreaterThanOrEqual(sends);
      expect(a('chat_pg_batch_seconds_count')).toBeGreaterThan(0);
      // Bob's node pushed the chat event and every message to bob; alice (one device) got her
      // chat event only: the sending device has its messages from the `ok`s.
      expect(b('chat_messages_out_total')).toBeGreaterThanOrEqual(sends + 1);
      expect(b('chat_deliver_seconds_count')).toBeGreaterThanOrEqual(sends + 1);
      expect(a('chat_messages_out_total')).toBeGreaterThanOrEqual(1);
      // Forwarded from alice's node to bob's over RPC.
      const rpc = after.get(alice.node)!;
      expect(has(rpc, 'chat_rpc_queue_depth')).toBe(true);
      expect(total(rpc, 'chat_rpc_connected', `peer="${bob.node}"`)).toBe(1);
      expect(total(rpc, 'chat_rpc_errors_total', `peer="${bob.node}"`)).toBe(0);
      expect(total(after.get(alice.node)!, 'chat_connected_devices')).toBeGreaterThanOrEqual(1);
      expect(total(after.get(bob.node)!, 'chat_connected_users')).toBeGreaterThanOrEqual(1);
    });
    const registryAfter = await scrape(cluster.registryInternalUrl);
    const routed = (s: Scrape): number =>
      total(s, 'chat_registry_requests_total', 'route="/v1/route",status="200"');
    expect(routed(registryAfter)).toBeGreaterThan(routed(registryBefore));
  });

  it('show a drain moving users and the ring epoch changing', async () => {
    // Users connected to the two members; those that node-3 will own get moved.
    const users = Array.from({ length: 40 }, (_, i) => `d-user${i}`);
    for (const user of users) await connect(user);
    const before = await scrapeAll();
    const epochBefore = total(before.get('node-1')!, 'chat_ring_epoch');

    const epoch = await cluster.setMembers(['node-1', 'node-2', 'node-3']);
    expect(epoch).toBeGreaterThan(epochBefore);

    // While it runs: some node has users left to move and has moved some already.
    await waitFor(
      async () => {
        const now = await scrapeAll();
        expect(sum(now, 'chat_drain_users')).toBeGreaterThan(0);
        expect(sum(now, 'chat_drain_remaining')).toBeGreaterThan(0);
        expect(sum(now, 'chat_moved_users_total')).toBeGreaterThan(
          sum(before, 'chat_moved_users_total'),
        );
      },
      15_000,
      50,
    );
    // Done: every mover counted, every node on the new epoch, node-3 live in the registry.
    await waitFor(async () => {
      const after = await scrapeAll();
      for (const [id, one] of after) {
        expect({ id, epoch: total(one, 'chat_ring_epoch') }).toEqual({ id, epoch });
        expect({ id, done: total(one, 'chat_drain_done') }).toEqual({ id, done: 1 });
      }
      const moved = sum(after, 'chat_moved_users_total') - sum(before, 'chat_moved_users_total');
      expect(moved).toBe(sum(after, 'chat_drain_users'));
      expect(moved).toBeGreaterThan(0);
      expect(sum(after, 'chat_moved_devices_total') - sum(before, 'chat_moved_devices_total')).toBe(
        moved,
      );
      const registry = await scrape(cluster.registryInternalUrl);
      expect(total(registry, 'chat_registry_ring_epoch')).toBe(epoch);
      expect(total(registry, 'chat_registry_live_members')).toBe(3);
    }, 20_000);
  });
});
