/**
 * Moves without a gap (issue 17): a moved device connects to its new owner before it leaves
 * the old one. Four real node processes, node-1 and node-2 ring members at first.
 *
 * 1. `chatctl scale-out node-3` under a steady stream of messages to each mover: an SDK mover
 *    stays `ready` all through its move (on the old node with `movingTo`, then on the new one),
 *    events keep arriving while it moves, the longest silence between two of them stays near
 *    the steady one, nothing is lost or delivered twice. An SDK client without the feature
 *    (`overlapMoves: false`) still moves the old way: close 4001, reconnect.
 * 2. SIGTERM of node-3 moves its users back with the same overlap, and node-3 exits 0.
 * 3. At the protocol level: `moved` carries `closeInMs` only to clients with `overlap-moves`,
 *    whose connections stay open (and delivering) until the deadline closes them with 4001;
 *    the moving devices are welcomed on the new owner without counting against the device
 *    limit there, while a device connected twice there still gets 4008 and a fourth 4009.
 */
import type { MovedFrame } from '@chat/protocol';
import { jsonCodec } from '@chat/protocol';
import type { SdkUser, SentMessage, TrafficChat } from '@chat/testkit';
import {
  RawClient,
  TestCluster,
  createChats,
  deliveryProblems,
  prng,
  sdkUser,
  seqLag,
  waitFor,
  chatctl,
  percentile,
  ringDiff,
  ringOf,
} from '@chat/testkit';

const OLD = ['node-1', 'node-2'];
const NEW = ['node-1', 'node-2', 'node-3'];
/** Each mover gets a message from its partner this often. */
const STREAM_INTERVAL_MS = 50;
/** The SDK's spread before it connects to the new owner: long, so a dark window would show. */
const JITTER_MS = 800;
/** How long the old node keeps a moved connection of an `overlap-moves` client open. */
const OVERLAP_MS = 6000;
/**
 * How much longer than in steady traffic a mover's longest silence may be: the machine's own
 * stalls (CI shares it) without a dark window, and below the jitter a reconnect would add.
 */
const SILENCE_MARGIN_MS = 400;

let cluster: TestCluster;
let env: Record<string, string>;

/** What one SDK user observed, with the move-related fields `sdkUser` does not keep. */
interface Watched {
  readonly user: SdkUser;
  readonly moves: Array<MovedFrame & { at: number }>;
  readonly states: Array<{ status: string; node: string | null; movingTo?: string; at: number }>;
  /** Date.now() of each message event handed to the app. */
  readonly arrivals: number[];
}

function watch(user: SdkUser): Watched {
  const w: Watched = { user, moves: [], states: [], arrivals: [] };
  user.client.on('moved', (m) => w.moves.push({ ...m, at: Date.now() }));
  user.client.on('state', (s) =>
    w.states.push({
      status: s.status,
      node: s.node,
      ...(s.movingTo === undefined ? {} : { movingTo: s.movingTo }),
      at: Date.now(),
    }),
  );
  user.client.on('event', (e) => {
    if (e.kind === 'message') w.arrivals.push(Date.now());
  });
  return w;
}

/** Longest time between consecutive arrivals within [from, to]. */
function longestSilence(arrivals: readonly number[], from: number, to: number): number {
  const within = arrivals.filter((t) => t >= from && t <= to);
  let longest = 0;
  for (let i = 1; i < within.length; i++) longest = Math.max(longest, within[i]! - within[i - 1]!);
  return longest;
}

/** Sends from each chat's first member to the second every STREAM_INTERVAL_MS until stopped. */
function stream(chats: readonly TrafficChat[], tag: string) {
  const acked: SentMessage[] = [];
  const failed: string[] = [];
  const pending = new Set<Promise<void>>();
  let n = 0;
  const timer = setInterval(() => {
    for (const chat of chats) {
      const sender = chat.members[0]!;
      const clientMsgId = `${tag}-${n++}`;
      const sentAt = Date.now();
      const p = sender.client.send(chat.chatId, clientMsgId, { clientMsgId }).then(
        ({ messageId }) =>
          void acked.push({ messageId, chat, sender, sentAt, ackedAt: Date.now() }),
        (err: unknown) => void failed.push(`${clientMsgId}: ${String(err)}`),
      );
      pending.add(p);
      void p.finally(() => pending.delete(p));
    }
  }, STREAM_INTERVAL_MS);
  return {
    acked,
    async stop(): Promise<{ acked: SentMessage[]; failed: string[] }> {
      clearInterval(timer);
      await Promise.all([...pending]);
      return { acked, failed };
    },
  };
}

