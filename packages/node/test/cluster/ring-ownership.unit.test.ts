/**
 * Dual delivery across ring changes, as a node's RingOwnership computes it: during a transition
 * the previous owner is delivered to as well, and when a second ring change supersedes an open
 * transition, the owner on the ring before the first change too (users still waiting to move
 * sit there) until the transition is closed.
 */
import type { ClusterSnapshot, NodeInfo, RingConfig } from '@chat/cluster';
import { RingOwnership } from '../../src/cluster/ring-ownership';
import { ringOf } from '@chat/testkit';

const ids = (n: number): string[] => Array.from({ length: n }, (_, i) => `node-${i + 1}`);
const members = (list: readonly string[]) => list.map((id) => ({ id, weight: 1 }));

function snapshot(config: RingConfig, alive: readonly string[], revision: number): ClusterSnapshot {
  const nodes = new Map<string, NodeInfo>(
    alive.map((id) => [
      id,
      { nodeId: id, wsUrl: `ws://${id}/ws`, rpcAddress: `${id}:1`, weight: 1, startedAt: 0 },
    ]),
  );
  return { nodes, ring: { config, modRevision: revision }, drains: new Map(), revision };
}

function transition(epoch: number, from: readonly string[], to: readonly string[]): RingConfig {
  return {
    epoch,
    members: members(to),
    transition: { fromEpoch: epoch - 1, fromMembers: members(from), startedAt: 0 },
  };
}

const users = Array.from({ length: 3000 }, (_, i) => `u-${i}`);
const [r3, r4, r5] = [ringOf(ids(3)), ringOf(ids(4)), ringOf(ids(5))];

test('a superseded transition keeps delivering to where users still are, until it closes', () => {
  const own = new RingOwnership('node-1', { now: () => 0 }, 30_000);
  own.update(snapshot({ epoch: 1, members: members(ids(3)) }, ids(5), 1));
  for (const u of users.slice(0, 50)) expect(own.previousOwnersOf(u)).toEqual([]);

  // Scale-out of node-4: deliveries go to the owner and to the owner on the 3-node ring.
  own.update(snapshot(transition(2, ids(3), ids(4)), ids(5), 2));
  for (const u of users) {
    expect(own.ownerOf(u)).toBe(r4.owner(u));
    expect(own.previousOwnersOf(u)).toEqual([r3.owner(u)]);
  }

  // Scale-out of node-5 mid-drain: the 4-node ring and the 3-node one are both still "previous".
  own.update(snapshot(transition(3, ids(4), ids(5)), ids(5), 3));
  const stranded = users.filter((u) => r3.owner(u) !== r4.owner(u));
  expect(stranded.length).toBeGreaterThan(500);
  for (const u of users) {
    expect(own.ownerOf(u)).toBe(r5.owner(u));
    const expected = [r4.owner(u)!];
    if (r3.owner(u) !== r4.owner(u)) expected.push(r3.owner(u)!);
    expect(own.previousOwnersOf(u)).toEqual(expected);
  }

  // A drain-rate change (same members, next epoch) keeps all of it.
  own.update(snapshot({ ...transition(4, ids(4), ids(5)) }, ids(5), 4));
  expect(own.previousOwnersOf(stranded[0]!)).toContain(r3.owner(stranded[0]!));

  // node-2 dies: it is nobody's previous owner any more, the others still are.
  const alive = ids(5).filter((id) => id !== 'node-2');
  own.update(snapshot({ ...transition(4, ids(4), ids(5)) }, alive, 5));
  for (const u of stranded) {
    expect(own.previousOwnersOf(u)).not.toContain('node-2');
    if (r3.owner(u) !== 'node-2' && r4.owner(u) !== 'node-2')
      expect(own.previousOwnersOf(u)).toContain(r3.owner(u));
  }

  // The transition closes: no previous owner any more.
  own.update(snapshot({ epoch: 5, members: members(ids(5)) }, alive, 6));
  for (const u of users.slice(0, 200)) expect(own.previousOwnersOf(u)).toEqual([]);
});

test('a node leaving while a transition is open (SIGTERM) is still delivered to for its users', () => {
  const own = new RingOwnership('node-1', { now: () => 0 }, 30_000);
  own.update(snapshot({ epoch: 1, members: members(ids(3)) }, ids(4), 1));
  own.update(snapshot(transition(2, ids(3), ids(4)), ids(4), 2));
  const onNode4 = users.filter((u) => r4.owner(u) === 'node-4');
  expect(onNode4.length).toBeGreaterThan(500);
  // node-4 leaves the live members (registered `leaving`, still reachable) before the
  // transition that brought it in is closed: its users stay connected to it until it moved them.
  const leaving = snapshot(transition(2, ids(3), ids(4)), ids(4), 3);
  const node4 = leaving.nodes.get('node-4')!;
  (leaving.nodes as Map<string, NodeInfo>).set('node-4', { ...node4, leaving: true });
  own.update(leaving);
  for (const u of onNode4) {
    expect(own.ownerOf(u)).toBe(r3.owner(u));
    expect(own.previousOwnersOf(u)).toContain('node-4');
  }
});

test('after an unplanned change (a node died), the owner before it, for the grace period', () => {
  let now = 0;
  const own = new RingOwnership('node-1', { now: () => now }, 1_000);
  own.update(snapshot({ epoch: 1, members: members(ids(3)) }, ids(3), 1));
  own.update(snapshot({ epoch: 1, members: members(ids(3)) }, ['node-1', 'node-3'], 2));
  const orphan = users.find((u) => r3.owner(u) === 'node-2')!;
  expect(own.previousOwnersOf(orphan)).toEqual(['node-2']);
  now = 1_001;
  expect(own.previousOwnersOf(orphan)).toEqual([]);
});

test('a user is moving here while a transition brings it from another node, and only then', () => {
  const own = new RingOwnership('node-4', { now: () => 0 }, 30_000);
  own.update(snapshot({ epoch: 1, members: members(ids(3)) }, ids(4), 1));
  for (const u of users.slice(0, 50)) expect(own.movingHere(u)).toBe(false);
  own.update(snapshot(transition(2, ids(3), ids(4)), ids(4), 2));
  const comers = users.filter((u) => r4.owner(u) === 'node-4');
  expect(comers.length).toBeGreaterThan(500);
  for (const u of users) expect(own.movingHere(u)).toBe(r4.owner(u) === 'node-4');
  // The transition closed: nobody is moving any more.
  own.update(snapshot({ epoch: 3, members: members(ids(4)) }, ids(4), 3));
  for (const u of comers) expect(own.movingHere(u)).toBe(false);
  // Seen from an old owner, its own users are never moving here.
  const old = new RingOwnership('node-1', { now: () => 0 }, 30_000);
  old.update(snapshot(transition(2, ids(3), ids(4)), ids(4), 2));
  for (const u of users.filter((x) => r4.owner(x) === 'node-1'))
    expect(old.movingHere(u)).toBe(false);
});
