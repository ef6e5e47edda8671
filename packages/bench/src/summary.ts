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
  /** Sends acked with ok in the whole step (warm-up and drain included). */
  readonly acked: number;
  /** What Postgres did for the whole step, by its own statistics. */
  readonly db?: StepDbFigures;
  readonly passed: boolean;
  readonly reasons: readonly string[];
}

/** Postgres' figures over one whole step (warm-up and drain included), per acked message. */
export interface StepDbFigures {
  /** Sends acked in the step: the divisor of the per-message figures. */
  readonly messages: number;
  /** Rows inserted + updated + deleted (pg_stat_user_tables), per message. */
  readonly rowsPerMessage: number;
  /** Transactions committed in the database (pg_stat_database), per message. */
  readonly commitsPerMessage: number;
  /** CPU time of the postmaster and its children, per message, microseconds. */
  readonly pgCpuUsPerMessage: number;
  /** On Citus: the same per server (the coordinator first, then the workers). */
  readonly pgCpuUsPerMessageByServer?: readonly number[];
  /** Statements the chat nodes sent (pg_stat_statements, top level), per message. */
  readonly statementsPerMessage?: number;
  /** Top-level statements on every server, per message (Citus: with those sent on). */
  readonly serverStatementsPerMessage?: number;
  /** Rows written per table in the step (not per message). */
  readonly tables: Readonly<Record<string, { ins: number; upd: number; del: number }>>;
  /** Items per batched store statement, by kind, from the nodes' histograms. */
  readonly batches: Readonly<
    Record<string, { count: number; p50: number; p90: number; p99: number; max: number }>
  >;
  /** Share of the samples of busy backends: `CPU`, `Lock:transactionid`, `IO:WALSync`, ... */
  readonly waits: Readonly<Record<string, number>>;
  readonly waitSamples: number;
  /** The costliest statements of the step (pg_stat_statements). */
  readonly topStatements: readonly {
    query: string;
    calls: number;
    totalMs: number;
    meanMs: number;
    rows: number;
    walBytes: number;
    walFpi: number;
    dirtied: number;
  }[];
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
  /** Runs at the reference rates (e.g. 550 msgs/s, a latency target's rate). */
  readonly reference: readonly StepResult[];
  readonly rssBeforeBytes: number;
  readonly rssConnectedBytes: number;
  readonly rssPerUserBytes: number;
  readonly connectSec: number;
  readonly bare: BareLimitResult;
  readonly fsync: FsyncResult;
  /** On Citus: rows per shard of the busiest tables at the end of the repeat. */
  readonly shardRows?: Readonly<
    Record<string, { shards: number; min: number; median: number; max: number }>
  >;
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
  readonly rowsPerMessage: Spread | null;
  readonly commitsPerMessage: Spread | null;
  readonly pgCpuUsPerMessage: Spread | null;
  readonly statementsPerMessage: Spread | null;
  readonly serverStatementsPerMessage: Spread | null;
  readonly sendBatchP50: Spread | null;
  readonly sendBatchP99: Spread | null;
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
  /** The half-rate run and the reference runs, as step rows. */
  readonly extra: readonly (StepRow & { readonly label: string })[];
}

export function summarizeDurable1to1(repeats: readonly Durable1to1Repeat[]): Durable1to1Summary {
  const of = (pick: (r: Durable1to1Repeat) => number | null | undefined): Spread | null =>
    spread(repeats.map(pick).filter((v): v is number => typeof v === 'number'));
  const rates = [...new Set(repeats.flatMap((r) => r.steps.map((s) => s.offeredRate)))].sort(
    (a, b) => a - b,
  );
  const row = (rate: number, at: readonly StepResult[]): StepRow => {
    const col = (pick: (s: StepResult) => number | undefined): Spread | null =>
      spread(at.map(pick).filter((v): v is number => typeof v === 'number'));
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
      rowsPerMessage: col((s) => s.db?.rowsPerMessage),
      commitsPerMessage: col((s) => s.db?.commitsPerMessage),
      pgCpuUsPerMessage: col((s) => s.db?.pgCpuUsPerMessage),
      statementsPerMessage: col((s) => s.db?.statementsPerMessage),
      serverStatementsPerMessage: col((s) => s.db?.serverStatementsPerMessage),
      sendBatchP50: col((s) => s.db?.batches['send']?.p50),
      sendBatchP99: col((s) => s.db?.batches['send']?.p99),
    };
  };
  const steps = rates.map((rate) =>
    row(
      rate,
      repeats.flatMap((r) => r.steps.filter((s) => s.offeredRate === rate)),
    ),
  );
  const halves = repeats.flatMap((r) => (r.half === null ? [] : [r.half]));
  const extra: (StepRow & { label: string })[] = [];
  if (halves.length > 0) {
    extra.push({ ...row(halves[0]!.offeredRate, halves), label: 'half the highest rate' });
  }
  const referenceRates = [
    ...new Set(repeats.flatMap((r) => r.reference.map((s) => s.offeredRate))),
  ];
  for (const rate of referenceRates) {
    const at = repeats.flatMap((r) => r.reference.filter((s) => s.offeredRate === rate));
    extra.push({ ...row(rate, at), label: `reference rate ${rate} msgs/s` });
  }
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
    extra,
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
  lines.push(
    'Steps (CPU in cores = CPU seconds per second of the measurement window; rows, commits, statements and Postgres CPU per acked message over the whole step; statements = those the chat nodes sent / all top-level statements of every server; send batch = sends per group-commit statement):',
  );
  lines.push('');
  lines.push(
    '| offered msgs/s | passed | achieved msgs/s | ack p99 ms | deliver p50 ms | deliver p99 ms | node cores | Postgres cores | generator cores | generator lag p99 ms | rows/msg | commits/msg | statements/msg | pg µs/msg | send batch p50/p99 |',
  );
  lines.push(
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
  );
  const stepLine = (label: string, s: StepRow): string =>
    `| ${label} | ${s.passed}/${s.runs} | ${formatSpread(s.achievedRate)} | ${formatSpread(s.ackP99Ms, 1)} | ` +
    `${formatSpread(s.deliverP50Ms, 1)} | ${formatSpread(s.deliverP99Ms, 1)} | ${formatSpread(s.nodeCores, 2)} | ` +
    `${formatSpread(s.postgresCores, 2)} | ${formatSpread(s.generatorCores, 2)} | ${formatSpread(s.lagP99Ms, 1)} | ` +
    `${formatSpread(s.rowsPerMessage, 2)} | ${formatSpread(s.commitsPerMessage, 2)} | ` +
    `${formatSpread(s.statementsPerMessage, 2)} / ${formatSpread(s.serverStatementsPerMessage, 2)} | ${formatSpread(s.pgCpuUsPerMessage)} | ` +
    `${formatSpread(s.sendBatchP50)} / ${formatSpread(s.sendBatchP99)} |`;
  for (const s of summary.steps) lines.push(stepLine(String(s.rate), s));
  for (const s of summary.extra) lines.push(stepLine(`${s.rate} (${s.label})`, s));
  if (info.notes.length > 0) {
    lines.push('');
    for (const note of info.notes) lines.push(`- ${note}`);
  }
  lines.push('');
  return lines.join('\n');
}