/**
 * Checks one overlapping SDK move between `since` and the end: `ready` all along (never
 * reconnecting), first on `from`, then on `from` moving to `to`, then on `to`; returns when
 * the move started (the `moved`) and ended (ready on `to` alone).
 */
function expectOverlapMove(
  w: Watched,
  since: number,
  from: string,
  to: string,
): { movedAt: number; doneAt: number } {
  const states = w.states.filter((s) => s.at >= since);
  expect({ user: w.user.id, statuses: [...new Set(states.map((s) => s.status))] }).toEqual({
    user: w.user.id,
    statuses: ['ready'],
  });
  expect({
    user: w.user.id,
    path: states.map((s) => `${s.node}${s.movingTo === undefined ? '' : `->${s.movingTo}`}`),
  }).toEqual({ user: w.user.id, path: [`${from}->${to}`, to] });
  // Moves refused at connect (a node that had not seen the ring yet) carry no closeInMs.
  const moved = w.moves.filter((m) => m.at >= since && m.closeInMs !== undefined);
  expect(moved.map((m) => ({ node: m.node, closeInMs: m.closeInMs }))).toEqual([
    { node: to, closeInMs: OVERLAP_MS },
  ]);
  return { movedAt: moved[0]!.at, doneAt: states.at(-1)!.at };
}

beforeAll(async () => {
  cluster = await TestCluster.start({
    nodes: 4,
    members: 2,
    nodeEnv: { CHAT_MOVE_OVERLAP_MS: String(OVERLAP_MS) },
  });
  env = { CHAT_ETCD_ENDPOINTS: cluster.etcd.endpoint, CHAT_ETCD_PREFIX: cluster.prefix };
}, 60_000);

afterAll(async () => {
  await cluster?.close();
});

