import type { ClusterSnapshot, DrainProgress, NodeInfo, RingConfig } from '@chat/cluster';
import { RouteTable } from '@chat/cluster';
import { RingPictures, dashboardState, drainPercent, ringPicture } from '../src/dashboard';
import type { NodeFigures } from '../src/node-figures';

const info = (id: string, extra: Partial<NodeInfo> = {}): NodeInfo => ({
  nodeId: id,
  wsUrl: `ws://127.0.0.1:70${id.slice(-1)}0/ws`,
  rpcAddress: `127.0.0.1:80${id.slice(-1)}0`,
  weight: 1,
  startedAt: 1,
  ...extra,
});

const drain = (id: string, fields: Partial<DrainProgress>): DrainProgress => ({
  nodeId: id,
  epoch: 2,
  total: 0,
  moved: 0,
  remaining: 0,
  ratePerSec: 10,
  peakPerSec: 0,
  done: true,
  startedAt: 1000,
  updatedAt: 2000,
  ...fields,
});

function snapshot(
  config: RingConfig | undefined,
  nodes: NodeInfo[],
  drains: DrainProgress[] = [],
): ClusterSnapshot {
  return {
    nodes: new Map(nodes.map((n) => [n.nodeId, n])),
    ring: config === undefined ? undefined : { config, modRevision: 7 },
    drains: new Map(drains.map((d) => [d.nodeId, d])),
    revision: 42,
  };
}

const members = (...ids: string[]) => ids.map((id) => ({ id, weight: 1 }));

/** Scale-out of node-4 in progress; node-10 registered, not a member; node-2 draining. */
const scaleOut = snapshot(
  {
    epoch: 2,
    members: members('node-1', 'node-2', 'node-3', 'node-4'),
    transition: {
      fromEpoch: 1,
      fromMembers: members('node-1', 'node-2', 'node-3'),
      startedAt: 900,
      ratePerSec: 10,
    },
  },
  [info('node-10'), info('node-4'), info('node-3'), info('node-2'), info('node-1')],
  [
    drain('node-1', { total: 40, moved: 40, remaining: 0, done: true }),
    drain('node-2', { total: 30, moved: 9, remaining: 20, done: false }),
    drain('node-3', { total: 0 }),
    drain('node-4', { total: 0 }),
    drain('node-9', { total: 5, remaining: 5, done: false }), // not registered any more
  ],
);

const figures = new Map<string, NodeFigures>([
  ['node-1', { connections: 12, users: 10, messagesPerSec: 3.5, pushesPerSec: 7, at: 5 }],
  ['node-2', { connections: 9, movingOut: 3, users: 9, messagesPerSec: 1, pushesPerSec: 1, at: 5 }],
]);

