import { batchSizesBetween, parseBatchBuckets } from '../src/batch-sizes';

const text = (counts: readonly [string, number][], kind = 'send'): string =>
  counts
    .map(([le, n]) => `chat_pg_batch_size_bucket{kind="${kind}",node="n1",le="${le}"} ${n}`)
    .join('\n');

describe('batch sizes from the nodes histograms', () => {
  it('parses buckets per kind and sums them over nodes', () => {
    const parsed = parseBatchBuckets(
      `# HELP x\n${text([
        ['1', 2],
        ['+Inf', 3],
      ])}\n${text(
        [
          ['1', 5],
          ['+Inf', 5],
        ],
        'user',
      )}`,
    );
    expect([...parsed.keys()].sort()).toEqual(['send', 'user']);
    expect(parsed.get('send')!.get(Number.POSITIVE_INFINITY)).toBe(3);
  });

  it('reads percentiles off the difference of two scrapes', () => {
    const before = parseBatchBuckets(
      text([
        ['1', 10],
        ['4', 10],
        ['16', 10],
        ['+Inf', 10],
      ]),
    );
    // 100 more batches: 50 of size 1, 40 of 2-4, 9 of 5-16, 1 larger.
    const after = parseBatchBuckets(
      text([
        ['1', 60],
        ['4', 100],
        ['16', 109],
        ['+Inf', 110],
      ]),
    );
    expect(batchSizesBetween(before, after)).toEqual({
      send: { count: 100, p50: 1, p90: 4, p99: 16, max: Number.POSITIVE_INFINITY },
    });
  });

  it('leaves out kinds without batches in the step', () => {
    const same = parseBatchBuckets(
      text([
        ['1', 3],
        ['+Inf', 3],
      ]),
    );
    expect(batchSizesBetween(same, same)).toEqual({});
  });
});