describe('SDK moves overlap', () => {
  let movers: Watched[];
  let legacy: Watched;
  let everyone: SdkUser[];
  let chats: TrafficChat[];
  const diffOf = (ids: readonly string[]) => ringDiff(OLD, NEW, ids);

  /**
   * Every overlapping mover moved as expectOverlapMove says, and the longest silence between
   * two of its events around the move stays within SILENCE_MARGIN_MS of the longest one in the steady
   * traffic before `since` (without the overlap it is at least the jitter plus connect,
   * welcome and sync). A move longer than three stream intervals saw events on the old
   * connection while it lasted.
   */
  function expectNoGap(
    label: string,
    since: number,
    route: (w: Watched) => { from: string; to: string },
  ): void {
    const steady = percentile(
      movers.map((w) => longestSilence(w.arrivals, since - 2_000, since)),
      100,
    );
    const lines: string[] = [];
    for (const w of movers) {
      const { from, to } = route(w);
      const { movedAt, doneAt } = expectOverlapMove(w, since, from, to);
      const during = w.arrivals.filter((t) => t > movedAt && t < doneAt).length;
      const silence = longestSilence(w.arrivals, movedAt - 1_000, doneAt + 1_000);
      lines.push(
        `${w.user.id}: move ${doneAt - movedAt} ms, ${during} events during it, longest silence ${silence} ms`,
      );
      const long = doneAt - movedAt > 3 * STREAM_INTERVAL_MS;
      expect({ user: w.user.id, silence, eventsWhileMoving: during > 0 || !long }).toEqual({
        user: w.user.id,
        silence: expect.any(Number) as number,
        eventsWhileMoving: true,
      });
      expect({
        user: w.user.id,
        silence,
        steady,
        ok: silence <= steady + SILENCE_MARGIN_MS,
      }).toEqual({
        user: w.user.id,
        silence,
        steady,
        ok: true,
      });
    }
    console.log(`${label}_STEADY_LONGEST_SILENCE_MS=${steady}\n${lines.join('\n')}`);
  }

  beforeAll(async () => {
    const candidates = Array.from({ length: 400 }, (_, i) => `ov-${i}`);
    const diff = diffOf(candidates);
    const moving = candidates.filter((u) => diff.has(u)).slice(0, 7);
    const staying = candidates.filter((u) => !diff.has(u)).slice(0, 7);
    const options = { movedJitterMs: JITTER_MS };
    const stayers = staying.map((id) => sdkUser(cluster.registryUrl, id, options));
    // The last mover is an app on an SDK that does not know the feature.
    const moverUsers = moving.map((id, i) =>
      sdkUser(cluster.registryUrl, id, i === 6 ? { ...options, overlapMoves: false } : options),
    );
    movers = moverUsers.slice(0, 6).map(watch);
    legacy = watch(moverUsers[6]!);
    everyone = [...stayers, ...moverUsers];
    await Promise.all(everyone.map((u) => u.client.connect()));
    // Pairs (stayer, mover): the stayer streams to the mover.
    chats = await createChats(
      stayers.flatMap((s, i) => [s, moverUsers[i]!]),
      { pairs: 7, groups: 0, groupSize: 0 },
      prng(17),
    );
  }, 60_000);

  afterAll(async () => {
    await Promise.all((everyone ?? []).map((u) => u.client.close()));
  });

  test('scale-out: movers stay connected and keep receiving, the legacy client reconnects', async () => {
    const traffic = stream(chats, 'out');
    // Steady state first, to compare the silences during the move with.
    await waitFor(() => expect(traffic.acked.length).toBeGreaterThan(7 * 40), 20_000, 50);
    const since = Date.now();
    const result = await chatctl(
      ['scale-out', 'node-3', '--rate', '20', '--wait', '--timeout', '60'],
      env,
      { lowPriority: true },
    );
    expect({ code: result.code, stderr: result.stderr }).toEqual({
      code: 0,
      stderr: expect.any(String) as string,
    });
    await waitFor(
      () =>
        expect(everyone.map((u) => u.client.state)).toEqual(
          everyone.map((u) => ({
            status: 'ready',
            node: ringOf(NEW).owner(u.id),
          })),
        ),
      20_000,
      50,
    );
    // A little more traffic after everyone arrived, then all of it must be delivered.
    const arrived = Date.now();
    await waitFor(
      () => expect(traffic.acked.filter((s) => s.sentAt > arrived + 500).length).toBeGreaterThan(7),
      10_000,
      50,
    );
    const { acked, failed } = await traffic.stop();
    expect(failed).toEqual([]);
    await waitFor(() => expect(deliveryProblems(acked, everyone)).toEqual([]), 20_000, 100);
    await waitFor(async () => expect(await seqLag(cluster.sql, everyone)).toEqual([]), 10_000);

    const diff = diffOf(movers.map((w) => w.user.id));
    expectNoGap('SCALE_OUT', since, (w) => diff.get(w.user.id)!);

    // The client without the feature: `moved` without closeInMs, a reconnect, then ready.
    const legacyMoves = legacy.moves.filter((m) => m.at >= since);
    expect(legacyMoves.map((m) => ({ node: m.node, closeInMs: m.closeInMs }))).toEqual([
      { node: 'node-3', closeInMs: undefined },
    ]);
    const legacyStatuses = legacy.states.filter((s) => s.at >= since).map((s) => s.status);
    expect(legacyStatuses).toContain('reconnecting');
    expect(legacyStatuses.at(-1)).toBe('ready');
    expect(legacy.states.every((s) => s.movingTo === undefined)).toBe(true);
  }, 120_000);

  test('SIGTERM of node-3: its users move back with the same overlap, and it exits 0', async () => {
    const traffic = stream(chats, 'term');
    await waitFor(() => expect(traffic.acked.length).toBeGreaterThan(7 * 20), 20_000, 50);
    const since = Date.now();
    const node3 = cluster.node('node-3');
    node3.signal('SIGTERM');
    // The drain waits for the overlapping connections to leave before the node goes.
    expect(await node3.exited).toBe(0);
    const back = ringOf(OLD);
    await waitFor(
      () =>
        expect(everyone.map((u) => u.client.state)).toEqual(
          everyone.map((u) => ({ status: 'ready', node: back.owner(u.id) })),
        ),
      20_000,
      50,
    );
    const { acked, failed } = await traffic.stop();
    expect(failed).toEqual([]);
    await waitFor(() => expect(deliveryProblems(acked, everyone)).toEqual([]), 20_000, 100);
    expectNoGap('SIGTERM', since, (w) => ({ from: 'node-3', to: back.owner(w.user.id)! }));
  }, 120_000);
});