describe('dashboardState', () => {
  const table = RouteTable.from(scaleOut);
  const state = dashboardState({
    snapshot: scaleOut,
    table,
    picture: ringPicture(table),
    figures,
    polledAt: 5,
    now: 3000,
  });

  it('lists every known node in id order with membership and figures', () => {
    expect(state.nodes.map((n) => n.nodeId)).toEqual([
      'node-1',
      'node-2',
      'node-3',
      'node-4',
      'node-10',
    ]);
    expect(state.nodes[0]).toEqual({
      nodeId: 'node-1',
      live: true,
      member: true,
      previousMember: true,
      leaving: false,
      weight: 1,
      share: expect.any(Number),
      url: 'ws://127.0.0.1:7010/ws',
      connections: 12,
      users: 10,
      messagesPerSec: 3.5,
      pushesPerSec: 7,
    });
    // Devices node-2 moved that are still connected there while they join their new owner.
    expect(state.nodes[1]).toMatchObject({ connections: 9, movingOut: 3 });
    const node4 = state.nodes[3]!;
    expect(node4).toMatchObject({ member: true, previousMember: false, users: null });
    expect(state.nodes[4]).toMatchObject({ nodeId: 'node-10', member: false, share: 0 });
    const shares = state.nodes.map((n) => n.share);
    expect(shares.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 9);
    for (const share of shares.slice(0, 4)) expect(share).toBeGreaterThan(0.2);
  });

  it('describes the transition', () => {
    expect(state.transition).toEqual({
      fromEpoch: 1,
      startedAt: 900,
      ratePerSec: 10,
      added: ['node-4'],
      removed: [],
    });
    expect(state).toMatchObject({ at: 3000, revision: 42, epoch: 2, polledAt: 5 });
  });

  it('shows the drains of live nodes that had users to move', () => {
    expect(state.drains.map((d) => [d.nodeId, d.percent, d.done])).toEqual([
      ['node-1', 100, true],
      ['node-2', 33.3, false],
    ]);
    expect(state.drains[1]).toMatchObject({ total: 30, moved: 9, remaining: 20, ratePerSec: 10 });
  });

  it('shows a dead member as not live, without figures', () => {
    const dead = snapshot({ epoch: 1, members: members('node-1', 'node-2') }, [info('node-1')], []);
    const t = RouteTable.from(dead);
    const s = dashboardState({
      snapshot: dead,
      table: t,
      picture: ringPicture(t),
      figures: new Map([['node-2', figures.get('node-1')!]]),
      polledAt: null,
      now: 1,
    });
    expect(s.nodes.map((n) => [n.nodeId, n.live, n.member, n.share, n.users])).toEqual([
      ['node-1', true, true, 1, null],
      ['node-2', false, true, 0, null],
    ]);
    expect(s.transition).toBeNull();
  });

  it('is empty before any ring was configured', () => {
    const empty = snapshot(undefined, []);
    const t = RouteTable.from(empty);
    const s = dashboardState({
      snapshot: empty,
      table: t,
      picture: ringPicture(t),
      figures: new Map(),
      polledAt: null,
      now: 1,
    });
    expect(s).toEqual({
      at: 1,
      revision: 42,
      epoch: 0,
      nodes: [],
      transition: null,
      drains: [],
      polledAt: null,
    });
    expect(ringPicture(t).ring).toMatchObject({ arcs: [], previousArcs: null });
  });
});

describe('ringPicture', () => {
  it('draws both rings during a transition, covering the circle', () => {
    const { ring } = ringPicture(RouteTable.from(scaleOut));
    expect(new Set(ring.arcs.map((a) => a.node))).toEqual(
      new Set(['node-1', 'node-2', 'node-3', 'node-4']),
    );
    expect(new Set(ring.previousArcs?.map((a) => a.node))).toEqual(
      new Set(['node-1', 'node-2', 'node-3']),
    );
    for (const arcs of [ring.arcs, ring.previousArcs!]) {
      expect(arcs[0]?.start).toBe(0);
      expect(arcs[arcs.length - 1]?.end).toBe(1);
      for (let i = 1; i < arcs.length; i++) expect(arcs[i]!.start).toBe(arcs[i - 1]!.end);
    }
  });

  it('is made again only when a ring changes', () => {
    const pictures = new RingPictures();
    const first = pictures.of(RouteTable.from(scaleOut));
    // Drain progress and figures change often; the rings do not.
    const later = snapshot(scaleOut.ring!.config, [...scaleOut.nodes.values()], []);
    expect(pictures.of(RouteTable.from(later))).toBe(first);
    const closed = snapshot(
      { epoch: 3, members: members('node-1', 'node-2', 'node-3', 'node-4') },
      [...scaleOut.nodes.values()],
    );
    const after = pictures.of(RouteTable.from(closed));
    expect(after).not.toBe(first);
    expect(after.ring.previousArcs).toBeNull();
    expect(after.ring.arcs).toEqual(first.ring.arcs);
    const leaving = snapshot(closed.ring!.config, [
      info('node-1'),
      info('node-2'),
      info('node-3'),
      info('node-4', { leaving: true }),
    ]);
    expect(pictures.of(RouteTable.from(leaving)).ring.arcs.some((a) => a.node === 'node-4')).toBe(
      false,
    );
  });
});

describe('helpers', () => {
  it('computes drain percentages', () => {
    expect(drainPercent(0, 0)).toBe(100);
    expect(drainPercent(3, 2)).toBe(33.3);
    expect(drainPercent(3, 0)).toBe(100);
    expect(drainPercent(3, 5)).toBe(0);
  });
});
