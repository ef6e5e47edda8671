/**
 * Rebalancing on a real cluster under continuous traffic, as users see it. Four node processes,
 * the first three ring members; 2,000 connected users (1,880 lean bare-TCP devices, 120 SDK
 * ChatClients routed by the registry, half of them users the ring change moves) and a steady
 * message load between the SDK users throughout.
 *
 * 1. `chatctl scale-out node-4 --rate R --wait` (node-4 already running): exactly the ring
 *    diff's movers get `moved` + close 4001 (to node-4), nobody else is disconnected, each old
 *    node's reconnects observed client-side stay within R + 20 % per second, messages to the
 *    moving users arrive with p99 send-to-deliver under 500 ms, nothing acked is lost.
 * 2. `chatctl status --json` and `chatctl route <user>` match where users are connected.
 * 3. `chatctl scale-in node-4 --wait` (status and route checked while it drains), then SIGTERM
 *    of node-4: the same checks, and node-4 exits 0.
 *
 * Prints REBALANCE_P99_BEFORE_MS=, REBALANCE_P99_DURING_MS=, the drain time against the
 * expected users / R, and the peak reconnects per second per node.
 */
import {
  TestCluster,
  prng,
  runLoad,
  waitFor,
  Population,
  chatctl,
  chatctlStatus,
  countBy,
  drainReport,
  expectNodePeaksWithin,
  explainSlowest,
  lagMonitor,
  overloaded,
  percentile,
  pickMix,
  registryOwners,
  ringDiff,
} from '@chat/testkit';
import type { DeliverySample } from '@chat/testkit';

const OLD = ['node-1', 'node-2', 'node-3'];
const NEW = ['node-1', 'node-2', 'node-3', 'node-4'];
const LEAN_USERS = 1880;
const SDK_USERS = 120;
/** Drain rates (users per second per draining node) of the scale-out and the scale-in. */
const RATE_OUT = 50;
const RATE_IN = 75;
const MSG_RATE = 60;
const P99_LIMIT_MS = 500;

let cluster: TestCluster;
let env: Record<string, string>;
let people: Population;

beforeAll(async () => {
  cluster = await TestCluster.start({
    nodes: 4,
    members: 3,
    nodeEnv: {
      // No heartbeat traffic from 2,000 devices: this is about moves, not pings.
      CHAT_HEARTBEAT_MS: '120000',
      CHAT_TRANSITION_GRACE_MS: '1000',
    },
  });
  env = { CHAT_ETCD_ENDPOINTS: cluster.etcd.endpoint, CHAT_ETCD_PREFIX: cluster.prefix };
  // Half the SDK users are movers, interleaved so that 1:1 chats pair a mover with a stayer.
  const candidates = Array.from({ length: 1000 }, (_, i) => `rbs-${i}`);
  const outDiff = ringDiff(OLD, NEW, candidates);
  const mix = pickMix(candidates, (u) => outDiff.has(u), SDK_USERS, 0.5);
  const half = SDK_USERS / 2;
  people = await Population.start(cluster, {
    leanPrefix: 'rbl',
    leanCount: LEAN_USERS,
    sdkIds: mix.slice(0, half).flatMap((m, i) => [m, mix[half + i]!]),
    members: OLD,
    chats: { pairs: 60, groups: 12, groupSize: 5 },
    seed: 1,
  });
}, 90_000);

afterAll(async () => {
  await people?.close();
  await cluster?.close();
});

/**
 * Prints and checks send-to-deliver latency to `movers` before and during the drain. The 500 ms
 * budget is asserted when the run was calm enough to judge it (see overloaded); otherwise the
 * figures are printed with the reason, and only delivery itself is held (settle()).
 */
function latencyFigures(
  label: string,
  before: readonly [number, number],
  during: readonly [number, number],
  movers: ReadonlySet<string>,
  lagMaxMs: number,
): void {
  // Messages from users that stay put (always connected) to the movers; the control is the
  // same senders to the other stayers, in the same window.
  const stayers = new Set(people.sdk.map((u) => u.id).filter((u) => !movers.has(u)));
  const pre = people.samples(before[0], before[1], movers, stayers);
  const mid = people.samples(during[0], during[1], movers, stayers);
  const anySender = people.samples(during[0], during[1], movers);
  const control = people.samples(during[0], during[1], stayers, stayers);
  const ms = (samples: readonly DeliverySample[]): number[] => samples.map((s) => s.ms);
  const p99Before = percentile(ms(pre), 99);
  const p99During = percentile(ms(mid), 99);
  const p99Control = percentile(ms(control), 99);
  const busy = overloaded(p99Before, p99Control, lagMaxMs);
  console.log(
    [
      `${label}P99_BEFORE_MS=${p99Before} (${pre.length} deliveries from stayers to movers before the drain, p50 ${percentile(ms(pre), 50)})`,
      `${label}P99_DURING_MS=${p99During} (${mid.length} deliveries from stayers to movers while they moved, p50 ${percentile(ms(mid), 50)}, max ${percentile(ms(mid), 100)})`,
      `${label}P99_STAYERS_DURING_MS=${p99Control} (${control.length} deliveries between users that did not move, same window)`,
      `${label}P99_DURING_ANY_SENDER_MS=${percentile(ms(anySender), 99)} (${anySender.length} deliveries to movers incl. from moving senders, whose sends wait for their own reconnect)`,
      `${label}P99_BUDGET=${busy === undefined ? `asserted < ${P99_LIMIT_MS} ms` : `NOT JUDGED, machine overloaded: ${busy}`} (event-loop lag max ${lagMaxMs} ms)`,
      `${label}SLOWEST_DURING:`,
      ...explainSlowest(mid, people.watches).map((line) => `  ${line}`),
    ].join('\n'),
  );
  expect(pre.length).toBeGreaterThan(50);
  expect(mid.length).toBeGreaterThan(50);
  if (busy === undefined) expect(p99During).toBeLessThan(P99_LIMIT_MS);
}

