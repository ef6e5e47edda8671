/**
 * Following a drain after a ring change (`--wait`): which nodes are still draining towards the
 * epoch we follow, how many users moved, when it is over, and the summary. Pure: fed with
 * cluster snapshots, it says what to print.
 */
import type { DrainProgress, NodeInfo, RingConfig, RingMember } from '@chat/cluster';
import { compareIds } from '@chat/protocol';
import { formatDuration } from './table';

/** The parts of a cluster snapshot the follower looks at. */
export interface DrainInput {
  readonly nodes: ReadonlyMap<string, NodeInfo>;
  readonly ring: RingConfig | undefined;
  readonly drains: ReadonlyMap<string, DrainProgress>;
}

export type NodeDrainState =
  | { readonly id: string; readonly state: 'waiting' }
  | {
      readonly id: string;
      readonly state: 'draining' | 'done';
      readonly moved: number;
      readonly total: number;
    };

export interface DrainStatus {
  /** The epoch followed: ours, or the newest one that superseded it. */
  readonly epoch: number;
  /** Every registered node, sorted by id. */
  readonly nodes: readonly NodeDrainState[];
  /** Across nodes that reported progress for `epoch`. */
  readonly moved: number;
  readonly total: number;
  readonly finished: boolean;
}

export interface FollowUpdate {
  /** Things to tell the operator once (ring superseded, transition closed). */
  readonly notes: readonly string[];
  readonly status: DrainStatus;
}

export interface DrainSummary {
  readonly epoch: number;
  readonly usersMoved: number;
  readonly durationMs: number;
  /** Highest reconnects within one second, per node that drained. */
  readonly peakPerSec: Readonly<Record<string, number>>;
}

function sameMembers(a: readonly RingMember[], b: readonly RingMember[]): boolean {
  const key = (ms: readonly RingMember[]): string =>
    ms
      .map((m) => `${m.id}:${m.weight}`)
      .sort()
      .join(',');
  return key(a) === key(b);
}

/**
 * Follows the drain towards `epoch` (the ring chatctl wrote). Done once every registered node
 * published progress with an epoch at or beyond the one followed and `done`; also done when a
 * later ring closes the transition (no `transition` field). A later ring change with a
 * transition supersedes ours: from then on the newest epoch is followed.
 *
 * @example
 * const follower = new DrainFollower(6, next.members, Date.now());
 * view.onChange(({ snapshot }) => follower.update({ ...snapshot, ring: snapshot.ring?.config }));
 */
export class DrainFollower {
  private target: number;
  private members: readonly RingMember[];
  private closedAt: number | undefined;
  private last: DrainStatus;
  /** moved per drain run (node, epoch, startedAt): a restarted drain counts from 0 again. */
  private readonly movedByRun = new Map<string, number>();
  private readonly peaks = new Map<string, number>();

  constructor(
    readonly initialEpoch: number,
    members: readonly RingMember[],
    readonly startedAt: number,
  ) {
    this.target = initialEpoch;
    this.members = members;
    this.last = { epoch: initialEpoch, nodes: [], moved: 0, total: 0, finished: false };
  }

  get status(): DrainStatus {
    return this.last;
  }

