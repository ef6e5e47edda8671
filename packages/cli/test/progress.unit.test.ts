import {
  DrainFollower,
  describePending,
  progressBar,
  renderProgress,
  renderSummary,
} from '../src/progress';
import { drain, members, node, nodes } from './fixtures';

const target = { epoch: 6, members: members('node-1', 'node-2', 'node-3', 'node-4') };
const transition = {
  fromEpoch: 5,
  fromMembers: members('node-1', 'node-2', 'node-3'),
  startedAt: 0,
};
const all = nodes(node('node-1'), node('node-2'), node('node-3'), node('node-4'));

test('waits for every registered node to report done for the epoch', () => {
  const f = new DrainFollower(6, target.members, 1_000);
  const ring = { ...target, transition };
  // Old records (epoch 5) do not count.
  let u = f.update({
    nodes: all,
    ring,
    drains: new Map([['node-1', drain('node-1', 5, { done: true })]]),
  });
  expect(u.status.finished).toBe(false);
  expect(u.status.nodes.every((n) => n.state === 'waiting')).toBe(true);

  const drains = new Map([
    ['node-1', drain('node-1', 6, { moved: 4, total: 10, peakPerSec: 3 })],
    ['node-2', drain('node-2', 6, { moved: 5, total: 5, done: true, peakPerSec: 5 })],
    ['node-3', drain('node-3', 6, { moved: 0, total: 0, done: true })],
  ]);
  u = f.update({ nodes: all, ring, drains });
  expect(u.status).toMatchObject({ epoch: 6, moved: 9, total: 15, finished: false });
  expect(describePending(u.status)).toBe(
    'node-1 (4/10 moved), node-4 (no progress for epoch 6 yet)',
  );
  expect(renderProgress(u.status, 12_000)).toBe(
    'epoch 6 [############--------] 9/15 users moved (60%), 2/4 nodes done, 12s',
  );

  drains.set('node-1', drain('node-1', 6, { moved: 10, total: 10, done: true, peakPerSec: 4 }));
  drains.set('node-4', drain('node-4', 6, { total: 0, done: true }));
  u = f.update({ nodes: all, ring, drains });
  expect(u.status.finished).toBe(true);
  const summary = f.summary(31_000);
  expect(summary).toEqual({
    epoch: 6,
    usersMoved: 15,
    durationMs: 30_000,
    peakPerSec: { 'node-1': 4, 'node-2': 5, 'node-3': 0, 'node-4': 0 },
  });
  expect(renderSummary(summary)).toBe(
    [
      'drain complete at epoch 6: 15 user(s) moved in 30s',
      'peak reconnect rate per node: node-1 4/s, node-2 5/s, node-3 0/s, node-4 0/s (max 5/s)',
    ].join('\n'),
  );
});

test('a node that dies stops counting; one that joins must report too', () => {
  const f = new DrainFollower(6, target.members, 0);
  const ring = { ...target, transition };
  const drains = new Map([['node-1', drain('node-1', 6, { done: true, moved: 10 })]]);
  expect(
    f.update({ nodes: nodes(node('node-1'), node('node-2')), ring, drains }).status.finished,
  ).toBe(false);
  expect(f.update({ nodes: nodes(node('node-1')), ring, drains }).status.finished).toBe(true);
});

test('a later ring change supersedes ours: follow the newest epoch', () => {
  const f = new DrainFollower(6, target.members, 0);
  const drains = new Map([['node-1', drain('node-1', 6, { done: true })]]);
  const later = {
    epoch: 7,
    members: members('node-1', 'node-2'),
    transition: { fromEpoch: 6, fromMembers: target.members, startedAt: 5 },
  };
  const u = f.update({ nodes: nodes(node('node-1')), ring: later, drains });
  expect(u.notes).toEqual([
    'superseded by a later ring change: epoch 7 (members: node-1, node-2); following epoch 7',
  ]);
  expect(u.status).toMatchObject({ epoch: 7, finished: false });
  // Said once.
  expect(f.update({ nodes: nodes(node('node-1')), ring: later, drains }).notes).toEqual([]);
  drains.set('node-1', drain('node-1', 7, { done: true }));
  expect(f.update({ nodes: nodes(node('node-1')), ring: later, drains }).status.finished).toBe(
    true,
  );
});

test('a rate change is reported as such', () => {
  const f = new DrainFollower(6, target.members, 0);
  const faster = { ...target, epoch: 7, transition: { ...transition, ratePerSec: 80 } };
  expect(f.update({ nodes: all, ring: faster, drains: new Map() }).notes).toEqual([
    'drain rate changed to 80/s at epoch 7; following epoch 7',
  ]);
});

test('the transition closed by the cluster ends the wait', () => {
  const f = new DrainFollower(6, target.members, 0);
  const u = f.update({
    nodes: all,
    ring: { epoch: 7, members: target.members },
    drains: new Map(),
  });
  expect(u.notes).toEqual(['transition closed at epoch 7']);
  expect(u.status.finished).toBe(true);
  expect(f.summary(10).epoch).toBe(7);
});

test('a restarted drain counts its users again, not twice', () => {
  const f = new DrainFollower(6, target.members, 0);
  const ring = { ...target, transition };
  const one = nodes(node('node-1'));
  f.update({ nodes: one, ring, drains: new Map([['node-1', drain('node-1', 6, { moved: 3 })]]) });
  f.update({ nodes: one, ring, drains: new Map([['node-1', drain('node-1', 6, { moved: 5 })]]) });
  f.update({
    nodes: one,
    ring,
    drains: new Map([['node-1', drain('node-1', 6, { moved: 2, startedAt: 9_000 })]]),
  });
  expect(f.summary(0).usersMoved).toBe(7);
});

test('progressBar', () => {
  expect(progressBar(0, 10, 10)).toBe('[----------]');
  expect(progressBar(5, 10, 10)).toBe('[#####-----]');
  expect(progressBar(20, 10, 10)).toBe('[##########]');
  expect(progressBar(0, 0, 4)).toBe('[----]');
});

test('nothing to move and all done is a full bar', () => {
  const status = { epoch: 3, nodes: [], moved: 0, total: 0, finished: true };
  expect(renderProgress(status, 20)).toBe(
    'epoch 3 [####################] 0/0 users moved (100%), 0/0 nodes done, 20ms',
  );
});
