/**
 * What `status`, `ring` and `route` show, computed from one cluster snapshot and the stats the
 * live nodes answered. Pure: the JSON output is exactly these objects; the text output renders
 * them.
 */
import type { ClusterSnapshot, DrainProgress, RingMember } from '@chat/cluster';
import { RouteTable, liveMembers, previousLiveMembers } from '@chat/cluster';
import { compareIds } from '@chat/protocol';
import { buildRing, ringShares } from '@chat/ring';
import { formatDuration, formatPercent, formatRate, renderTable } from './table';

/** What a node's `GET /v1/stats` told us; undefined when it did not answer. */
export interface NodeStats {
  readonly connections: number;
  readonly users: number;
  /** Push notifications (issue 18); absent from nodes older than them. */
  readonly push?: PushStats;
}

/**
 * A node's push figures: the outbox of all users as its worker last read it (`depth`, the age
 * of the oldest entry), and its own counters since it started.
 */
export interface PushStats {
  readonly depth: number;
  readonly oldestAgeMs: number;
  readonly sent: number;
  readonly failed: number;
  readonly inflight: number;
  readonly awaitingAck: number;
}

export interface TransitionReport {
  readonly fromEpoch: number;
  readonly toEpoch: number;
  readonly fromMembers: readonly string[];
  readonly toMembers: readonly string[];
  readonly added: readonly string[];
  readonly removed: readonly string[];
  /** Absent: each node drains at its own default rate. */
  readonly ratePerSec: number | null;
  readonly startedAt: number;
  readonly ageMs: number;
}

export interface DrainReport {
  readonly epoch: number;
  readonly moved: number;
  readonly total: number;
  readonly remaining: number;
  readonly ratePerSec: number;
  readonly peakPerSec: number;
  readonly done: boolean;
}

export interface NodeReport {
  readonly id: string;
  /** Registered in etcd right now. */
  readonly live: boolean;
  /** In the configured ring (current epoch). */
  readonly member: boolean;
  /** In the ring the open transition moves away from. */
  readonly previousMember: boolean;
  readonly leaving: boolean;
  /** Ring weight if a member, else the weight the node registered with; null if neither. */
  readonly weight: number | null;
  readonly url: string | null;
  /** From /v1/stats; null when the node is not live or did not answer. */
  readonly users: number | null;
  readonly connections: number | null;
  readonly drain: DrainReport | null;
  /** From /v1/stats; null when the node did not report push figures. */
  readonly push: PushStats | null;
}

export interface StatusReport {
  readonly revision: number;
  /** 0 when no ring was ever configured. */
  readonly epoch: number;
  readonly members: readonly RingMember[];
  readonly liveMembers: readonly string[];
  readonly transition: TransitionReport | null;
  readonly nodes: readonly NodeReport[];
}

function drainReport(drain: DrainProgress | undefined): DrainReport | null {
  if (drain === undefined) return null;
  const { epoch, moved, total, remaining, ratePerSec, peakPerSec, done } = drain;
  return { epoch, moved, total, remaining, ratePerSec, peakPerSec, done };
}

/** Every node that is registered, a member, or a member of the previous ring, sorted by id. */
export function statusReport(
  snapshot: ClusterSnapshot,
  stats: ReadonlyMap<string, NodeStats | undefined>,
  now: number,
): StatusReport {
  const config = snapshot.ring?.config;
  const members = config?.members ?? [];
  const transition = config?.transition;
  const fromMembers = transition?.fromMembers ?? [];
  const ids = new Set([
    ...snapshot.nodes.keys(),
    ...members.map((m) => m.id),
    ...fromMembers.map((m) => m.id),
  ]);
  const nodes = [...ids].sort(compareIds).map((id): NodeReport => {
    const info = snapshot.nodes.get(id);
    const member = members.find((m) => m.id === id);
    const s = info === undefined ? undefined : stats.get(id);
    return {
      id,
      live: info !== undefined,
      member: member !== undefined,
      previousMember: fromMembers.some((m) => m.id === id),
      leaving: info?.leaving === true,
      weight: member?.weight ?? info?.weight ?? null,
      url: info?.wsUrl ?? null,
      users: s?.users ?? null,
      connections: s?.connections ?? null,
      drain: drainReport(snapshot.drains.get(id)),
      push: s?.push ?? null,
    };
  });
  const toIds = members.map((m) => m.id);
  const fromIds = fromMembers.map((m) => m.id);
  return {
    revision: snapshot.revision,
    epoch: config?.epoch ?? 0,
    members,
    liveMembers: liveMembers(config, snapshot.nodes).map((m) => m.id),
    transition:
      config === undefined || transition === undefined
        ? null
        : {
            fromEpoch: transition.fromEpoch,
            toEpoch: config.epoch,
            fromMembers: fromIds,
            toMembers: toIds,
            added: toIds.filter((id) => !fromIds.includes(id)),
            removed: fromIds.filter((id) => !toIds.includes(id)),
            ratePerSec: transition.ratePerSec ?? null,
            startedAt: transition.startedAt,
            ageMs: Math.max(0, now - transition.startedAt),
          },
    nodes,
  };
}

