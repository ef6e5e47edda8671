/**
 * The soak's series, their flatness verdicts, the Markdown table and the SVG, from the
 * per-minute samples of workloads/soak.ts. Pure: no I/O.
 *
 * Level series are judged as they are: memory, p99, dead tuples, and the inbox (events leave it
 * once every device acked them, so its rows are the unacked backlog and its size must stop
 * growing once autovacuum reuses the space). Messages stay for the retention period (30 days) by
 * design, so their table is judged per acked message: its growth since the traffic started over
 * the messages acked since then, flat when it grows linearly with the traffic.
 */
import type { DbSizes } from './pg-sizes';
import type { FlatnessVerdict } from './flatness';
import { judgeFlat } from './flatness';
import type { PanelSeries } from './svg-plot';
import { renderPanels, shortNumber } from './svg-plot';
import type { SoakMinute } from '../workloads/soak';

/** How a series is judged: the share of its mean the fitted line may move, and a floor. */
export interface FlatRule {
  readonly tolerance: number;
  /** A change at most this large (in the series' unit) is flat whatever the mean. */
  readonly floor: number;
}

export interface JudgedSeries {
  readonly title: string;
  readonly unit: string;
  readonly values: readonly number[];
  /** null: shown, not judged (grows by design), for the reason in `unjudged`. */
  readonly rule: FlatRule | null;
  readonly unjudged?: string;
  readonly verdict: FlatnessVerdict | null;
}

export const RULES = Object.freeze({
  rss: { tolerance: 0.1, floor: 0 },
  /** heapUsed includes garbage not collected yet at the moment of the sample. */
  heap: { tolerance: 0.2, floor: 0 },
  /** p99 is noisy on a shared machine. */
  p99: { tolerance: 0.25, floor: 0 },
  /** Per message stored: a saw-tooth between 0 and autovacuum's 20 %. */
  deadTuples: { tolerance: 0.25, floor: 0 },
  /** A small backlog that hovers: a few seconds of traffic is noise. */
  inboxRows: { tolerance: 0.25, floor: 5_000 },
  tableSize: { tolerance: 0.1, floor: 0 },
  perMessage: { tolerance: 0.1, floor: 0 },
} satisfies Record<string, FlatRule>);

const MIB = 2 ** 20;

export function soakSeries(samples: readonly SoakMinute[], baseline: DbSizes): JudgedSeries[] {
  const series: JudgedSeries[] = [];
  const add = (
    title: string,
    unit: string,
    values: number[],
    rule: FlatRule | null,
    unjudged?: string,
  ): void => {
    series.push({
      title,
      unit,
      values,
      rule,
      verdict: rule === null ? null : judgeFlat(values, rule.tolerance, rule.floor),
      ...(unjudged === undefined ? {} : { unjudged }),
    });
  };
  const nodeIds = [...new Set(samples.flatMap((s) => Object.keys(s.nodes)))].sort();
  for (const id of nodeIds) {
    add(
      `${id} RSS`,
      'MiB',
      samples.map((s) => (s.nodes[id]?.rssBytes ?? NaN) / MIB),
      RULES.rss,
    );
  }
  for (const id of nodeIds) {
    add(
      `${id} heap used`,
      'MiB',
      samples.map((s) => (s.nodes[id]?.heapUsedBytes ?? NaN) / MIB),
      RULES.heap,
    );
  }
  add(
    'send→deliver p99',
    'ms',
    samples.map((s) => s.deliverP99Ms),
    RULES.p99,
  );
  add(
    'inbox rows (unacked events)',
    'rows',
    samples.map((s) => s.db.inboxRows),
    RULES.inboxRows,
  );
  add(
    'inbox table size',
    'MiB',
    samples.map((s) => tableBytes(s.db, 'inbox') / MIB),
    RULES.tableSize,
  );
  let total = 0;
  const ackedSoFar = samples.map((s) => (total += s.acked));
  const messagesBase = tableBytes(baseline, 'messages');
  add(
    'messages table growth per acked message',
    'bytes',
    samples.map(
      (s, i) => (tableBytes(s.db, 'messages') - messagesBase) / Math.max(1, ackedSoFar[i]!),
    ),
    RULES.perMessage,
  );
  // Autovacuum starts at 20 % of a table's rows dead: the saw-tooth's peaks rise with the
  // messages table (each delivered message's body is cleared after 5 minutes: one dead tuple).
  add(
    'dead tuples per message stored',
    'rows',
    samples.map((s, i) => s.db.deadTuples / Math.max(1, ackedSoFar[i]!)),
    RULES.deadTuples,
  );
  add(
    'dead tuples, all tables',
    'rows',
    samples.map((s) => s.db.deadTuples),
    null,
    'autovacuum’s threshold grows with the tables; judged per message stored',
  );
  add(
    'database size (all tables)',
    'MiB',
    samples.map((s) => s.db.totalBytes / MIB),
    null,
    'messages stay for the retention period',
  );
  return series;
}

