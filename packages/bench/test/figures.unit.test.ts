import { percentile } from '@chat/testkit';
import { peakPerSecondBuckets } from '../src';

describe('percentile and peakPerSecondBuckets', () => {
  it('takes the nearest rank', () => {
    const values = Array.from({ length: 100 }, (_, i) => 100 - i);
    expect(percentile(values, 50)).toBe(50);
    expect(percentile(values, 99)).toBe(99);
    expect(Number.isNaN(percentile([], 99))).toBe(true);
  });

  it('finds the busiest second per key', () => {
    const peak = peakPerSecondBuckets(
      [
        { key: 'a', at: 1000 },
        { key: 'a', at: 1500 },
        { key: 'a', at: 2100 },
        { key: 'b', at: 2100 },
      ],
      1000,
    );
    expect(peak.get('a')).toBe(2);
    expect(peak.get('b')).toBe(1);
  });
});
