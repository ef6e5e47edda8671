/**
 * What a ring command (scale-out, scale-in, drain-rate) reports: the change it wrote or, with
 * `--dry-run`, would write, the users that would move, and with `--wait` how the drain ended.
 * The JSON output is exactly {@link ChangeDocument}; the text output renders it. Pure.
 */
import type { RingConfig } from '@chat/cluster';
import type { Failure } from './failure';
import type { MovePlan } from './moves';
import type { DrainStatus, DrainSummary } from './progress';
import { formatPercent, formatRate, renderTable } from './table';
import type { RingChange } from './plan';

/** How `--wait` ended: the drain's summary, or how far it got when the wait stopped. */
export type DrainOutcome =
  | ({ readonly done: true } & DrainSummary)
  | { readonly done: false; readonly epoch: number; readonly status: DrainStatus };

export interface ChangeDocument {
  readonly command: string;
  readonly dryRun: boolean;
  /** False with --dry-run. */
  readonly written: boolean;
  /** The epoch of the ring it was planned from (0: none yet). */
  readonly previousEpoch: number;
  /** The ring key's mod revision it was planned from; the write is a compare-and-swap on it. */
  readonly expectedModRevision: number;
  /** The ring configuration written (or that would be). */
  readonly ring: RingConfig;
  readonly added: readonly string[];
  readonly removed: readonly string[];
  readonly warnings: readonly string[];
  /** --dry-run only. */
  readonly moves?: MovePlan;
  /** --wait only. */
  readonly drain?: DrainOutcome;
  /** Set when the command ended badly after the write (--wait timed out or was interrupted). */
  readonly error?: Failure;
}

export function changeDocument(
  command: string,
  change: RingChange,
  dryRun: boolean,
  moves?: MovePlan,
): ChangeDocument {
  return {
    command,
    dryRun,
    written: !dryRun,
    previousEpoch: change.next.epoch - 1,
    expectedModRevision: change.expectedModRevision,
    ring: change.next,
    added: change.added,
    removed: change.removed,
    warnings: change.warnings,
    ...(moves === undefined ? {} : { moves }),
  };
}

/** `wrote ring epoch 7 (was 6) +node-4: members node-1, node-2, node-4(w2); drain rate 40/s` */
export function describeChange(doc: ChangeDocument): string {
  const next = doc.ring;
  const delta = [...doc.added.map((id) => `+${id}`), ...doc.removed.map((id) => `-${id}`)];
  const members = next.members.map((m) => (m.weight === 1 ? m.id : `${m.id}(w${m.weight})`));
  const rate =
    next.transition === undefined ? '' : `; drain rate ${formatRate(next.transition.ratePerSec)}`;
  return (
    `${doc.written ? 'wrote' : 'would write'} ring epoch ${next.epoch} (was ${doc.previousEpoch})` +
    `${delta.length > 0 ? ` ${delta.join(' ')}` : ''}: members ${members.join(', ')}${rate}`
  );
}

function count(value: number | null): string {
  return value === null ? '?' : String(value);
}

/** The text of `--dry-run`: the change, the ring as JSON, and who would move where. */
export function renderDryRun(doc: ChangeDocument): string {
  const lines = [
    `dry run, nothing written: ${describeChange(doc)}`,
    `ring it would write (compare-and-swap on mod revision ${doc.expectedModRevision}):`,
    JSON.stringify(doc.ring, null, 2),
    '',
  ];
  const plan = doc.moves;
  if (plan === undefined || plan.moves.length === 0) {
    lines.push('users that would move: none (no part of the hash space changes owner)');
    return lines.join('\n');
  }
  lines.push(
    "users that would move (estimated: the part of each node's hash space that changes owner " +
      'times its connected users; "?" = /v1/stats did not answer):',
    renderTable(
      [
        { header: 'FROM' },
        { header: 'TO' },
        { header: 'HASH SPACE', align: 'right' },
        { header: 'USERS', align: 'right' },
      ],
      plan.moves.map((m) => [m.from, m.to, formatPercent(m.hashShare), count(m.users)]),
    ),
    `total: ${count(plan.users)} of ${count(plan.connectedUsers)} connected user(s), ` +
      `${formatPercent(plan.hashShare)} of the hash space`,
  );
  return lines.join('\n');
}