describe('the protocol during an overlap', () => {
  test('closeInMs only for overlap-moves; the overlap is a move, a real duplicate still gets 4008', async () => {
    // node-3 is gone (SIGTERM above); node-4 joins the live members node-1 and node-2.
    const before = ['node-1', 'node-2'];
    const after = ['node-1', 'node-2', 'node-4'];
    const candidates = Array.from({ length: 400 }, (_, i) => `ovr-${i}`);
    const moves = ringDiff(before, after, candidates);
    const [user, oldStyle] = candidates.filter((u) => moves.has(u));
    const peer = candidates.find((u) => !moves.has(u))!;
    const from = moves.get(user!)!.from;
    // A second mover from the same node, whose client ends its overlap itself, and a user who
    // stays there and disconnects: the end of an overlap is not a disconnect.
    const leaver = candidates.find(
      (u) => u !== user && u !== oldStyle && moves.get(u)?.from === from,
    )!;
    // A third mover from there, whose connection drops during the overlap: a disconnect.
    const dropper = candidates.find(
      (u) => u !== user && u !== oldStyle && u !== leaver && moves.get(u)?.from === from,
    )!;
    const stayer = candidates.find(
      (u) => u !== peer && !moves.has(u) && ringOf(before).owner(u) === from,
    )!;
    const codec = jsonCodec;
    const overlap = ['no-echo', 'receipt-marks', 'overlap-moves'];
    const open: RawClient[] = [];
    const connect = async (
      u: string,
      device: string,
      url: string,
      features = overlap,
    ): Promise<RawClient> => {
      const c = await RawClient.ready({ url, codec, user: u, device, features, autoAck: true });
      open.push(c);
      return c;
    };
    try {
      const devices = await Promise.all(
        ['d1', 'd2', 'd3'].map((d) => connect(user!, d, cluster.node(from).url)),
      );
      const legacyDevice = await connect(
        oldStyle!,
        'd1',
        cluster.node(moves.get(oldStyle!)!.from).url,
        [],
      );
      const leaverOld = await connect(leaver, 'd1', cluster.node(from).url);
      const dropperOld = await connect(dropper, 'd1', cluster.node(from).url);
      const stayerDevice = await connect(stayer, 'd1', cluster.node(from).url);
      const sender = await connect(peer, 'd1', cluster.node(ringOf(before).owner(peer)!).url);
      const { chatId } = (await sender.ok({ t: 'createChat', members: [user] })) as {
        chatId: string;
      };

      const lastSeen = async (u: string): Promise<number | null> => {
        const { rows } = await cluster.sql.query<{ last_seen: string | null }>(
          'select last_seen::text from users where id = $1',
          [u],
        );
        return rows[0]?.last_seen == null ? null : Number(rows[0].last_seen);
      };
      // The leaver's welcome on the old node is written (coalesced, a little later) before the
      // move: a write of the leaver's last seen after this is the new owner's or a close's.
      await waitFor(async () => expect(await lastSeen(leaver)).not.toBeNull());
      await waitFor(async () => expect(await lastSeen(dropper)).not.toBeNull());

      await cluster.setMembers(['node-1', 'node-2', 'node-3', 'node-4']);
      const movedFrames = await Promise.all(
        devices.map((d) => d.next<MovedFrame>((f) => f.t === 'moved', 15_000)),
      );
      const movedAt = Date.now();
      expect(movedFrames.map((m) => [m.node, m.closeInMs])).toEqual(
        devices.map(() => ['node-4', OVERLAP_MS]),
      );
      // The old owner reports them as moving out (for the dashboard) while they overlap.
      const stats = async (): Promise<{ connections: number; movingOut: number }> =>
        (await (await fetch(`${cluster.node(from).internalUrl}/v1/stats`)).json()) as {
          connections: number;
          movingOut: number;
        };
      await leaverOld.next<MovedFrame>((f) => f.t === 'moved', 15_000);
      const leaverMovedAt = Date.now();
      await dropperOld.next<MovedFrame>((f) => f.t === 'moved', 15_000);
      expect((await stats()).movingOut).toBe(5);

      // The dropper's connection drops (no close frame: 1006) before it reached its new owner:
      // the old node takes it for a disconnect and writes its last seen.
      const droppedAt = Date.now();
      dropperOld.ws.terminate();
      await waitFor(async () => expect(await lastSeen(dropper)).toBeGreaterThanOrEqual(droppedAt));
      await waitFor(async () => expect((await stats()).movingOut).toBe(4));

      // The leaver is welcomed on node-4 (which writes its last seen), then closes its old
      // connection itself: the user is still online, so the old node writes no last seen. The
      // stayer's disconnect right after is written by the same node (coalesced), so once it
      // shows, a write for the leaver would show too.
      const arriving = Date.now();
      await connect(leaver, 'd1', cluster.node('node-4').url);
      await waitFor(async () => expect(await lastSeen(leaver)).toBeGreaterThanOrEqual(arriving));
      const welcomedSeen = await lastSeen(leaver);
      const leftAt = Date.now();
      leaverOld.ws.close(1000);
      // Closed by the client before the overlap's deadline (which is a disconnect): on a
      // machine stalled for seconds the deadline could come first, and this says so.
      expect({ code: (await leaverOld.closed).code, beforeDeadline: true }).toEqual({
        code: 1000,
        beforeDeadline: leftAt - leaverMovedAt < OVERLAP_MS - 500,
      });
      await waitFor(async () => expect((await stats()).movingOut).toBe(3));
      stayerDevice.ws.close(1000);
      await stayerDevice.closed;
      await waitFor(async () => expect(await lastSeen(stayer)).toBeGreaterThanOrEqual(leftAt));
      expect(await lastSeen(leaver)).toBe(welcomedSeen);

      // Without the feature: `moved` without closeInMs, and the close at once.
      const legacyMoved = await legacyDevice.next<MovedFrame>((f) => f.t === 'moved', 15_000);
      expect(legacyMoved.closeInMs).toBeUndefined();
      expect((await legacyDevice.closed).code).toBe(4001);

      // All three devices arrive at node-4 while still connected to the old owner: a move,
      // not three more devices.
      const url4 = cluster.node('node-4').url;
      const arrived = await Promise.all(['d1', 'd2', 'd3'].map((d) => connect(user!, d, url4)));
      // The old connections still deliver: a message sent now reaches both sides.
      await sender.ok({ t: 'send', chatId, clientMsgId: 'during', body: 'during' });
      for (const c of [...devices, ...arrived])
        await c.next((f) => f.t === 'evt' && f.kind === 'message' && f.body === 'during');
      // A real duplicate on the new owner is replaced, a fourth device refused.
      const again = await connect(user!, 'd1', url4);
      expect((await arrived[0]!.closed).code).toBe(4008);
      const fourth = await RawClient.connect({ url: url4, codec, user, device: 'd4' });
      open.push(fourth);
      expect(await fourth.next((f) => f.t === 'err')).toMatchObject({ code: 'LIMIT' });
      expect((await fourth.closed).code).toBe(4009);
      expect(await again.ok({ t: 'listChats' })).toMatchObject({ chats: [expect.anything()] });

      // The client never closed the old connections: the deadline does, with 4001.
      const closes = await Promise.all(devices.map((d) => d.closed));
      expect(closes.map((c) => c.code)).toEqual([4001, 4001, 4001]);
      await waitFor(async () => expect((await stats()).movingOut).toBe(0));
      expect(Date.now() - movedAt).toBeGreaterThanOrEqual(OVERLAP_MS - 1_000);
    } finally {
      for (const c of open) c.ws.terminate();
    }
  }, 60_000);
});
