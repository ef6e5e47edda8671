/** How the dashboard writes numbers and sentences. Pure, so it is unit-tested without a browser. */
import type { DashboardState } from '@chat/protocol/dashboard-feed';

/** En dash for "unknown" (a node that did not answer, or no second reading yet). */
export const UNKNOWN = '–';

/** 0.2614 -> `26.1 %`. */
export function formatShare(share: number): string {
  return `${(share * 100).toFixed(1)} %`;
}

/** A count or UNKNOWN, with thousands separated: 12345 -> `12,345`. */
export function formatCount(n: number | null): string {
  return n === null ? UNKNOWN : Math.round(n).toLocaleString('en-US');
}

/** A node's connections, with those moving away while they overlap their move. */
export function formatConnections(connections: number | null, movingOut = 0): string {
  const all = formatCount(connections);
  return movingOut > 0 ? `${all} (${formatCount(movingOut)} moving out)` : all;
}

/** Per-second rates: one decimal under 10, whole numbers above. */
export function formatRate(n: number | null): string {
  if (n === null) return UNKNOWN;
  return n < 10 ? n.toFixed(1) : Math.round(n).toLocaleString('en-US');
}

/** 65_000 -> `1 min 5 s`; under a minute in seconds. */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${s % 60} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

/** A percentage for a progress bar: one decimal, 100 without one. */
export function formatPercent(percent: number): string {
  return percent >= 100 ? '100 %' : `${percent.toFixed(1)} %`;
}

/** `14:03:07` in the viewer's time zone. */
export function formatClock(ms: number): string {
  const d = new Date(ms);
  const two = (n: number): string => String(n).padStart(2, '0');
  return `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
}

/** The line above the bars: what is happening, or what happened last. */
export function drainSummary(state: DashboardState): string {
  const t = state.transition;
  const moved = state.drains.reduce((sum, d) => sum + d.moved, 0);
  const total = state.drains.reduce((sum, d) => sum + d.total, 0);
  if (t !== null) {
    const rate =
      t.ratePerSec === null ? "each node's default rate" : `${t.ratePerSec} users/s per node`;
    const running = state.drains.filter((d) => !d.done).length;
    return (
      `Rebalancing from epoch ${t.fromEpoch} to ${state.epoch} for ${formatDuration(state.at - t.startedAt)}` +
      ` at ${rate}: ${formatCount(moved)} of ${formatCount(total)} users moved` +
      (running > 0
        ? `, ${running} node${running === 1 ? '' : 's'} draining.`
        : ', every drain done; the transition closes shortly.')
    );
  }
  if (state.drains.length === 0) return 'No rebalance in progress; no users had to move.';
  return `No rebalance in progress. Last drains: ${formatCount(moved)} of ${formatCount(total)} users moved.`;
}
