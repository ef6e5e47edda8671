import type { DbSizes, SoakMinute } from '../src';
import { tableOfShard } from '../src/soak/pg-sizes';
import {
  judgeFlat,
  judgedSpan,
  leastSquaresSlope,
  renderPanels,
  renderSoakMarkdown,
  renderSoakSvg,
  soakSeries,
  verdictLines,
} from '../src';

describe('flatness verdict', () => {
  it('fits the least-squares slope of a line and of noisy points around it', () => {
    expect(leastSquaresSlope([3, 5, 7, 9])).toBeCloseTo(2, 10);
    expect(leastSquaresSlope([10, 12, 10, 12, 10, 12])).toBeCloseTo(3 / 17.5, 10);
    expect(leastSquaresSlope([42])).toBe(0);
  });

  it('judges only the last two thirds: a warm-up ramp followed by a plateau is flat', () => {
    const values = [50, 70, 90, 100, 101, 99, 100, 100, 101];
    expect(judgedSpan(values)).toEqual([100, 101, 99, 100, 100, 101]);
    const verdict = judgeFlat(values, 0.1);
    expect(verdict.samples).toBe(6);
    expect(verdict.flat).toBe(true);
    expect(verdict.mean).toBeCloseTo(100.1667, 3);
  });

  it('flags a leak of 1 % per minute over 30 minutes and passes noise of ±5 %', () => {
    const leak = Array.from({ length: 30 }, (_, i) => 200 * (1 + 0.01 * i));
    const leaking = judgeFlat(leak, 0.1);
    expect(leaking.flat).toBe(false);
    // The last 20 minutes: 19 steps of 2 MiB over a mean of 239 MiB.
    expect(leaking.changeRatio).toBeCloseTo((2 * 19) / 239, 10);
    const noise = Array.from({ length: 30 }, (_, i) => 200 * (1 + (i % 2 === 0 ? 0.05 : -0.05)));
    expect(judgeFlat(noise, 0.1).flat).toBe(true);
  });

  it('says nothing with fewer than three judged samples, and calls all-zero flat', () => {
    expect(judgeFlat([1, 2, 3], 0.1).flat).toBeNull();
    expect(judgeFlat([0, 0, 0, 0, 0, 0], 0.1)).toMatchObject({ flat: true, changeRatio: 0 });
    expect(judgeFlat([0, 0, 0, 0, 0, 5], 0.1).flat).toBe(false);
    // ...unless the change is under the series' floor.
    expect(judgeFlat([0, 0, 0, 0, 0, 5], 0.1, 10)).toMatchObject({ flat: true, change: 4.5 });
  });
});

describe('SVG panels', () => {
  it('draws one panel per series with its line, the fitted line and the verdict', () => {
    const svg = renderPanels(
      [
        { title: 'node-1 RSS', unit: 'MiB', values: [100, 101, 100, 102, 101, 100], flat: true },
        { title: 'a & b', unit: 'rows', values: [1, 2, 3, 4, 5, 6], flat: false },
        { title: 'inbox rows', unit: 'rows', values: [5, NaN, 7], flat: null },
      ],
      'caption <x>',
    );
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
    expect(svg.match(/<polyline /g)).toHaveLength(3);
    // The dashed least-squares line where the judged span is complete (not over a gap).
    expect(svg.match(/stroke-dasharray/g)).toHaveLength(2);
    expect(svg).toContain('node-1 RSS (MiB) — flat');
    expect(svg).toContain('a &#38; b (rows) — GROWS');
    expect(svg).toContain('caption &#60;x&#62;');
    expect(svg).not.toMatch(/NaN/);
    // Three panels in a row of three: 900 wide; one row plus the caption.
    expect(svg).toMatch(/width="900" height="172"/);
  });
});

function sizes(messagesBytes: number, inboxBytes: number, inboxRows: number): DbSizes {
  return {
    tables: {
      messages: { bytes: messagesBytes, deadTuples: 60 },
      inbox: { bytes: inboxBytes, deadTuples: 40 },
    },
    totalBytes: messagesBytes + inboxBytes,
    deadTuples: 100,
    inboxRows,
  };
}

function minute(m: number, db: DbSizes, rssMiB: number): SoakMinute {
  return {
    minute: m,
    at: `2026-12-07T15:${String(m).padStart(2, '0')}:00.000Z`,
    nodes: {
      'node-2': { rssBytes: rssMiB * 2 ** 20, heapUsedBytes: 40 * 2 ** 20 },
      'node-1': { rssBytes: 150 * 2 ** 20, heapUsedBytes: 40 * 2 ** 20 },
    },
    db,
    deliverP50Ms: 8,
    deliverP99Ms: 40,
    scheduled: 1000,
    acked: 1000,
    skipped: 3,
    errors: 0,
    lost: 0,
    churned: 300,
    welcomes: 300,
    closeCodes: { '1000': 300 },
    drainMs: 120,
  };
}

