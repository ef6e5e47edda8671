/**
 * Result types of the benchmarks and their summaries: medians with min and max over repeats,
 * and the Markdown table written next to the JSON.
 */

/** Percentiles of one latency histogram, milliseconds. */
export interface LatencySummary {
  readonly count: number;
  readonly p50Ms: number;
  readonly p90Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
}

/** CPU seconds used during a measurement window. */
export interface CpuSeconds {
  readonly node: number;
  readonly postgres: number;
  readonly generator: number;
}

/** One offered rate, measured over its window (warm-up excluded). */
export interface StepResult {
  readonly offeredRate: number;
  readonly windowSec: number;
  /** Sends actually written to sockets in the window, per second. */
  readonly sentRate: number;
  /** ok replies received in the window, per second. */
  readonly ackedRate: number;
  /** Events delivered to recipients in the window, per second. */
  readonly achievedRate: number;
  /** send -> ok on the sender, from the scheduled send time. */
  readonly ack: LatencySummary;
  /** send -> evt on the recipient, from the scheduled send time. */
  readonly deliver: LatencySummary;
  /** How late the generator wrote sends compared with their schedule. */
  readonly lag: LatencySummary;
  readonly errors: number;
  /** Window messages with no ok or no delivery by the drain deadline. */
  readonly undelivered: number;
  /** Connections the node closed during the step, and their close codes. */
  readonly disconnects: number;
  readonly closeCodes: Readonly<Record<string, number>>;
  readonly cpu: CpuSeconds;
  /** Milliseconds from the end of the schedule until every ok and delivery was in (or the deadline). */
  readonly drainMs: number;
  /** Postgres transaction commits per second in the database during the whole step. */
  readonly pgCommitsPerSec: number;
  readonly passed: boolean;
  readonly reasons: readonly string[];
}

/** The bare-`pg` limit: the rows of sends written with the store's batching. */
export interface BareLimitResult {
  readonly messagesPerSec: number;
  readonly transactions: number;
  readonly avgBatch: number;
  readonly seconds: number;
  /** Postgres CPU seconds per second (cores) during the run. */
  readonly postgresCores: number;
}

export interface FsyncResult {
  readonly commitsPerSec: number;
  readonly commits: number;
  readonly seconds: number;
}

export interface Durable1to1Repeat {
  readonly steps: readonly StepResult[];
  /** Highest offered rate that passed, msgs/s. */
  readonly highestRate: number | null;
  /** The run at half the highest rate. */
  readonly half: StepResult | null;
  readonly rssBeforeBytes: number;
  readonly rssConnectedBytes: number;
  readonly rssPerUserBytes: number;
  readonly connectSec: number;
  readonly bare: BareLimitResult;
  readonly fsync: FsyncResult;
}

export interface Spread {
  readonly median: number;
  readonly min: number;
  readonly max: number;
  readonly n: number;
}

/** Median (mean of the middle two for an even count), min and max; null for no values. */
export function spread(values: readonly number[]): Spread | null {
  const sorted = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  const n = sorted.length;
  if (n === 0) return null;
  const mid = Math.floor(n / 2);
  const median = n % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  return { median, min: sorted[0]!, max: sorted[n - 1]!, n };
}

export interface StepRow {
  readonly rate: number;
  readonly runs: number;
  readonly passed: number;
  readonly achievedRate: Spread | null;
  readonly ackP99Ms: Spread | null;
  readonly deliverP50Ms: Spread | null;
  readonly deliverP99Ms: Spread | null;
  /** CPU seconds per second of window, i.e. cores busy. */
  readonly nodeCores: Spread | null;
  readonly postgresCores: Spread | null;
  readonly generatorCores: Spread | null;
  readonly lagP99Ms: Spread | null;
}

export interface Durable1to1Summary {
  readonly repeats: number;
  readonly highestRate: Spread | null;
  readonly halfAckP50Ms: Spread | null;
  readonly halfAckP99Ms: Spread | null;
  readonly halfDeliverP50Ms: Spread | null;
  readonly halfDeliverP99Ms: Spread | null;
  readonly rssPerUserBytes: Spread | null;
  readonly bareMessagesPerSec: Spread | null;
  readonly bareAvgBatch: Spread | null;
  readonly fsyncCommitsPerSec: Spread | null;
  /** Highest durable rate over the bare-script limit, per repeat. */
  readonly durableOverBare: Spread | null;
  readonly steps: readonly StepRow[];
}

export function summarizeDurable1to1(repeats: readonly Durable1to1Repeat[]): Durable1to1Summary {
  const of = (pick: (r: Durable1to1Repeat) => number | null | undefined): Spread | null =>
    spread(repeats.map(pick).filter((v): v is number => typeof v === 'number'));
  const rates = [...new Set(repeats.flatMap((r) => r.steps.map((s) => s.offeredRate)))].sort(
    (a, b) => a - b,
  );
  const steps: StepRow[] = rates.map((rate) => {
    const at = repeats.flatMap((r) => r.steps.filter((s) => s.offeredRate === rate));
    const col = (pick: (s: StepResult) => number): Spread | null => spread(at.map(pick));
    return {
      rate,
      runs: at.length,
      passed: at.filter((s) => s.passed).length,
      achievedRate: col((s) => s.achievedRate),
      ackP99Ms: col((s) => s.ack.p99Ms),
      deliverP50Ms: col((s) => s.deliver.p50Ms),
      deliverP99Ms: col((s) => s.deliver.p99Ms),
      nodeCores: col((s) => s.cpu.node / s.windowSec),
      postgresCores: col((s) => s.cpu.postgres / s.windowSec),
      generatorCores: col((s) => s.cpu.generator / s.windowSec),
      lagP99Ms: col((s) => s.lag.p99Ms),
    };
  });
  return {
    repeats: repeats.length,
    highestRate: of((r) => r.highestRate),
    halfAckP50Ms: of((r) => r.half?.ack.p50Ms),
    halfAckP99Ms: of((r) => r.half?.ack.p99Ms),
    halfDeliverP50Ms: of((r) => r.half?.deliver.p50Ms),
    halfDeliverP99Ms: of((r) => r.half?.deliver.p99Ms),
    rssPerUserBytes: of((r) => r.rssPerUserBytes),
    bareMessagesPerSec: of((r) => r.bare.messagesPerSec),
    bareAvgBatch: of((r) => r.bare.avgBatch),
    fsyncCommitsPerSec: of((r) => r.fsync.commitsPerSec),
    durableOverBare: of((r) =>
      r.highestRate === null || r.bare.messagesPerSec <= 0
        ? null
        : r.highestRate / r.bare.messagesPerSec,
    ),
    steps,
  };
}

