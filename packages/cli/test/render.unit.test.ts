import {
  renderRing,
  renderRoute,
  renderStatus,
  ringReport,
  routeReport,
  statusReport,
} from '../src/report';
import type { NodeStats } from '../src/report';
import { formatDuration, renderTable } from '../src/table';
import { drain, members, node, nodes, snapshot } from './fixtures';

test('renderTable pads columns and right-aligns numbers', () => {
  expect(
    renderTable(
      [{ header: 'NODE' }, { header: 'USERS', align: 'right' }, { header: 'URL' }],
      [
        ['node-1', '12', 'ws://a'],
        ['node-10', '7', '-'],
      ],
    ),
  ).toBe(['NODE     USERS  URL', 'node-1      12  ws://a', 'node-10      7  -'].join('\n'));
});

test.each([
  [850, '850ms'],
  [12_400, '12s'],
  [185_000, '3m05s'],
  [7_440_000, '2h04m'],
])('formatDuration(%i) = %s', (ms, text) => {
  expect(formatDuration(ms)).toBe(text);
});

describe('status during a scale-out', () => {
  const now = 100_000;
  const snap = snapshot(
    nodes(
      node('node-1'),
      node('node-2'),
      node('node-4', { weight: 2 }),
      node('node-5', { leaving: true }),
    ),
    {
      epoch: 6,
      members: [...members('node-1', 'node-2', 'node-3'), { id: 'node-4', weight: 2 }],
      transition: {
        fromEpoch: 5,
        fromMembers: members('node-1', 'node-2', 'node-3'),
        startedAt: now - 12_000,
        ratePerSec: 40,
      },
    },
    [
      drain('node-1', 6, { moved: 4, total: 10 }),
      drain('node-2', 6, { moved: 3, total: 3, done: true }),
      drain('node-4', 5, { total: 0, done: true }),
    ],
  );
  const stats = new Map<string, NodeStats | undefined>([
    ['node-1', { users: 30, connections: 41 }],
    ['node-2', undefined],
    ['node-4', { users: 7, connections: 7 }],
  ]);
  const report = statusReport(snap, stats, now);

  test('every known node, with liveness, membership, users and drain', () => {
    expect(report.epoch).toBe(6);
    expect(report.liveMembers).toEqual(['node-1', 'node-2', 'node-4']);
    expect(report.transition).toEqual({
      fromEpoch: 5,
      toEpoch: 6,
      fromMembers: ['node-1', 'node-2', 'node-3'],
      toMembers: ['node-1', 'node-2', 'node-3', 'node-4'],
      added: ['node-4'],
      removed: [],
      ratePerSec: 40,
      startedAt: now - 12_000,
      ageMs: 12_000,
    });
    expect(report.nodes.map((n) => [n.id, n.live, n.member, n.leaving, n.weight, n.users])).toEqual(
      [
        ['node-1', true, true, false, 1, 30],
        ['node-2', true, true, false, 1, null],
        ['node-3', false, true, false, 1, null],
        ['node-4', true, true, false, 2, 7],
        ['node-5', true, false, true, 1, null],
      ],
    );
  });

  test('as a table', () => {
    expect(renderStatus(report)).toBe(
      [
        'ring epoch 6: 4 member(s), 3 live (node-1, node-2, node-4)',
        'transition: epoch 5 -> 6 (+node-4), rate 40/s, started 12s ago',
        '',
        'NODE    LIVE  MEMBER   LEAVING  WEIGHT  USERS  CONNS  DRAIN        URL',
        'node-1  yes   yes      -             1     30     41  4/10         ws://127.0.0.1:7001/ws',
        'node-2  yes   yes      -             1      ?      ?  3/3 done     ws://127.0.0.1:7002/ws',
        'node-3  no    yes      -             1      -      -  -            -',
        'node-4  yes   joining  -             2      7      7  0/0 done @5  ws://127.0.0.1:7004/ws',
        'node-5  yes   no       yes           1      ?      ?  -            ws://127.0.0.1:7005/ws',
        '? = /v1/stats did not answer: node-2, node-5',
      ].join('\n'),
    );
  });

  test('route: the owner now and before', () => {
    const r = routeReport(snap, 'alice');
    expect(r.epoch).toBe(6);
    expect(['node-1', 'node-2', 'node-4']).toContain(r.node);
    expect(r.transition?.fromEpoch).toBe(5);
    expect(['node-1', 'node-2']).toContain(r.transition?.previousNode);
    expect(r.transition?.moving).toBe(r.node !== r.transition?.previousNode);
    expect(renderRoute(r)).toContain(`alice -> ${r.node} (ws://`);
  });

  test('ring: shares of the hash space among live members add up to 1', () => {
    const ring = ringReport(snap, stats);
    expect(ring.members.map((m) => [m.id, m.live])).toEqual([
      ['node-1', true],
      ['node-2', true],
      ['node-3', false],
      ['node-4', true],
    ]);
    expect(ring.members.reduce((s, m) => s + m.share, 0)).toBeCloseTo(1, 6);
    expect(ring.members[3]!.share).toBeGreaterThan(ring.members[0]!.share); // weight 2
    expect(ring.totalUsers).toBeNull(); // node-2 did not answer
    expect(renderRing(ring)).toContain('ring epoch 6, ? connected user(s)');
  });
});

test('no ring yet', () => {
  const snap = snapshot(nodes(node('node-1')), undefined);
  expect(renderStatus(statusReport(snap, new Map(), 0))).toContain('ring: none configured yet');
  expect(routeReport(snap, 'bob')).toEqual({
    user: 'bob',
    node: null,
    url: null,
    epoch: 0,
    transition: null,
  });
  expect(renderRing(ringReport(snap, new Map()))).toBe('ring: none configured yet');
});

test('status shows the push outbox: what waits, since when, and each node’s sends', () => {
  const snap = snapshot(nodes(node('node-1'), node('node-2')), {
    epoch: 1,
    members: members('node-1', 'node-2'),
  });
  const push = { depth: 0, oldestAgeMs: 0, sent: 0, failed: 0, inflight: 0, awaitingAck: 0 };
  const stats = new Map<string, NodeStats | undefined>([
    [
      'node-1',
      {
        users: 1,
        connections: 1,
        push: { ...push, depth: 4, oldestAgeMs: 95_000, sent: 12, failed: 3, inflight: 2 },
      },
    ],
    ['node-2', { users: 1, connections: 1, push: { ...push, depth: 3, sent: 5, awaitingAck: 7 } }],
  ]);
  const text = renderStatus(statusReport(snap, stats, 0));
  expect(text.split('\n').slice(-4)).toEqual([
    'push outbox: 4 queued, oldest 1m35s old',
    'NODE    SENT  FAILED  INFLIGHT  AWAITING ACK',
    'node-1    12       3         2             0',
    'node-2     5       0         0             7',
  ]);
  // Nodes older than push report nothing: no section.
  const old = new Map<string, NodeStats | undefined>([['node-1', { users: 1, connections: 1 }]]);
  expect(renderStatus(statusReport(snap, old, 0))).not.toContain('push outbox');
});
