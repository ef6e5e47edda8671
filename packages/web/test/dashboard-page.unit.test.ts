import type { DashboardDrain, DashboardState, RingArc } from '@chat/protocol/dashboard-feed';
import { ColourBook, colourAt } from '../src/dashboard/colours';
import {
  drainSummary,
  formatConnections,
  formatCount,
  formatDuration,
  formatPercent,
  formatRate,
  formatShare,
} from '../src/dashboard/format';
import { arcPath, arcShares, ringPaths } from '../src/dashboard/ring-svg';

const C = { cx: 200, cy: 200, r: 100 };

describe('ring geometry', () => {
  it('starts at 12 o’clock and goes clockwise', () => {
    expect(arcPath(C, 0, 0.25)).toBe('M 200.00 100.00 A 100 100 0 0 1 300.00 200.00');
    expect(arcPath(C, 0.5, 0.75)).toBe('M 200.00 300.00 A 100 100 0 0 1 100.00 200.00');
  });

  it('sets the large-arc flag past half a turn', () => {
    expect(arcPath(C, 0, 0.75)).toContain(' 0 1 1 ');
    expect(arcPath(C, 0, 0.5)).toContain(' 0 0 1 ');
  });

  it('draws a whole circle as two halves', () => {
    expect(arcPath(C, 0, 1)).toBe(
      'M 200.00 100.00 A 100 100 0 0 1 200.00 300.00 M 200.00 300.00 A 100 100 0 0 1 200.00 100.00',
    );
  });

  it('makes one path per node and measures shares', () => {
    const arcs: RingArc[] = [
      { start: 0, end: 0.1, node: 'b' },
      { start: 0.1, end: 0.6, node: 'a' },
      { start: 0.6, end: 0.6, node: 'c' }, // empty: skipped
      { start: 0.6, end: 1, node: 'b' },
    ];
    const paths = ringPaths(C, arcs);
    expect([...paths.keys()]).toEqual(['b', 'a']);
    expect(paths.get('b')?.match(/M /g)).toHaveLength(2);
    const shares = arcShares(arcs);
    expect(shares.get('a')).toBeCloseTo(0.5);
    expect(shares.get('b')).toBeCloseTo(0.5);
  });
});

describe('colours', () => {
  it('gives ids seen together colours in id order, and keeps them', () => {
    const book = new ColourBook();
    book.see(['node-10', 'node-2', 'node-1']);
    expect(['node-1', 'node-2', 'node-10'].map((id) => book.of(id))).toEqual([
      colourAt(0),
      colourAt(1),
      colourAt(2),
    ]);
    // A newcomer gets the next colour; nobody else is repainted.
    book.see(['node-0', 'node-1']);
    expect(book.of('node-0')).toBe(colourAt(3));
    expect(book.of('node-1')).toBe(colourAt(0));
  });

  it('has distinct colours beyond the palette', () => {
    const colours = Array.from({ length: 30 }, (_, i) => colourAt(i));
    expect(new Set(colours).size).toBe(30);
  });
});

describe('format', () => {
  it('writes numbers for the table', () => {
    expect(formatShare(0.25678)).toBe('25.7 %');
    expect(formatCount(null)).toBe('–');
    expect(formatCount(12345)).toBe('12,345');
    expect(formatConnections(1200)).toBe('1,200');
    expect(formatConnections(1200, 14)).toBe('1,200 (14 moving out)');
    expect(formatConnections(null, 0)).toBe('–');
    expect(formatRate(null)).toBe('–');
    expect(formatRate(3.25)).toBe('3.3');
    expect(formatRate(123.4)).toBe('123');
    expect(formatPercent(100)).toBe('100 %');
    expect(formatPercent(33.3)).toBe('33.3 %');
    expect(formatDuration(4_400)).toBe('4 s');
    expect(formatDuration(65_000)).toBe('1 min 5 s');
    expect(formatDuration(3_720_000)).toBe('1 h 2 min');
  });

  const drain = (nodeId: string, moved: number, total: number): DashboardDrain => ({
    nodeId,
    epoch: 2,
    total,
    moved,
    remaining: total - moved,
    ratePerSec: 10,
    peakPerSec: 10,
    done: moved === total,
    percent: total === 0 ? 100 : (moved * 100) / total,
    startedAt: 0,
    updatedAt: 1000,
  });

  const state = (fields: Partial<DashboardState>): DashboardState => ({
    at: 12_000,
    revision: 9,
    epoch: 2,
    nodes: [],
    transition: null,
    drains: [],
    polledAt: null,
    ...fields,
  });

  it('sums up a rebalance in progress', () => {
    const transition = { fromEpoch: 1, startedAt: 2_000, ratePerSec: 10, added: [], removed: [] };
    expect(
      drainSummary(state({ transition, drains: [drain('node-1', 5, 10), drain('node-2', 3, 3)] })),
    ).toBe(
      'Rebalancing from epoch 1 to 2 for 10 s at 10 users/s per node: 8 of 13 users moved, 1 node draining.',
    );
    expect(
      drainSummary(
        state({ transition: { ...transition, ratePerSec: null }, drains: [drain('n', 3, 3)] }),
      ),
    ).toBe(
      "Rebalancing from epoch 1 to 2 for 10 s at each node's default rate: 3 of 3 users moved, every drain done; the transition closes shortly.",
    );
  });

  it('sums up the last rebalance, or none', () => {
    expect(drainSummary(state({}))).toBe('No rebalance in progress; no users had to move.');
    expect(drainSummary(state({ drains: [drain('node-1', 4, 4)] }))).toBe(
      'No rebalance in progress. Last drains: 4 of 4 users moved.',
    );
  });
});
