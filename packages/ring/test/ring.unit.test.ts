import { buildRing, movedUsers, ringShares } from '../src';
import type { RingMember } from '../src';

const users = Array.from({ length: 10_000 }, (_, i) => `user-${i}`);
const nodes = (n: number, weight = 1): RingMember[] =>
  Array.from({ length: n }, (_, i) => ({ id: `node-${i + 1}`, weight }));

describe('buildRing', () => {
  it('gives the same owners whatever the input order', () => {
    const members = [...nodes(5), { id: 'big', weight: 2.5 }];
    const a = buildRing(members);
    const b = buildRing([...members].reverse());
    const c = buildRing([
      members[3]!,
      members[0]!,
      members[5]!,
      members[1]!,
      members[4]!,
      members[2]!,
    ]);
    const owners = users.map((u) => a.owner(u));
    expect(users.map((u) => b.owner(u))).toEqual(owners);
    expect(users.map((u) => c.owner(u))).toEqual(owners);
    expect(new Set(owners).size).toBe(6);
    expect(a.members.map((m) => m.id)).toEqual([
      'big',
      'node-1',
      'node-2',
      'node-3',
      'node-4',
      'node-5',
    ]);
  });

  it('answers undefined on an empty ring', () => {
    for (const ring of [buildRing([]), buildRing([{ id: 'idle', weight: 0 }])]) {
      expect(ring.isEmpty).toBe(true);
      expect(ring.members).toEqual([]);
      expect(ring.owner('alice')).toBeUndefined();
      expect(ringShares(ring)).toEqual([]);
    }
  });

  it('rejects duplicate ids and bad weights', () => {
    expect(() => buildRing([...nodes(2), { id: 'node-1', weight: 1 }])).toThrow(RangeError);
    expect(() => buildRing([{ id: 'a', weight: -1 }])).toThrow(RangeError);
    expect(() => buildRing([{ id: 'a', weight: Number.NaN }])).toThrow(RangeError);
    expect(() => buildRing([{ id: '', weight: 1 }])).toThrow(RangeError);
    expect(() => buildRing(nodes(2), { cacheSize: 0 })).toThrow(RangeError);
  });

  it('answers ids named like Object.prototype members without corrupting the cache', () => {
    // A small cache, so that evictions happen: the unguarded library crashes on the first one.
    const ring = buildRing(nodes(3), { cacheSize: 100 });
    const reference = buildRing(nodes(3));
    for (const u of ['constructor', 'toString', '__proto__', 'hasOwnProperty', 'valueOf']) {
      expect(ring.has(ring.owner(u) ?? '')).toBe(true);
      expect(ring.owner(u)).toBe(ring.owner(u));
    }
    const sample = users.slice(0, 2000);
    expect(sample.map((u) => ring.owner(u))).toEqual(sample.map((u) => reference.owner(u)));
    expect(Object.prototype.hasOwnProperty.call(Object, 'value')).toBe(false);
  });
});

describe('ringShares', () => {
  it('sums to 1 and agrees with sampling', () => {
    const ring = buildRing(nodes(4));
    const exact = ringShares(ring);
    const sampled = ringShares(ring, 20_000);
    expect(exact.reduce((s, x) => s + x.share, 0)).toBeCloseTo(1, 9);
    exact.forEach((s, i) => {
      expect(s.share).toBeGreaterThan(0.2);
      expect(s.share).toBeLessThan(0.3);
      expect(Math.abs(s.share - sampled[i]!.share)).toBeLessThan(0.02);
    });
  });

  it('gives a heavier member a proportionally larger share', () => {
    const ring = buildRing([...nodes(3), { id: 'heavy', weight: 3 }]);
    const shares = new Map(ringShares(ring).map((s) => [s.id, s.share]));
    // Weight 3 of a total of 6: about half of the space.
    expect(shares.get('heavy')).toBeGreaterThan(0.42);
    expect(shares.get('heavy')).toBeLessThan(0.58);
    const counts = new Map<string, number>();
    for (const u of users) counts.set(ring.owner(u)!, (counts.get(ring.owner(u)!) ?? 0) + 1);
    expect(counts.get('heavy')! / users.length).toBeGreaterThan(0.42);
  });
});

describe('movedUsers', () => {
  it('moves about a quarter of the users, all to the new node, when a 4th node joins', () => {
    const before = buildRing(nodes(3));
    const after = buildRing(nodes(4));
    const moved = movedUsers(before, after, users);
    expect(new Set(moved.map((m) => m.to))).toEqual(new Set(['node-4']));
    expect(moved.filter((m) => m.from !== before.owner(m.user))).toEqual([]);
    const fraction = moved.length / users.length;
    expect(fraction).toBeGreaterThan(0.18);
    expect(fraction).toBeLessThan(0.32);
  });

  it('only moves users to the new node even with unequal weights', () => {
    const base = [
      { id: 'a', weight: 1 },
      { id: 'b', weight: 2 },
      { id: 'c', weight: 0.5 },
    ];
    const moved = movedUsers(buildRing(base), buildRing([...base, { id: 'd', weight: 3 }]), users);
    expect(moved.length).toBeGreaterThan(0);
    expect(new Set(moved.map((m) => m.to))).toEqual(new Set(['d']));
  });

  it("moves only the removed node's users when a node leaves", () => {
    const before = buildRing(nodes(4));
    const after = buildRing(nodes(4).filter((m) => m.id !== 'node-2'));
    const moved = movedUsers(before, after, users);
    const owned = users.filter((u) => before.owner(u) === 'node-2');
    expect(moved.map((m) => m.user).sort()).toEqual([...owned].sort());
    expect(new Set(moved.map((m) => m.from))).toEqual(new Set(['node-2']));
    expect(moved.filter((m) => m.to === undefined || !after.has(m.to))).toEqual([]);
  });

  it('reports moves from and to an empty ring with undefined', () => {
    const empty = buildRing([]);
    const one = buildRing(nodes(1));
    expect(movedUsers(empty, one, ['u'])).toEqual([{ user: 'u', from: undefined, to: 'node-1' }]);
    expect(movedUsers(one, empty, ['u'])).toEqual([{ user: 'u', from: 'node-1', to: undefined }]);
    expect(movedUsers(one, buildRing(nodes(1)), users)).toEqual([]);
  });
});