test('scale-out 3 -> 4 under traffic moves exactly the ring diff, at the rate, losing nothing', async () => {
  const diff = ringDiff(OLD, NEW, people.allUsers());
  const movers = new Set(diff.keys());
  console.log(
    `SCALE_OUT: ${movers.size} of ${people.allUsers().length} users move, from ${JSON.stringify(
      countBy(diff.values(), (d) => d.from),
    )} to node-4; rate ${RATE_OUT}/s per node`,
  );
  const load = runLoad({
    chats: people.chats,
    ratePerSec: MSG_RATE,
    durationMs: 60_000,
    maxMessages: 4_000,
    random: prng(2),
    tag: 'out',
  });
  const loadStart = Date.now();
  await waitFor(() => expect(load.acked.length).toBeGreaterThanOrEqual(150), 15_000, 50);
  const since = Date.now();
  const lag = lagMonitor();

  const result = await chatctl(
    ['scale-out', 'node-4', '--rate', String(RATE_OUT), '--wait', '--timeout', '60'],
    env,
  );
  expect({ code: result.code, stderr: result.stderr }).toEqual({
    code: 0,
    stderr: expect.any(String) as string,
  });
  expect(result.stdout).toContain('+node-4');
  expect(result.stdout).toMatch(
    new RegExp(`drain complete at epoch \\d+: ${movers.size} user\\(s\\) moved`),
  );
  console.log(`SCALE_OUT_CHATCTL:\n${result.stdout.trim()}`);
  expectNodePeaksWithin(result.stdout, RATE_OUT);

  await waitFor(() => expect(people.misplaced(NEW)).toEqual([]), 15_000, 100);
  // Traffic for a little after the drain, then stop and let every acked message land.
  const afterDrain = Date.now();
  await waitFor(
    () => expect(load.acked.filter((s) => s.sentAt > afterDrain).length).toBeGreaterThan(30),
    10_000,
    50,
  );
  load.stop();
  const done = await load.done;
  expect(done.failed).toEqual([]);
  people.acked.push(...done.acked);
  await people.settle();

  expect(people.disconnectProblems(since, diff)).toEqual([]);
  const figures = drainReport('SCALE_OUT', people.movesSince(since), RATE_OUT, lag.max());
  latencyFigures(
    'REBALANCE_',
    [loadStart, since],
    [figures.firstMoveAt, figures.lastMoveAt],
    movers,
    lag.max(),
  );
  lag.stop();
  console.log(
    `SCALE_OUT_MESSAGES: ${done.acked.length} acked, all delivered; extra moved hops ${
      people.movesSince(since).length - movers.size
    }`,
  );
  // The transition closes once every drain is done (plus the grace).
  await waitFor(async () => expect((await chatctlStatus(env)).transition).toBeNull(), 20_000, 200);
}, 90_000);

test('status --json and route <user> report where users really are', async () => {
  const connected = people.connectedNodes();
  expect([...connected.values()].filter((n) => n === null)).toEqual([]);
  const perNode = countBy(connected.values(), (n) => n!);
  const status = await chatctlStatus(env);
  expect(status.transition).toBeNull();
  expect(status.members.map((m) => m.id)).toEqual(NEW);
  expect(status.liveMembers).toEqual(NEW);
  expect(status.nodes.map((n) => [n.id, n.live, n.member, n.users, n.connections])).toEqual(
    NEW.map((id) => [id, true, true, perNode[id] ?? 0, perNode[id] ?? 0]),
  );
  console.log(`STATUS_USERS_PER_NODE=${JSON.stringify(perNode)} (chatctl status agrees)`);

  // A few users that moved and a few that stayed, from both kinds of client.
  const diff = ringDiff(OLD, NEW, people.allUsers());
  const sample = [
    ...people.lean.filter((u) => diff.has(u.user)).slice(0, 2),
    ...people.lean.filter((u) => !diff.has(u.user)).slice(0, 2),
  ].map((u) => u.user);
  sample.push(
    people.sdk.find((u) => diff.has(u.id))!.id,
    people.sdk.find((u) => !diff.has(u.id))!.id,
  );
  const routes = await Promise.all(sample.map((u) => chatctl(['route', u, '--json'], env)));
  routes.forEach((r, i) => {
    const user = sample[i]!;
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({
      user,
      node: connected.get(user),
      url: cluster.node(connected.get(user)!).url,
      epoch: status.epoch,
      transition: null,
    });
  });
  const registry = await registryOwners(cluster.registryUrl, sample);
  for (const user of sample) expect(registry.get(user)).toBe(connected.get(user));
}, 60_000);

