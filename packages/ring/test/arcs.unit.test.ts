import { createHash } from 'node:crypto';
import { buildRing, ringArcs, ringShares } from '../src';
import type { RingArc } from '../src';

/** Where hashring puts a key on the continuum (ketama over md5), as a fraction of 2^32. */
function position(key: string): number {
  const x = createHash('md5').update(key).digest();
  return (((x[3]! << 24) | (x[2]! << 16) | (x[1]! << 8) | x[0]!) >>> 0) / 2 ** 32;
}

/** The arc a position falls in: arcs own (start, end], the first one also owns 0. */
function arcAt(arcs: readonly RingArc[], at: number): RingArc | undefined {
  if (at === 0) return arcs[0];
  return arcs.find((a) => at > a.start && at <= a.end);
}

const members = (ids: readonly string[]) => ids.map((id) => ({ id, weight: 1 }));

describe('ringArcs', () => {
  it('is empty for an empty ring', () => {
    expect(ringArcs(buildRing([]))).toEqual([]);
  });

  it('gives one member the whole circle', () => {
    expect(ringArcs(buildRing(members(['solo'])))).toEqual([{ id: 'solo', start: 0, end: 1 }]);
  });

  it('covers [0, 1] in order with merged, non-empty arcs', () => {
    const arcs = ringArcs(
      buildRing([...members(['node-1', 'node-2', 'node-3']), { id: 'big', weight: 2 }]),
    );
    expect(arcs[0]?.start).toBe(0);
    expect(arcs[arcs.length - 1]?.end).toBe(1);
    for (let i = 0; i < arcs.length; i++) {
      const arc = arcs[i]!;
      expect(arc.end).toBeGreaterThan(arc.start);
      if (i > 0) {
        expect(arc.start).toBe(arcs[i - 1]!.end);
        expect(arc.id).not.toBe(arcs[i - 1]!.id);
      }
    }
    // The wrap-around: the arc before 1 and the arc after 0 are the first point's.
    expect(arcs[arcs.length - 1]?.id).toBe(arcs[0]?.id);
    // 5 x 640 points, merged where neighbours share an owner.
    expect(arcs.length).toBeGreaterThan(1000);
    expect(arcs.length).toBeLessThan(5 * 640);
  });

  it('gives each key the arc of its owner', () => {
    const ring = buildRing(members(['node-1', 'node-2', 'node-3', 'node-4']));
    const arcs = ringArcs(ring);
    for (let i = 0; i < 5000; i++) {
      const user = `user-${i}`;
      expect({ user, owner: arcAt(arcs, position(user))?.id }).toEqual({
        user,
        owner: ring.owner(user),
      });
    }
  });

  it('puts every continuum point at the end of one of its own arcs', () => {
    const ring = buildRing(members(['a', 'b', 'c']));
    const arcs = ringArcs(ring);
    for (const [id, points] of ring.pointsByMember()) {
      for (const p of points) expect(arcAt(arcs, p / 2 ** 32)?.id).toBe(id);
    }
  });

  it('adds up to the exact shares', () => {
    const ring = buildRing(members(['node-1', 'node-2', 'node-3']));
    const sums = new Map<string, number>();
    for (const arc of ringArcs(ring))
      sums.set(arc.id, (sums.get(arc.id) ?? 0) + arc.end - arc.start);
    for (const s of ringShares(ring)) expect(sums.get(s.id)).toBeCloseTo(s.share, 12);
    expect([...sums.values()].reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
  });

  it('keeps the arcs of the others when a member joins, except where the new one takes over', () => {
    const before = ringArcs(buildRing(members(['node-1', 'node-2', 'node-3'])));
    const after = ringArcs(buildRing(members(['node-1', 'node-2', 'node-3', 'node-4'])));
    // Sample the circle: a position keeps its owner or goes to node-4.
    for (let i = 0; i < 10_000; i++) {
      const at = (i + 0.5) / 10_000;
      const was = arcAt(before, at)?.id;
      const now = arcAt(after, at)?.id;
      if (now !== was) expect(now).toBe('node-4');
    }
  });
});