  update(input: DrainInput): FollowUpdate {
    const notes: string[] = [];
    const ring = input.ring;
    if (ring !== undefined && ring.epoch > this.target && this.closedAt === undefined) {
      if (ring.transition === undefined) {
        this.closedAt = ring.epoch;
        notes.push(
          sameMembers(ring.members, this.members)
            ? `transition closed at epoch ${ring.epoch}`
            : `ring replaced at epoch ${ring.epoch} without a transition ` +
                `(members: ${ring.members.map((m) => m.id).join(', ')}); nothing left to follow`,
        );
      } else if (
        sameMembers(ring.members, this.members) &&
        ring.transition.ratePerSec !== undefined
      ) {
        notes.push(
          `drain rate changed to ${ring.transition.ratePerSec}/s at epoch ${ring.epoch}; following epoch ${ring.epoch}`,
        );
      } else {
        notes.push(
          `superseded by a later ring change: epoch ${ring.epoch} ` +
            `(members: ${ring.members.map((m) => m.id).join(', ')}); following epoch ${ring.epoch}`,
        );
      }
      if (this.closedAt === undefined) {
        this.target = ring.epoch;
        this.members = ring.members;
      }
    }

    for (const drain of input.drains.values()) {
      if (drain.epoch < this.initialEpoch) continue;
      const run = `${drain.nodeId}\n${drain.epoch}\n${drain.startedAt}`;
      this.movedByRun.set(run, Math.max(this.movedByRun.get(run) ?? 0, drain.moved));
      this.peaks.set(drain.nodeId, Math.max(this.peaks.get(drain.nodeId) ?? 0, drain.peakPerSec));
    }

    let moved = 0;
    let total = 0;
    const nodes = [...input.nodes.keys()].sort(compareIds).map((id): NodeDrainState => {
      const drain = input.drains.get(id);
      if (drain === undefined || drain.epoch < this.target) return { id, state: 'waiting' };
      moved += drain.moved;
      total += drain.total;
      return {
        id,
        state: drain.done ? 'done' : 'draining',
        moved: drain.moved,
        total: drain.total,
      };
    });
    const finished = this.closedAt !== undefined || nodes.every((n) => n.state === 'done');
    this.last = { epoch: this.target, nodes, moved, total, finished };
    return { notes, status: this.last };
  }

  summary(now: number): DrainSummary {
    let usersMoved = 0;
    for (const moved of this.movedByRun.values()) usersMoved += moved;
    const peakPerSec: Record<string, number> = {};
    for (const id of [...this.peaks.keys()].sort(compareIds)) {
      peakPerSec[id] = this.peaks.get(id) ?? 0;
    }
    return {
      epoch: this.closedAt ?? this.target,
      usersMoved,
      durationMs: Math.max(0, now - this.startedAt),
      peakPerSec,
    };
  }
}

/** `[########------------]` with `width` cells. */
export function progressBar(done: number, total: number, width = 20): string {
  const fraction = total <= 0 ? (done > 0 ? 1 : 0) : Math.min(1, done / total);
  const filled = Math.round(fraction * width);
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}]`;
}

/** One line: `epoch 6 [#####---------------] 120/400 users moved (30%), 2/4 nodes done, 12s`. */
export function renderProgress(status: DrainStatus, elapsedMs: number): string {
  // Nothing to move and everyone done is a full bar, not an empty one.
  const empty = status.total === 0;
  const percent = empty
    ? status.finished
      ? 100
      : 0
    : Math.floor((status.moved / status.total) * 100);
  const bar =
    empty && status.finished ? progressBar(1, 1) : progressBar(status.moved, status.total);
  const done = status.nodes.filter((n) => n.state === 'done').length;
  return (
    `epoch ${status.epoch} ${bar} ` +
    `${status.moved}/${status.total} users moved (${percent}%), ` +
    `${done}/${status.nodes.length} nodes done, ${formatDuration(elapsedMs)}`
  );
}

/** Nodes not done yet, for a timeout message: `node-1 (40/100 moved), node-3 (no progress for epoch 6 yet)`. */
export function describePending(status: DrainStatus): string {
  const pending = status.nodes.flatMap((n) => {
    if (n.state === 'done') return [];
    if (n.state === 'waiting') return [`${n.id} (no progress for epoch ${status.epoch} yet)`];
    return [`${n.id} (${n.moved}/${n.total} moved)`];
  });
  return pending.length === 0 ? 'nothing' : pending.join(', ');
}

export function renderSummary(summary: DrainSummary): string {
  const peaks = Object.entries(summary.peakPerSec);
  const max = peaks.reduce((m, [, p]) => Math.max(m, p), 0);
  const perNode =
    peaks.length === 0 ? 'none reported' : peaks.map(([id, p]) => `${id} ${p}/s`).join(', ');
  return [
    `drain complete at epoch ${summary.epoch}: ${summary.usersMoved} user(s) moved in ${formatDuration(summary.durationMs)}`,
    `peak reconnect rate per node: ${perNode}${peaks.length > 1 ? ` (max ${max}/s)` : ''}`,
  ].join('\n');
}