function yesNo(value: boolean): string {
  return value ? 'yes' : 'no';
}

function memberCell(node: NodeReport, inTransition: boolean): string {
  if (!inTransition) return yesNo(node.member);
  if (node.member && !node.previousMember) return 'joining';
  if (!node.member && node.previousMember) return 'removed';
  return yesNo(node.member);
}

function drainCell(drain: DrainReport | null, epoch: number): string {
  if (drain === null) return '-';
  const stale = drain.epoch === epoch ? '' : ` @${drain.epoch}`;
  return `${drain.moved}/${drain.total}${drain.done ? ' done' : ''}${stale}`;
}

function countCell(value: number | null, live: boolean): string {
  if (!live) return '-';
  return value === null ? '?' : String(value);
}

/** Describes a transition in one line: `epoch 5 -> 6 (+node-4), rate 40/s, started 12s ago`. */
export function describeTransition(t: TransitionReport): string {
  const changes = [...t.added.map((id) => `+${id}`), ...t.removed.map((id) => `-${id}`)];
  const what = changes.length === 0 ? '' : ` (${changes.join(' ')})`;
  return (
    `epoch ${t.fromEpoch} -> ${t.toEpoch}${what}, rate ${formatRate(t.ratePerSec ?? undefined)}, ` +
    `started ${formatDuration(t.ageMs)} ago`
  );
}

export function renderStatus(report: StatusReport): string {
  const lines: string[] = [];
  if (report.epoch === 0) lines.push('ring: none configured yet');
  else {
    lines.push(
      `ring epoch ${report.epoch}: ${report.members.length} member(s), ` +
        `${report.liveMembers.length} live (${report.liveMembers.join(', ') || 'none'})`,
    );
  }
  lines.push(
    report.transition === null
      ? 'transition: none'
      : `transition: ${describeTransition(report.transition)}`,
  );
  lines.push('');
  const inTransition = report.transition !== null;
  lines.push(
    renderTable(
      [
        { header: 'NODE' },
        { header: 'LIVE' },
        { header: 'MEMBER' },
        { header: 'LEAVING' },
        { header: 'WEIGHT', align: 'right' },
        { header: 'USERS', align: 'right' },
        { header: 'CONNS', align: 'right' },
        { header: 'DRAIN' },
        { header: 'URL' },
      ],
      report.nodes.map((n) => [
        n.id,
        yesNo(n.live),
        memberCell(n, inTransition),
        n.leaving ? 'yes' : '-',
        n.weight === null ? '-' : String(n.weight),
        countCell(n.users, n.live),
        countCell(n.connections, n.live),
        drainCell(n.drain, report.epoch),
        n.url ?? '-',
      ]),
    ),
  );
  const unknown = report.nodes.filter((n) => n.live && n.users === null).map((n) => n.id);
  if (unknown.length > 0) lines.push(`? = /v1/stats did not answer: ${unknown.join(', ')}`);
  lines.push(...renderPush(report.nodes));
  return lines.join('\n');
}

/**
 * The push outbox for operators: how much waits and since when (every node reads the same
 * table; the freshest reading is shown), then each node's sends since it started.
 */
function renderPush(nodes: readonly NodeReport[]): string[] {
  const reporting = nodes.filter((n) => n.live && n.push !== null);
  if (reporting.length === 0) return [];
  const outbox = reporting.map((n) => n.push!).reduce((a, b) => (b.depth > a.depth ? b : a));
  return [
    '',
    `push outbox: ${outbox.depth} queued` +
      (outbox.depth === 0 ? '' : `, oldest ${formatDuration(outbox.oldestAgeMs)} old`),
    renderTable(
      [
        { header: 'NODE' },
        { header: 'SENT', align: 'right' },
        { header: 'FAILED', align: 'right' },
        { header: 'INFLIGHT', align: 'right' },
        { header: 'AWAITING ACK', align: 'right' },
      ],
      reporting.map((n) => [
        n.id,
        String(n.push!.sent),
        String(n.push!.failed),
        String(n.push!.inflight),
        String(n.push!.awaitingAck),
      ]),
    ),
  ];
}