/** `median (min–max)` with a fixed number of decimals, or `–` when there is nothing. */
export function formatSpread(s: Spread | null, decimals = 0, unit = ''): string {
  if (s === null) return '–';
  const f = (v: number): string => v.toFixed(decimals);
  const range = s.n > 1 ? ` (${f(s.min)}–${f(s.max)})` : '';
  return `${f(s.median)}${unit}${range}`;
}

function scale(s: Spread | null, factor: number): Spread | null {
  return s === null
    ? null
    : { median: s.median * factor, min: s.min * factor, max: s.max * factor, n: s.n };
}

export interface RunInfo {
  readonly date: string;
  readonly host: string;
  /** git commit measured (`+dirty` with local changes). */
  readonly revision: string;
  readonly cpus: number;
  readonly loadAvg: readonly number[];
  readonly users: number;
  readonly codec: string;
  readonly ackEveryMs: number;
  readonly stepSec: string;
  readonly notes: readonly string[];
}

/** The Markdown report of a durable-1to1 run. */
export function renderDurable1to1Markdown(summary: Durable1to1Summary, info: RunInfo): string {
  const lines: string[] = [];
  lines.push('# durable-1to1');
  lines.push('');
  lines.push(
    `${info.date}, commit ${info.revision}, ${info.host}, ${info.cpus} CPUs (load average at start ${info.loadAvg.map((l) => l.toFixed(2)).join(' ')}), ` +
      `${info.users} users in ${info.users / 2} 1:1 chats on one node, ${info.codec} codec, devices ack every ${info.ackEveryMs} ms, ` +
      `durable Postgres (fsync and synchronous_commit on), steps of ${info.stepSec}. ` +
      `Medians of ${summary.repeats} repeat(s), (min–max) beside them.`,
  );
  lines.push('');
  lines.push('| measure | value |');
  lines.push('| --- | --- |');
  lines.push(
    `| highest sustained durable rate | ${formatSpread(summary.highestRate, 0, ' msgs/s')} |`,
  );
  lines.push(
    `| bare-script Postgres limit (same rows, same batching) | ${formatSpread(summary.bareMessagesPerSec, 0, ' msgs/s')}, avg batch ${formatSpread(summary.bareAvgBatch, 0)} |`,
  );
  lines.push(`| durable rate / bare limit | ${formatSpread(summary.durableOverBare, 2)} |`);
  lines.push(
    `| raw fsync rate (single-row INSERT commits, 1 connection) | ${formatSpread(summary.fsyncCommitsPerSec, 0, ' commits/s')} |`,
  );
  lines.push(`| send→ack p50 at half rate | ${formatSpread(summary.halfAckP50Ms, 1, ' ms')} |`);
  lines.push(`| send→ack p99 at half rate | ${formatSpread(summary.halfAckP99Ms, 1, ' ms')} |`);
  lines.push(
    `| send→deliver p50 at half rate | ${formatSpread(summary.halfDeliverP50Ms, 1, ' ms')} |`,
  );
  lines.push(
    `| send→deliver p99 at half rate | ${formatSpread(summary.halfDeliverP99Ms, 1, ' ms')} |`,
  );
  lines.push(
    `| node RSS per idle connected user | ${formatSpread(scale(summary.rssPerUserBytes, 1 / 1024), 2, ' KiB')} |`,
  );
  lines.push('');
  lines.push('Steps (CPU in cores = CPU seconds per second of the measurement window):');
  lines.push('');
  lines.push(
    '| offered msgs/s | passed | achieved msgs/s | ack p99 ms | deliver p50 ms | deliver p99 ms | node cores | Postgres cores | generator cores | generator lag p99 ms |',
  );
  lines.push('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const s of summary.steps) {
    lines.push(
      `| ${s.rate} | ${s.passed}/${s.runs} | ${formatSpread(s.achievedRate)} | ${formatSpread(s.ackP99Ms, 1)} | ` +
        `${formatSpread(s.deliverP50Ms, 1)} | ${formatSpread(s.deliverP99Ms, 1)} | ${formatSpread(s.nodeCores, 2)} | ` +
        `${formatSpread(s.postgresCores, 2)} | ${formatSpread(s.generatorCores, 2)} | ${formatSpread(s.lagP99Ms, 1)} |`,
    );
  }
  if (info.notes.length > 0) {
    lines.push('');
    for (const note of info.notes) lines.push(`- ${note}`);
  }
  lines.push('');
  return lines.join('\n');
}
