/**
 * Who would move where if a ring change were written (`--dry-run`). chatctl cannot list the
 * users of a node (its nodes only tell how many are connected, on `/v1/stats`), so the count is
 * an estimate: the part of each node's hash space that changes owner, computed exactly from the
 * continuum of both rings (`ringArcs`, the ring code every node routes with), times the users
 * connected to that node. Users hash uniformly, so the estimate is as good as a node's users are
 * many. Pure.
 */
import type { Ring } from '@chat/ring';
import { ringArcs } from '@chat/ring';
import { compareIds } from '@chat/protocol';

export interface MoveEstimate {
  readonly from: string;
  readonly to: string;
  /** Fraction of the whole hash space that goes from `from` to `to`, in [0, 1]. */
  readonly hashShare: number;
  /** Estimated users that would move; null when `from` did not report its users. */
  readonly users: number | null;
}

export interface MovePlan {
  /** Sorted by from, then to. */
  readonly moves: readonly MoveEstimate[];
  /** Fraction of the hash space that changes owner. */
  readonly hashShare: number;
  /** Sum of the estimates; null when a node that loses users did not report them. */
  readonly users: number | null;
  /** Users connected to the members of the current ring; null when one did not report. */
  readonly connectedUsers: number | null;
}

/**
 * @example
 * estimateMoves(buildRing(liveNow), buildRing(liveNext), new Map([['node-1', 120], ['node-2', 95]]))
 * // { moves: [{ from: 'node-1', to: 'node-4', hashShare: 0.08, users: 39 }, ...], ... }
 */
export function estimateMoves(
  before: Ring,
  after: Ring,
  usersByNode: ReadonlyMap<string, number | undefined>,
): MovePlan {
  const moved = movedHashSpace(before, after);
  const shareBefore = new Map<string, number>();
  for (const arc of ringArcs(before)) {
    shareBefore.set(arc.id, (shareBefore.get(arc.id) ?? 0) + arc.end - arc.start);
  }
  const moves = [...moved.entries()]
    .map(([key, hashShare]): MoveEstimate => {
      const [from, to] = JSON.parse(key) as [string, string];
      const users = usersByNode.get(from);
      const share = shareBefore.get(from) ?? 0;
      return {
        from,
        to,
        hashShare,
        users:
          users === undefined ? null : share === 0 ? 0 : Math.round((users * hashShare) / share),
      };
    })
    .sort((a, b) => compareIds(a.from, b.from) || compareIds(a.to, b.to));
  const connected = before.members.map((m) => usersByNode.get(m.id));
  return {
    moves,
    hashShare: moves.reduce((sum, m) => sum + m.hashShare, 0),
    users: moves.some((m) => m.users === null)
      ? null
      : moves.reduce((sum, m) => sum + (m.users ?? 0), 0),
    connectedUsers: connected.some((u) => u === undefined)
      ? null
      : connected.reduce<number>((sum, u) => sum + (u ?? 0), 0),
  };
}

/**
 * Walks both rings' arcs (each covers [0, 1] in order) together: every stretch owned by
 * different members before and after is hash space that moves. Keyed by JSON `[from, to]`.
 */
function movedHashSpace(before: Ring, after: Ring): Map<string, number> {
  const a = ringArcs(before);
  const b = ringArcs(after);
  const moved = new Map<string, number>();
  let i = 0;
  let j = 0;
  let at = 0;
  while (i < a.length && j < b.length) {
    const x = a[i]!;
    const y = b[j]!;
    const end = Math.min(x.end, y.end);
    if (x.id !== y.id && end > at) {
      const key = JSON.stringify([x.id, y.id]);
      moved.set(key, (moved.get(key) ?? 0) + end - at);
    }
    at = end;
    if (x.end === end) i++;
    if (y.end === end) j++;
  }
  return moved;
}