test('scale-in 4 -> 3 and SIGTERM of node-4 under traffic: only its users move, nothing lost, exit 0', async () => {
  const diff = ringDiff(NEW, OLD, people.allUsers());
  const movers = new Set(diff.keys());
  expect(new Set([...diff.values()].map((d) => d.from))).toEqual(new Set(['node-4']));
  console.log(`SCALE_IN: ${movers.size} users move off node-4; rate ${RATE_IN}/s`);
  const load = runLoad({
    chats: people.chats,
    ratePerSec: MSG_RATE,
    durationMs: 60_000,
    maxMessages: 4_000,
    random: prng(3),
    tag: 'in',
  });
  const loadStart = Date.now();
  await waitFor(() => expect(load.acked.length).toBeGreaterThanOrEqual(150), 15_000, 50);
  const since = Date.now();
  const lag = lagMonitor();

  const scaleIn = chatctl(
    ['scale-in', 'node-4', '--rate', String(RATE_IN), '--wait', '--timeout', '60'],
    env,
  );
  // While it drains: what status and route say about the open transition.
  await waitFor(
    () => expect(people.movesSince(since).length).toBeGreaterThanOrEqual(20),
    20_000,
    20,
  );
  const mover = [...movers][0]!;
  const [status, route] = await Promise.all([
    chatctlStatus(env),
    chatctl(['route', mover, '--json'], env),
  ]);
  const stillMoving = people.movesSince(since).length < movers.size;
  console.log(
    `SCALE_IN_STATUS_DURING: transition=${JSON.stringify(status.transition)} node-4 drain=${JSON.stringify(
      status.nodes.find((n) => n.id === 'node-4')?.drain,
    )} (drain still running when it returned: ${stillMoving})`,
  );
  expect(status.transition).toMatchObject({ added: [], removed: ['node-4'], ratePerSec: RATE_IN });
  expect(status.members.map((m) => m.id)).toEqual(OLD);
  const node4 = status.nodes.find((n) => n.id === 'node-4')!;
  expect(node4).toMatchObject({ live: true, member: false, previousMember: true });
  expect(node4.drain?.epoch).toBe(status.epoch);
  expect(JSON.parse(route.stdout)).toMatchObject({
    user: mover,
    node: diff.get(mover)!.to,
    epoch: status.epoch,
    transition: { previousNode: 'node-4', moving: true },
  });

  const result = await scaleIn;
  expect(result.code).toBe(0);
  expect(result.stdout).toMatch(
    new RegExp(`drain complete at epoch \\d+: ${movers.size} user\\(s\\) moved`),
  );
  console.log(`SCALE_IN_CHATCTL:\n${result.stdout.trim()}`);
  expectNodePeaksWithin(result.stdout, RATE_IN);
  await waitFor(() => expect(people.misplaced(OLD)).toEqual([]), 15_000, 100);

  // node-4 has no users left: SIGTERM makes it leave and exit 0, disturbing nobody.
  const sigtermAt = Date.now();
  const node4Process = cluster.node('node-4');
  node4Process.signal('SIGTERM');
  expect(await node4Process.exited).toBe(0);
  console.log(`SIGTERM_EXIT_MS=${Date.now() - sigtermAt} (node-4 exited 0)`);
  await waitFor(
    async () => {
      const s = await chatctlStatus(env);
      expect(s.nodes.map((n) => n.id)).toEqual(OLD);
      expect(s.transition).toBeNull();
    },
    20_000,
    200,
  );
  const afterExit = Date.now();
  await waitFor(
    () => expect(load.acked.filter((s) => s.sentAt > afterExit).length).toBeGreaterThan(30),
    10_000,
    50,
  );
  load.stop();
  const done = await load.done;
  expect(done.failed).toEqual([]);
  people.acked.push(...done.acked);
  await people.settle();
  expect(people.misplaced(OLD)).toEqual([]);

  expect(people.disconnectProblems(since, diff)).toEqual([]);
  const figures = drainReport('SCALE_IN', people.movesSince(since), RATE_IN, lag.max());
  latencyFigures(
    'REBALANCE_IN_',
    [loadStart, since],
    [figures.firstMoveAt, figures.lastMoveAt],
    movers,
    lag.max(),
  );
  lag.stop();
  console.log(`SCALE_IN_MESSAGES: ${done.acked.length} acked, all delivered`);
}, 90_000);
