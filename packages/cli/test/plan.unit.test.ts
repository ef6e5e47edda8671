import type { VersionedRing } from '@chat/cluster';
import { UsageError, ValidationError } from '../src/errors';
import { planDrainRate, planScaleIn, planScaleOut } from '../src/plan';
import { members, node, nodes } from './fixtures';

const ring = (epoch = 5, ids = ['node-1', 'node-2', 'node-3']): VersionedRing => ({
  config: { epoch, members: members(...ids) },
  modRevision: 77,
});
const all = nodes(node('node-1'), node('node-2'), node('node-3'), node('node-4', { weight: 2 }));
const now = 1_700_000_000_000;

function reason(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    if (err instanceof ValidationError) return err.reason;
    if (err instanceof UsageError) return 'USAGE';
    throw err;
  }
  return undefined;
}

describe('scale-out', () => {
  test('adds the node with its registered weight and a transition from the current ring', () => {
    const change = planScaleOut({
      current: ring(),
      nodes: all,
      ids: ['node-4'],
      ratePerSec: 40,
      now,
    });
    expect(change).toEqual({
      expectedModRevision: 77,
      next: {
        epoch: 6,
        members: [...members('node-1', 'node-2', 'node-3'), { id: 'node-4', weight: 2 }],
        transition: {
          fromEpoch: 5,
          fromMembers: members('node-1', 'node-2', 'node-3'),
          startedAt: now,
          ratePerSec: 40,
        },
      },
      added: ['node-4'],
      removed: [],
      warnings: [],
    });
  });

  test('--weight overrides the registered weight; no --rate leaves the rate out', () => {
    const change = planScaleOut({ current: ring(), nodes: all, ids: ['node-4'], weight: 3, now });
    expect(change.next.members[3]).toEqual({ id: 'node-4', weight: 3 });
    expect(change.next.transition).not.toHaveProperty('ratePerSec');
  });

  test('the first configuration has no transition', () => {
    const change = planScaleOut({ current: undefined, nodes: all, ids: ['node-1', 'node-2'], now });
    expect(change.expectedModRevision).toBe(0);
    expect(change.next).toEqual({ epoch: 1, members: members('node-1', 'node-2') });
    expect(change.warnings[0]).toContain('first');
  });

  test('an open transition is superseded with a warning', () => {
    const open: VersionedRing = {
      config: {
        ...ring().config,
        transition: { fromEpoch: 4, fromMembers: members('node-1'), startedAt: 1 },
      },
      modRevision: 80,
    };
    const change = planScaleOut({ current: open, nodes: all, ids: ['node-4'], now });
    expect(change.next.transition?.fromEpoch).toBe(5);
    expect(change.warnings.join()).toContain('supersedes');
  });

  test.each([
    [['node-9'], 'UNKNOWN_NODE'],
    [['node-2'], 'ALREADY_MEMBER'],
    [['node-4', 'node-3'], 'ALREADY_MEMBER'],
    [['node-4', 'node-4'], 'USAGE'],
    [['bad id'], 'USAGE'],
    [[], 'USAGE'],
  ])('%j: %s', (ids, expected) => {
    expect(reason(() => planScaleOut({ current: ring(), nodes: all, ids, now }))).toBe(expected);
  });

  test('a leaving node, or a previous member that is gone, is not alive', () => {
    const leaving = nodes(node('node-1'), node('node-5', { leaving: true }));
    expect(
      reason(() => planScaleOut({ current: ring(), nodes: leaving, ids: ['node-5'], now })),
    ).toBe('NOT_ALIVE');
    const open: VersionedRing = {
      config: {
        epoch: 6,
        members: members('node-1'),
        transition: { fromEpoch: 5, fromMembers: members('node-1', 'node-2'), startedAt: 1 },
      },
      modRevision: 9,
    };
    expect(
      reason(() =>
        planScaleOut({ current: open, nodes: nodes(node('node-1')), ids: ['node-2'], now }),
      ),
    ).toBe('NOT_ALIVE');
  });

  test('bad rate or weight is a usage error', () => {
    expect(
      reason(() =>
        planScaleOut({ current: ring(), nodes: all, ids: ['node-4'], ratePerSec: 0, now }),
      ),
    ).toBe('USAGE');
    expect(
      reason(() =>
        planScaleOut({ current: ring(), nodes: all, ids: ['node-4'], weight: 101, now }),
      ),
    ).toBe('USAGE');
  });
});

describe('scale-in', () => {
  test('removes members, keeping the order of the others', () => {
    const change = planScaleIn({
      current: ring(),
      nodes: all,
      ids: ['node-2'],
      ratePerSec: 10,
      now,
    });
    expect(change.next).toEqual({
      epoch: 6,
      members: members('node-1', 'node-3'),
      transition: {
        fromEpoch: 5,
        fromMembers: members('node-1', 'node-2', 'node-3'),
        startedAt: now,
        ratePerSec: 10,
      },
    });
    expect(change.removed).toEqual(['node-2']);
  });

  test('a dead member can be removed, with a warning', () => {
    const alive = nodes(node('node-1'), node('node-3'));
    const change = planScaleIn({ current: ring(), nodes: alive, ids: ['node-2'], now });
    expect(change.warnings.join()).toContain('node-2 is not alive');
  });

  test.each([
    [['node-4'], 'NOT_MEMBER'],
    [['node-9'], 'UNKNOWN_NODE'],
    [['node-1', 'node-2', 'node-3'], 'LAST_MEMBER'],
  ])('%j: %s', (ids, expected) => {
    expect(reason(() => planScaleIn({ current: ring(), nodes: all, ids, now }))).toBe(expected);
  });

  test('refuses to leave no live member', () => {
    const onlyOne = nodes(node('node-1'));
    expect(
      reason(() => planScaleIn({ current: ring(), nodes: onlyOne, ids: ['node-1'], now })),
    ).toBe('LAST_MEMBER');
  });

  test('without a ring there is nothing to remove', () => {
    expect(
      reason(() => planScaleIn({ current: undefined, nodes: all, ids: ['node-1'], now })),
    ).toBe('NO_RING');
  });
});

describe('drain-rate', () => {
  test('next epoch, same members and transition, new rate', () => {
    const open: VersionedRing = {
      config: {
        epoch: 6,
        members: members('node-1', 'node-4'),
        transition: {
          fromEpoch: 5,
          fromMembers: members('node-1'),
          startedAt: 123,
          ratePerSec: 40,
        },
      },
      modRevision: 90,
    };
    expect(planDrainRate({ current: open, ratePerSec: 5 })).toEqual({
      expectedModRevision: 90,
      next: {
        epoch: 7,
        members: members('node-1', 'node-4'),
        transition: { fromEpoch: 5, fromMembers: members('node-1'), startedAt: 123, ratePerSec: 5 },
      },
      added: [],
      removed: [],
      warnings: [],
    });
  });

  test('no open transition, no ring, or a bad rate are refused', () => {
    expect(reason(() => planDrainRate({ current: ring(), ratePerSec: 5 }))).toBe('NO_TRANSITION');
    expect(reason(() => planDrainRate({ current: undefined, ratePerSec: 5 }))).toBe('NO_RING');
    expect(reason(() => planDrainRate({ current: ring(), ratePerSec: -1 }))).toBe('USAGE');
  });
});
