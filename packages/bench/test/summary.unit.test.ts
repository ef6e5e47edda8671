import type { Durable1to1Repeat, LatencySummary, RunInfo, StepResult } from '../src';
import {
  formatSpread,
  parseStat,
  renderDurable1to1Markdown,
  spread,
  summarizeDurable1to1,
} from '../src';

function latency(p50: number, p99: number): LatencySummary {
  return { count: 100, p50Ms: p50, p90Ms: p99, p99Ms: p99, maxMs: p99 * 2 };
}

function step(rate: number, passed: boolean, deliverP99: number): StepResult {
  return {
    offeredRate: rate,
    windowSec: 6,
    sentRate: rate,
    ackedRate: rate,
    achievedRate: rate,
    ack: latency(5, deliverP99 - 1),
    deliver: latency(6, deliverP99),
    lag: latency(1, 2),
    errors: 0,
    undelivered: 0,
    disconnects: 0,
    closeCodes: {},
    cpu: { node: 3, postgres: 6, generator: 1.2 },
    drainMs: 12,
    acked: rate * 8,
    db: {
      messages: rate * 8,
      rowsPerMessage: 4.5,
      commitsPerMessage: 0.25,
      pgCpuUsPerMessage: 300,
      tables: { inbox: { ins: rate * 8, upd: 0, del: rate * 8 } },
      batches: { send: { count: 100, p50: 8, p90: 16, p99: 32, max: 48 } },
      waits: { CPU: 0.6, 'IO:WALSync': 0.4 },
      waitSamples: 80,
      topStatements: [],
    },
    passed,
    reasons: passed ? [] : ['slow'],
  };
}

function repeat(highest: number, halfP99: number, bare: number): Durable1to1Repeat {
  return {
    steps: [step(250, true, 20), step(500, highest >= 500, 150), step(1000, false, 400)],
    highestRate: highest,
    half: step(highest / 2, true, halfP99),
    reference: [step(550, true, 30)],
    rssBeforeBytes: 100 * 2 ** 20,
    rssConnectedBytes: 100 * 2 ** 20 + 3 * 1024 * 1000,
    rssPerUserBytes: 3 * 1024,
    connectSec: 2,
    bare: { messagesPerSec: bare, transactions: 10, avgBatch: 256, seconds: 5, postgresCores: 1 },
    fsync: { commitsPerSec: 1500, commits: 4500, seconds: 3 },
  };
}

describe('spread', () => {
  it('gives the median, min and max', () => {
    expect(spread([3, 1, 2])).toEqual({ median: 2, min: 1, max: 3, n: 3 });
    expect(spread([4, 1, 2, 3])).toEqual({ median: 2.5, min: 1, max: 4, n: 4 });
    expect(spread([7])).toEqual({ median: 7, min: 7, max: 7, n: 1 });
  });

  it('ignores values that are not finite and gives null for none', () => {
    expect(spread([])).toBeNull();
    expect(spread([NaN, Infinity])).toBeNull();
    expect(spread([1, NaN, 3])).toEqual({ median: 2, min: 1, max: 3, n: 2 });
  });

  it('formats as median (min–max)', () => {
    expect(formatSpread(spread([10, 12.34, 11]), 1, ' ms')).toBe('11.0 ms (10.0–12.3)');
    expect(formatSpread(spread([5]))).toBe('5');
    expect(formatSpread(null)).toBe('–');
  });
});

describe('summarizeDurable1to1', () => {
  const repeats = [repeat(500, 30, 10_000), repeat(250, 50, 12_000), repeat(500, 40, 11_000)];
  const summary = summarizeDurable1to1(repeats);

  it('takes medians over the repeats', () => {
    expect(summary.repeats).toBe(3);
    expect(summary.highestRate).toEqual({ median: 500, min: 250, max: 500, n: 3 });
    expect(summary.halfDeliverP99Ms?.median).toBe(40);
    expect(summary.bareMessagesPerSec?.median).toBe(11_000);
    expect(summary.durableOverBare?.median).toBeCloseTo(500 / 11_000);
    expect(summary.rssPerUserBytes?.median).toBe(3072);
  });

  it('has one row per offered rate, with CPU as cores', () => {
    expect(summary.steps.map((s) => [s.rate, s.runs, s.passed])).toEqual([
      [250, 3, 3],
      [500, 3, 2],
      [1000, 3, 0],
    ]);
    expect(summary.steps[0]!.nodeCores?.median).toBeCloseTo(0.5);
    expect(summary.steps[0]!.postgresCores?.median).toBeCloseTo(1);
  });

  it('carries the per-message Postgres figures and the half and reference runs', () => {
    expect(summary.steps[0]!.rowsPerMessage?.median).toBeCloseTo(4.5);
    expect(summary.steps[0]!.sendBatchP99?.median).toBe(32);
    expect(summary.extra.map((e) => [e.label, e.rate, e.runs])).toEqual([
      ['half the highest rate', 250, 3],
      ['reference rate 550 msgs/s', 550, 3],
    ]);
  });

  it('renders a Markdown table', () => {
    const info: RunInfo = {
      date: '2026-01-01T00:00:00.000Z',
      host: 'test',
      revision: 'abc1234',
      cpus: 2,
      loadAvg: [1, 1, 1],
      users: 1000,
      codec: 'json',
      ackEveryMs: 20,
      stepSec: '2 s + 6 s',
      notes: ['a note'],
    };
    const md = renderDurable1to1Markdown(summary, info);
    expect(md).toContain('| highest sustained durable rate | 500 msgs/s (250–500) |');
    expect(md).toContain('| node RSS per idle connected user | 3.00 KiB (3.00–3.00) |');
    expect(md).toContain('| 500 | 2/3 |');
    expect(md).toContain(
      '| 4.50 (4.50–4.50) | 0.25 (0.25–0.25) | – / – | 300 (300–300) | 8 (8–8) / 32 (32–32) |',
    );
    expect(md).toContain('| 550 (reference rate 550 msgs/s) | 3/3 |');
    expect(md).toContain('- a note');
  });
});

describe('parseStat', () => {
  it('reads ppid and CPU ticks, also with spaces and parens in the name', () => {
    const fields = Array.from({ length: 50 }, (_, i) => String(i + 3));
    fields[4 - 3] = '77'; // ppid
    fields[14 - 3] = '100'; // utime
    fields[15 - 3] = '20'; // stime
    fields[16 - 3] = '5'; // cutime
    fields[17 - 3] = '1'; // cstime
    const text = `1234 (post (gres) x) ${['S', ...fields.slice(1)].join(' ')}\n`;
    expect(parseStat(text)).toEqual({ pid: 1234, ppid: 77, ownTicks: 120, childTicks: 6 });
  });
});
