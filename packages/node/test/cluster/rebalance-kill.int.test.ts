/**
 * A node SIGKILLed in the middle of a drain, under traffic: `chatctl scale-out node-4 --wait`
 * is running and node-2, one of the draining nodes, is killed with users still to move. Its
 * lease expires, it drops out of the ring; its remaining users reconnect through the registry
 * to their owners on the live members; the other drains carry on; the transition closes
 * (`chatctl status --json` shows none); every user ends up on the owner the registry names;
 * nothing acked is lost; and users of the other nodes that were not movers are not disturbed.
 * Four node processes, the first three members; 1,200 lean users and 60 SDK users.
 */
import {
  TestCluster,
  prng,
  runLoad,
  waitFor,
  AT_CONNECT,
  Population,
  chatctl,
  chatctlStatus,
  countBy,
  drainReport,
  expectNodePeaksWithin,
  lagMonitor,
  pickMix,
  ringDiff,
  ringOf,
} from '@chat/testkit';

const START = ['node-1', 'node-2', 'node-3'];
const NEXT = [...START, 'node-4'];
const VICTIM = 'node-2';
const LIVE_AFTER = ['node-1', 'node-3', 'node-4'];
const LEASE_TTL_SEC = 3;
/** Slow enough that node-2 is killed with most of its movers still connected to it. */
const RATE = 25;

let cluster: TestCluster;
let env: Record<string, string>;
let people: Population;

beforeAll(async () => {
  cluster = await TestCluster.start({
    nodes: 4,
    members: 3,
    leaseTtlSec: LEASE_TTL_SEC,
    nodeEnv: { CHAT_HEARTBEAT_MS: '120000', CHAT_TRANSITION_GRACE_MS: '1000' },
  });
  env = { CHAT_ETCD_ENDPOINTS: cluster.etcd.endpoint, CHAT_ETCD_PREFIX: cluster.prefix };
  // Half the SDK users are node-4 movers; a good share of everyone lives on node-2.
  const candidates = Array.from({ length: 600 }, (_, i) => `kill-s${i}`);
  const diff = ringDiff(START, NEXT, candidates);
  const mix = pickMix(candidates, (u) => diff.has(u), 60, 0.5);
  people = await Population.start(cluster, {
    leanPrefix: 'kill-l',
    leanCount: 1200,
    sdkIds: mix.slice(0, 30).flatMap((m, i) => [m, mix[30 + i]!]),
    members: START,
    chats: { pairs: 30, groups: 6, groupSize: 5 },
    seed: 9,
  });
}, 90_000);

afterAll(async () => {
  await people?.close();
  await cluster?.close();
});

test('SIGKILL of a draining node mid-drain: the cluster converges, the transition closes, nothing acked is lost', async () => {
  const users = people.allUsers();
  const diff = ringDiff(START, NEXT, users);
  const onVictim = new Set(users.filter((u) => ringOf(START).owner(u) === VICTIM));
  const victimMovers = [...diff].filter(([, d]) => d.from === VICTIM).length;
  console.log(
    `KILL: ${diff.size} users move to node-4 (${JSON.stringify(countBy(diff.values(), (d) => d.from))}), ` +
      `${onVictim.size} users on ${VICTIM}; rate ${RATE}/s`,
  );
  const load = runLoad({
    chats: people.chats,
    ratePerSec: 50,
    durationMs: 60_000,
    maxMessages: 3_000,
    random: prng(10),
    tag: 'kill',
  });
  await waitFor(() => expect(load.acked.length).toBeGreaterThanOrEqual(100), 15_000, 50);
  const since = Date.now();
  const lag = lagMonitor();
  const scaleOut = chatctl(
    ['scale-out', 'node-4', '--rate', String(RATE), '--wait', '--timeout', '60'],
    env,
  );

  // Mid-drain: node-2 has moved some of its movers, most are still on it.
  const fromVictim = (): number => people.movesSince(since).filter((m) => m.from === VICTIM).length;
  await waitFor(() => expect(fromVictim()).toBeGreaterThanOrEqual(10), 20_000, 10);
  const killedAt = Date.now();
  cluster.node(VICTIM).signal('SIGKILL');
  await cluster.node(VICTIM).exited;
  const movedBeforeKill = fromVictim();
  console.log(`KILL_AT: ${VICTIM} killed after moving ${movedBeforeKill} of ${victimMovers} users`);
  expect(movedBeforeKill).toBeLessThan(victimMovers);

  // Everyone ends up on the owner the registry names, which is the ring of the live members.
  await waitFor(async () => expect(await people.notOnRegistryOwner()).toEqual([]), 30_000, 200);
  expect(people.misplaced(LIVE_AFTER)).toEqual([]);
  const recoveredAt = Date.now();
  console.log(
    `KILL_CONVERGED_MS=${recoveredAt - killedAt} (SIGKILL until every user was on its owner; lease TTL ${LEASE_TTL_SEC} s)`,
  );

  const result = await scaleOut;
  console.log(`KILL_CHATCTL (exit ${result.code}):\n${result.stdout.trim()}`);
  expect(result.code).toBe(0);
  expectNodePeaksWithin(result.stdout, RATE);
  await waitFor(
    async () => {
      const status = await chatctlStatus(env);
      expect(status.transition).toBeNull();
      expect(status.liveMembers).toEqual(LIVE_AFTER);
      expect(status.nodes.find((n) => n.id === VICTIM)).toMatchObject({ live: false });
    },
    30_000,
    200,
  );
  console.log(`KILL_TRANSITION_CLOSED_MS=${Date.now() - killedAt} (after the SIGKILL)`);

  const afterwards = Date.now();
  await waitFor(
    () => expect(load.acked.filter((s) => s.sentAt > afterwards).length).toBeGreaterThan(20),
    10_000,
    50,
  );
  load.stop();
  const done = await load.done;
  expect(done.failed).toEqual([]);
  people.acked.push(...done.acked);
  await people.settle();
  console.log(
    `KILL_MESSAGES: ${done.acked.length} acked (${done.acked.filter((s) => s.ackedAt > killedAt).length} after the kill), all delivered`,
  );

  // Nobody but node-2's users and the movers was disconnected; movers went where the ring said.
  const disturbed = [...people.disconnectedSince(since)].filter(
    ([u]) => !onVictim.has(u) && !diff.has(u),
  );
  expect(disturbed.slice(0, 10)).toEqual([]);
  const wrongMoves = people
    .movesSince(since)
    .filter((m) => m.from !== AT_CONNECT && !onVictim.has(m.user) && m.to !== diff.get(m.user)?.to);
  expect(wrongMoves.slice(0, 10)).toEqual([]);
  const survivorsMoves = people.movesSince(since).filter((m) => m.from !== VICTIM);
  drainReport('KILL', survivorsMoves, RATE, lag.max());
  lag.stop();
}, 90_000);