describe('soak report', () => {
  it('tells a series that falls (settling after a rough start) from one that grows', () => {
    const settling = [300, 280, 250, 230, 210, 190, 180, 175, 170].map((rss, i) =>
      minute(i + 1, sizes(2_000_000, 2 ** 20, 10), rss),
    );
    const series = soakSeries(settling, sizes(1_000_000, 2 ** 20, 0));
    const rss = series.find((s) => s.title === 'node-2 RSS')!;
    expect(rss.verdict).toMatchObject({ flat: false, rising: false });
    expect(verdictLines(series)[1]).toMatch(/^node-2 RSS: falls \(line moves/);
    expect(renderSoakSvg(series, '')).toContain('node-2 RSS (MiB) — falls');
  });

  it('judges dead tuples per message stored: a saw-tooth under autovacuum is flat', () => {
    // 1,000 messages a minute; dead tuples climb to 20 % of them and drop, twice.
    const dead = [50, 100, 200, 300, 20, 150, 300, 450, 30];
    const samples = dead.map((d, i) => ({
      ...minute(i + 1, sizes(2_000_000, 2 ** 20, 10), 150),
      db: { ...sizes(2_000_000, 2 ** 20, 10), deadTuples: d * (i + 1) },
    }));
    const series = soakSeries(samples, sizes(1_000_000, 2 ** 20, 0));
    const perMessage = series.find((s) => s.title === 'dead tuples per message stored')!;
    expect(perMessage.values).toEqual(dead.map((d) => d / 1000));
    expect(perMessage.verdict?.flat).toBe(true);
  });

  const baseline = sizes(1_000_000, 2 ** 20, 0);
  const find = (series: ReturnType<typeof soakSeries>, title: string) =>
    series.find((s) => s.title === title)!;

  it('judges the messages table per acked message: linear growth is flat, bloat grows', () => {
    const linear = Array.from({ length: 9 }, (_, i) =>
      minute(i + 1, sizes(1_000_000 + 500 * 1000 * (i + 1), 2 ** 20, 100), 150),
    );
    const growth = find(soakSeries(linear, baseline), 'messages table growth per acked message');
    expect(growth.values).toEqual(Array.from({ length: 9 }, () => 500));
    expect(growth.verdict?.flat).toBe(true);

    // Each minute writes 20 % more bytes than the one before for the same messages.
    let total = 1_000_000;
    const bloating = Array.from({ length: 9 }, (_, i) => {
      total += 500 * 1000 * 1.2 ** i;
      return minute(i + 1, sizes(total, 2 ** 20, 100), 150);
    });
    const bloat = find(soakSeries(bloating, baseline), 'messages table growth per acked message');
    expect(bloat.verdict?.flat).toBe(false);
  });

  it('judges the inbox as a level: a hovering backlog is flat, one that piles up grows', () => {
    const hovering = [0, 130, 20, 900, 40, 2000, 10, 300, 0].map((rows, i) =>
      minute(i + 1, sizes(2_000_000, 4 * 2 ** 20, rows), 150),
    );
    const series = soakSeries(hovering, baseline);
    expect(find(series, 'inbox rows (unacked events)').verdict?.flat).toBe(true);
    expect(find(series, 'inbox table size').values).toEqual(Array.from({ length: 9 }, () => 4));
    const piling = Array.from({ length: 9 }, (_, i) =>
      minute(i + 1, sizes(2_000_000, (4 + i) * 2 ** 20, 10_000 * i), 150),
    );
    const piled = soakSeries(piling, baseline);
    expect(find(piled, 'inbox rows (unacked events)').verdict?.flat).toBe(false);
    expect(find(piled, 'inbox table size').verdict?.flat).toBe(false);
  });

  it('gives every node its memory series, flags the one that leaks, and writes the table', () => {
    const samples = Array.from({ length: 9 }, (_, i) =>
      minute(i + 1, sizes(2_000_000, 2 ** 20, 10), 150 + 10 * i),
    );
    const series = soakSeries(samples, baseline);
    expect(series.map((s) => s.title)).toEqual([
      'node-1 RSS',
      'node-2 RSS',
      'node-1 heap used',
      'node-2 heap used',
      'send→deliver p99',
      'inbox rows (unacked events)',
      'inbox table size',
      'messages table growth per acked message',
      'dead tuples per message stored',
      'dead tuples, all tables',
      'database size (all tables)',
    ]);
    const verdicts = verdictLines(series);
    expect(verdicts[0]).toMatch(/^node-1 RSS: flat \(line moves 0 MiB, 0\.0 % of the mean/);
    expect(verdicts[1]).toMatch(/^node-2 RSS: \*\*GROWS\*\* \(line moves 50 MiB, 24\.4 %/);
    expect(verdicts[5]).toMatch(/limit 25 % or 5000 rows\)$/);
    expect(verdicts[9]).toBe(
      'dead tuples, all tables: not judged (autovacuum’s threshold grows with the tables; judged per message stored)',
    );
    expect(verdicts[10]).toBe(
      'database size (all tables): not judged (messages stay for the retention period)',
    );

    const md = renderSoakMarkdown(samples, series, 'header line', ['a note']);
    expect(md).toContain('![soak series](soak.svg)');
    expect(md).toContain('| node-2 RSS (MiB) | **GROWS**');
    // One row per minute, node columns in id order.
    expect(md).toContain(
      '| 9 | 1000 | 0 | 3 | 0 | 300 | 300 | 8 / 40 | 150.0 / 40.0 | 230.0 / 40.0 | 2.9 | 100 | 10 |',
    );
    expect(md.trimEnd().endsWith('- a note')).toBe(true);
  });
});

describe('table sizes on Citus', () => {
  it('counts a shard under its table and leaves plain tables as they are', () => {
    expect(tableOfShard('inbox_102008')).toBe('inbox');
    expect(tableOfShard('chat_members_102105')).toBe('chat_members');
    expect(tableOfShard('chat_members')).toBe('chat_members');
    expect(tableOfShard('kysely_migration')).toBe('kysely_migration');
  });
});
