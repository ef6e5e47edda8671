/**
 * The --dry-run estimate of who moves, checked against the drain's own "who moves" code
 * (movedUsers) over a population of users placed by the ring.
 */
import { buildRing, movedUsers, ringShares } from '@chat/ring';
import type { Ring } from '@chat/ring';
import { changeDocument, renderDryRun } from '../src/change-report';
import { describeEtcdTrouble } from '../src/etcd-trouble';
import { failureOf } from '../src/failure';
import { estimateMoves } from '../src/moves';
import { members } from './fixtures';

const population = Array.from({ length: 10_000 }, (_, i) => `user-${i}`);

/** How many of the population each member of `ring` owns, as /v1/stats would say. */
function usersOn(ring: Ring): Map<string, number> {
  const counts = new Map<string, number>(ring.members.map((m) => [m.id, 0]));
  for (const user of population) {
    const owner = ring.owner(user)!;
    counts.set(owner, (counts.get(owner) ?? 0) + 1);
  }
  return counts;
}

function actualMoves(before: Ring, after: Ring): Map<string, number> {
  const moves = new Map<string, number>();
  for (const m of movedUsers(before, after, population)) {
    const key = `${m.from}->${m.to}`;
    moves.set(key, (moves.get(key) ?? 0) + 1);
  }
  return moves;
}

test.each([
  [
    'scale-out 3 -> 4',
    members('node-1', 'node-2', 'node-3'),
    members('node-1', 'node-2', 'node-3', 'node-4'),
  ],
  [
    'scale-in 4 -> 3',
    members('node-1', 'node-2', 'node-3', 'node-4'),
    members('node-1', 'node-2', 'node-4'),
  ],
  [
    'scale-out with weight 2',
    members('node-1', 'node-2'),
    [...members('node-1', 'node-2'), { id: 'node-5', weight: 2 }],
  ],
])('%s: the estimate is within 1.5%% of the population of what the drain moves', (_, from, to) => {
  const before = buildRing(from);
  const after = buildRing(to);
  const plan = estimateMoves(before, after, usersOn(before));
  const actual = actualMoves(before, after);
  expect(plan.moves.map((m) => `${m.from}->${m.to}`).sort()).toEqual([...actual.keys()].sort());
  for (const m of plan.moves) {
    expect(Math.abs(m.users! - actual.get(`${m.from}->${m.to}`)!)).toBeLessThan(
      population.length * 0.015,
    );
  }
  const moved = [...actual.values()].reduce((a, b) => a + b, 0);
  expect(Math.abs(plan.users! - moved)).toBeLessThan(population.length * 0.015);
  expect(plan.connectedUsers).toBe(population.length);
});

test('on a scale-out the hash space that moves is exactly the new member share', () => {
  const after = buildRing(members('node-1', 'node-2', 'node-3', 'node-4'));
  const plan = estimateMoves(buildRing(members('node-1', 'node-2', 'node-3')), after, new Map());
  const share = ringShares(after).find((s) => s.id === 'node-4')!.share;
  expect(plan.hashShare).toBeCloseTo(share, 12);
  expect(new Set(plan.moves.map((m) => m.to))).toEqual(new Set(['node-4']));
  // No node answered /v1/stats: the fractions are known, the user counts are not.
  expect(plan.moves.every((m) => m.users === null)).toBe(true);
  expect(plan.users).toBeNull();
  expect(plan.connectedUsers).toBeNull();
});

test('the same members (a drain-rate change) move nobody; an empty ring moves nobody', () => {
  const ring = buildRing(members('node-1', 'node-2'));
  expect(estimateMoves(ring, buildRing(members('node-2', 'node-1')), new Map()).moves).toEqual([]);
  expect(estimateMoves(buildRing([]), ring, new Map()).moves).toEqual([]);
});

test('renderDryRun shows the ring to write and a table of moves', () => {
  const before = buildRing(members('node-1', 'node-2'));
  const after = buildRing(members('node-1', 'node-2', 'node-3'));
  const plan = estimateMoves(
    before,
    after,
    new Map([
      ['node-1', 300],
      ['node-2', undefined],
    ]),
  );
  const doc = changeDocument(
    'scale-out',
    {
      expectedModRevision: 17,
      next: {
        epoch: 4,
        members: members('node-1', 'node-2', 'node-3'),
        transition: {
          fromEpoch: 3,
          fromMembers: members('node-1', 'node-2'),
          startedAt: 1,
          ratePerSec: 40,
        },
      },
      added: ['node-3'],
      removed: [],
      warnings: [],
    },
    true,
    plan,
  );
  expect(doc.written).toBe(false);
  const text = renderDryRun(doc);
  expect(text).toContain('dry run, nothing written: would write ring epoch 4 (was 3) +node-3');
  expect(text).toContain('compare-and-swap on mod revision 17');
  expect(text).toContain('"ratePerSec": 40');
  const node1 = plan.moves.find((m) => m.from === 'node-1')!;
  expect(text).toMatch(new RegExp(`node-1\\s+node-3\\s+[0-9.]+%\\s+${node1.users}\\n`));
  expect(text).toMatch(/node-2\s+node-3\s+[0-9.]+%\s+\?\n/);
  expect(text).toContain('total: ? of ? connected user(s)');
});

test('a JSON error carries the same code as the text output (ETCD_NO_QUORUM)', () => {
  const err = describeEtcdTrouble([{ endpoint: 'http://127.0.0.1:1', hasLeader: false }], 5000);
  expect(failureOf(err)).toEqual({
    exitCode: 1,
    code: 'ETCD_NO_QUORUM',
    message: expect.stringContaining('etcd has lost quorum'),
  });
});