function tableBytes(db: DbSizes, table: string): number {
  return db.tables[table]?.bytes ?? Number.NaN;
}

function verdictText(s: JudgedSeries): string {
  if (s.verdict === null) return `not judged (${s.unjudged ?? 'grows by design'})`;
  if (s.verdict.flat === null) return 'too few minutes to judge';
  const pct = (s.verdict.changeRatio * 100).toFixed(1);
  const rule = s.rule!;
  const floor = rule.floor > 0 ? ` or ${shortNumber(rule.floor)} ${s.unit}` : '';
  const word = s.verdict.flat ? 'flat' : s.verdict.rising ? '**GROWS**' : 'falls';
  return `${word} (line moves ${shortNumber(s.verdict.change)} ${s.unit}, ${pct} % of the mean; limit ${(rule.tolerance * 100).toFixed(0)} %${floor})`;
}

export function verdictLines(series: readonly JudgedSeries[]): string[] {
  return series.map((s) => `${s.title}: ${verdictText(s)}`);
}

export function renderSoakSvg(series: readonly JudgedSeries[], caption: string): string {
  const panels: PanelSeries[] = series.map((s) => ({
    title: s.title,
    unit: s.unit,
    values: s.values,
    flat: s.verdict?.flat ?? null,
    rising: s.verdict?.rising ?? false,
  }));
  return renderPanels(panels, caption);
}

export function renderSoakMarkdown(
  samples: readonly SoakMinute[],
  series: readonly JudgedSeries[],
  header: string,
  notes: readonly string[],
  /** The results' base name (`soak`, `soak-citus`): title and the plot beside the file. */
  base = 'soak',
): string {
  const nodeIds = [...new Set(samples.flatMap((s) => Object.keys(s.nodes)))].sort();
  const mib = (b: number | undefined): string => (b === undefined ? '–' : (b / MIB).toFixed(1));
  const lines = [
    `# ${base}`,
    '',
    header,
    '',
    `![soak series](${base}.svg)`,
    '',
    '| series | verdict | first / last minute | mean of the judged span |',
    '| --- | --- | --- | --- |',
  ];
  for (const s of series) {
    const first = s.values[0];
    const last = s.values[s.values.length - 1];
    lines.push(
      `| ${s.title} (${s.unit}) | ${verdictText(s)} | ${shortNumber(first ?? NaN)} / ${shortNumber(last ?? NaN)} | ${s.verdict === null ? '–' : shortNumber(s.verdict.mean)} |`,
    );
  }
  lines.push('', 'Every minute:', '');
  lines.push(
    `| min | acked | lost | skipped | errors | churned | welcomes | p50 / p99 ms | ${nodeIds.map((id) => `${id} RSS / heap MiB`).join(' | ')} | db MiB | dead tuples | inbox rows |`,
  );
  lines.push(`| ${Array.from({ length: 11 + nodeIds.length }, () => '---').join(' | ')} |`);
  for (const s of samples) {
    const mem = nodeIds.map(
      (id) => `${mib(s.nodes[id]?.rssBytes)} / ${mib(s.nodes[id]?.heapUsedBytes)}`,
    );
    lines.push(
      `| ${s.minute} | ${s.acked} | ${s.lost} | ${s.skipped} | ${s.errors} | ${s.churned} | ${s.welcomes} | ` +
        `${s.deliverP50Ms} / ${s.deliverP99Ms} | ${mem.join(' | ')} | ${mib(s.db.totalBytes)} | ${s.db.deadTuples} | ${s.db.inboxRows} |`,
    );
  }
  lines.push('');
  for (const n of notes) lines.push(`- ${n}`);
  return lines.join('\n') + '\n';
}