export interface RingMemberReport {
  readonly id: string;
  readonly weight: number;
  readonly live: boolean;
  /** Fraction of the hash space it owns among the live members (0 when not live). */
  readonly share: number;
  readonly users: number | null;
  /** Fraction of the connected users on it, null when some live node did not answer. */
  readonly userShare: number | null;
}

export interface RingReport {
  readonly epoch: number;
  readonly members: readonly RingMemberReport[];
  /** Users connected across live members; null when some did not answer. */
  readonly totalUsers: number | null;
}

/** Each configured member's share of the hash space (exact, from the continuum) and of users. */
export function ringReport(
  snapshot: ClusterSnapshot,
  stats: ReadonlyMap<string, NodeStats | undefined>,
): RingReport {
  const config = snapshot.ring?.config;
  const live = liveMembers(config, snapshot.nodes);
  const shares = new Map(ringShares(buildRing(live)).map((s) => [s.id, s.share]));
  const users = new Map(live.map((m) => [m.id, stats.get(m.id)?.users]));
  const complete = [...users.values()].every((u) => u !== undefined);
  const totalUsers = complete
    ? [...users.values()].reduce<number>((sum, u) => sum + (u ?? 0), 0)
    : null;
  const members = [...(config?.members ?? [])].sort((a, b) => compareIds(a.id, b.id));
  return {
    epoch: config?.epoch ?? 0,
    totalUsers,
    members: members.map((m) => {
      const u = users.get(m.id);
      return {
        id: m.id,
        weight: m.weight,
        live: users.has(m.id),
        share: shares.get(m.id) ?? 0,
        users: u ?? null,
        userShare:
          u === undefined || totalUsers === null ? null : totalUsers === 0 ? 0 : u / totalUsers,
      };
    }),
  };
}

export function renderRing(report: RingReport): string {
  if (report.epoch === 0) return 'ring: none configured yet';
  const table = renderTable(
    [
      { header: 'MEMBER' },
      { header: 'WEIGHT', align: 'right' },
      { header: 'LIVE' },
      { header: 'HASH SHARE', align: 'right' },
      { header: 'USERS', align: 'right' },
      { header: 'USER SHARE', align: 'right' },
    ],
    report.members.map((m) => [
      m.id,
      String(m.weight),
      yesNo(m.live),
      m.live ? formatPercent(m.share) : '-',
      m.live ? (m.users === null ? '?' : String(m.users)) : '-',
      m.userShare === null ? (m.live ? '?' : '-') : formatPercent(m.userShare),
    ]),
  );
  const total = report.totalUsers === null ? '?' : String(report.totalUsers);
  return `ring epoch ${report.epoch}, ${total} connected user(s)\n\n${table}`;
}

export interface RouteReport {
  readonly user: string;
  /** null when no member is alive. */
  readonly node: string | null;
  readonly url: string | null;
  readonly epoch: number;
  /** Set while a transition is open. */
  readonly transition: {
    readonly fromEpoch: number;
    /** Owner on the previous ring (its live members); null when none of them is alive. */
    readonly previousNode: string | null;
    readonly moving: boolean;
  } | null;
}

/** Where a user belongs now, and during a transition where it belonged before. */
export function routeReport(snapshot: ClusterSnapshot, user: string): RouteReport {
  const table = RouteTable.from(snapshot);
  const owner = table.owner(user);
  const config = snapshot.ring?.config;
  let transition: RouteReport['transition'] = null;
  if (config?.transition !== undefined) {
    const previous = buildRing(previousLiveMembers(config, snapshot.nodes)).owner(user) ?? null;
    transition = {
      fromEpoch: config.transition.fromEpoch,
      previousNode: previous,
      moving: previous !== (owner?.nodeId ?? null),
    };
  }
  return {
    user,
    node: owner?.nodeId ?? null,
    url: owner?.wsUrl ?? null,
    epoch: table.epoch,
    transition,
  };
}

export function renderRoute(report: RouteReport): string {
  const now =
    report.node === null
      ? `${report.user}: no owner (no live ring member) at epoch ${report.epoch}`
      : `${report.user} -> ${report.node} (${report.url}) at epoch ${report.epoch}`;
  const t = report.transition;
  if (t === null) return now;
  const before = t.previousNode ?? 'none alive';
  return `${now}\n  previously ${before} at epoch ${t.fromEpoch}${t.moving ? ' (moving)' : ' (not moving)'}`;
}
