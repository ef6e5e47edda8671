/**
 * What the cluster keeps in etcd, its key layout, and strict decoding of it. Pure: no I/O.
 *
 * Layout under a prefix P (e.g. `/chat`):
 * - `P/nodes/<nodeId>`: {@link NodeInfo} as JSON, under the node's lease;
 * - `P/ring`: {@link RingConfig} as JSON, written only by compare-and-swap on its mod revision;
 * - `P/drain/<nodeId>`: drain progress of a node;
 * - `P/election/<name>/...`: election candidates.
 */
import { isValidId } from '@chat/protocol';
import type { DashboardDrain } from '@chat/protocol/dashboard-feed';
import {
  CLIENT_URL_SCHEMES,
  INTERNAL_URL_SCHEMES,
  hostPortProblem,
  nodeUrlProblem,
} from './node-address';

/** What a chat node publishes about itself while it is alive. */
export interface NodeInfo {
  readonly nodeId: string;
  /** Where clients connect, e.g. `ws://10.0.0.5:7001/ws`. */
  readonly wsUrl: string;
  /** `host:port` of the node's RPC server for its peers. */
  readonly rpcAddress: string;
  /**
   * Base URL of the node's internal listener (`/metrics`, `/v1/stats`, `/v1/owners`), e.g.
   * `http://10.0.0.5:9101`; absent for nodes older than that listener.
   */
  readonly internalUrl?: string;
  /** Relative share of users once the node is a ring member (positive). */
  readonly weight: number;
  /** When the node process started, ms since the epoch. */
  readonly startedAt: number;
  /**
   * Set by a node shutting down: it stays reachable (so it can still be delivered to while its
   * users move) but is no longer part of the ring.
   */
  readonly leaving?: boolean;
}

export interface RingMember {
  readonly id: string;
  readonly weight: number;
}

/** Set while a rebalance is in progress: the ring users are moving away from. */
export interface RingTransition {
  readonly fromEpoch: number;
  readonly fromMembers: readonly RingMember[];
  /** When the transition began, ms since the epoch. */
  readonly startedAt: number;
  /** Reconnects per second each node may cause while draining; absent: the node's own default. */
  readonly ratePerSec?: number;
}

/** The configured ring: which nodes are members, with weights. */
export interface RingConfig {
  /** 1 for the first configuration, +1 per write. */
  readonly epoch: number;
  readonly members: readonly RingMember[];
  readonly transition?: RingTransition;
}

/** A ring configuration together with the mod revision of its key (for compare-and-swap). */
export interface VersionedRing {
  readonly config: RingConfig;
  readonly modRevision: number;
}

/** Keys of one cluster, derived from its prefix. */
export interface ClusterKeys {
  /** The prefix without a trailing slash, e.g. `/chat`. */
  readonly prefix: string;
  /** Prefix of everything in the cluster, with the trailing slash: `/chat/`. */
  readonly root: string;
  readonly nodesPrefix: string;
  readonly ring: string;
  readonly drainPrefix: string;
  readonly electionPrefix: string;
  node(nodeId: string): string;
  drain(nodeId: string): string;
}

/** Key layout under `prefix`; `'/chat'` and `'/chat/'` are the same cluster. */
export function clusterKeys(prefix: string): ClusterKeys {
  const clean = prefix.replace(/\/+$/, '');
  if (clean.length === 0) throw new RangeError('cluster prefix must not be empty or "/"');
  const root = `${clean}/`;
  return Object.freeze({
    prefix: clean,
    root,
    nodesPrefix: `${root}nodes/`,
    ring: `${root}ring`,
    drainPrefix: `${root}drain/`,
    electionPrefix: `${root}election/`,
    node: (nodeId: string) => `${root}nodes/${nodeId}`,
    drain: (nodeId: string) => `${root}drain/${nodeId}`,
  });
}

/** Thrown by the decoders; says which field was wrong. */
export class InvalidClusterData extends Error {
  override readonly name = 'InvalidClusterData';
}

type Json = Record<string, unknown>;

function object(value: unknown, what: string): Json {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InvalidClusterData(`${what}: not an object`);
  }
  return value as Json;
}

function id(value: unknown, what: string): string {
  if (!isValidId(value)) throw new InvalidClusterData(`${what}: not a valid id`);
  return value;
}

function nonEmptyString(value: unknown, what: string): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > 1024) {
    throw new InvalidClusterData(`${what}: not a non-empty string`);
  }
  return value;
}

function positive(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new InvalidClusterData(`${what}: not a positive number`);
  }
  return value;
}

function nonNegativeInt(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new InvalidClusterData(`${what}: not a non-negative integer`);
  }
  return value;
}

/**
 * A node's figures (`GET /v1/stats`, served on its internal listener), or undefined when the
 * node publishes no internal URL: `http://h:p` -> `http://h:p/v1/stats`.
 */
export function nodeStatsUrl(node: Pick<NodeInfo, 'internalUrl'>): string | undefined {
  if (node.internalUrl === undefined) return undefined;
  const url = new URL(node.internalUrl);
  url.pathname = '/v1/stats';
  url.search = '';
  return url.toString();
}

function checked(value: string, problem: string | undefined, what: string): string {
  if (problem !== undefined) throw new InvalidClusterData(`${what}: ${problem}`);
  return value;
}

/**
 * Validates a NodeInfo (as parsed JSON or as given by a caller) and returns a clean copy. The
 * addresses must be plain network locations (see node-address.ts): a record anyone slipped into
 * etcd with a `javascript:` URL or credentials in it is refused here, so it is never routed to.
 */
export function parseNodeInfo(value: unknown): NodeInfo {
  const o = object(value, 'node');
  const wsUrl = nonEmptyString(o['wsUrl'], 'node.wsUrl');
  const rpcAddress = nonEmptyString(o['rpcAddress'], 'node.rpcAddress');
  const node: NodeInfo = {
    nodeId: id(o['nodeId'], 'node.nodeId'),
    wsUrl: checked(wsUrl, nodeUrlProblem(wsUrl, CLIENT_URL_SCHEMES), 'node.wsUrl'),
    rpcAddress: checked(rpcAddress, hostPortProblem(rpcAddress), 'node.rpcAddress'),
    weight: positive(o['weight'], 'node.weight'),
    startedAt: nonNegativeInt(o['startedAt'], 'node.startedAt'),
  };
  const internal = o['internalUrl'];
  const withInternal: NodeInfo =
    internal === undefined
      ? node
      : {
          ...node,
          internalUrl: checked(
            nonEmptyString(internal, 'node.internalUrl'),
            nodeUrlProblem(String(internal), INTERNAL_URL_SCHEMES),
            'node.internalUrl',
          ),
        };
  return Object.freeze(o['leaving'] === true ? { ...withInternal, leaving: true } : withInternal);
}

function parseMembers(value: unknown, what: string): readonly RingMember[] {
  if (!Array.isArray(value)) throw new InvalidClusterData(`${what}: not an array`);
  const seen = new Set<string>();
  const members = value.map((raw, i) => {
    const m = object(raw, `${what}[${i}]`);
    const member = Object.freeze({
      id: id(m['id'], `${what}[${i}].id`),
      weight: positive(m['weight'], `${what}[${i}].weight`),
    });
    if (seen.has(member.id)) throw new InvalidClusterData(`${what}: duplicate id ${member.id}`);
    seen.add(member.id);
    return member;
  });
  return Object.freeze(members);
}

/** Validates a RingConfig (as parsed JSON or as given by a caller) and returns a clean copy. */
export function parseRingConfig(value: unknown): RingConfig {
  const o = object(value, 'ring');
  const epoch = nonNegativeInt(o['epoch'], 'ring.epoch');
  const members = parseMembers(o['members'], 'ring.members');
  if (o['transition'] === undefined) return Object.freeze({ epoch, members });
  const t = object(o['transition'], 'ring.transition');
  const base: RingTransition = {
    fromEpoch: nonNegativeInt(t['fromEpoch'], 'ring.transition.fromEpoch'),
    fromMembers: parseMembers(t['fromMembers'], 'ring.transition.fromMembers'),
    startedAt: nonNegativeInt(t['startedAt'], 'ring.transition.startedAt'),
  };
  const transition: RingTransition = Object.freeze(
    t['ratePerSec'] === undefined
      ? base
      : { ...base, ratePerSec: positive(t['ratePerSec'], 'ring.transition.ratePerSec') },
  );
  return Object.freeze({ epoch, members, transition });
}

/** Parses the JSON text of a key; throws InvalidClusterData on bad JSON or bad shape. */
export function decodeJson<T>(text: string, parse: (value: unknown) => T): T {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new InvalidClusterData('not JSON');
  }
  return parse(value);
}

/**
 * Ring members that are also registered (alive) nodes and not leaving, in ring order: the set
 * everyone builds the hash ring from (docs/architecture.md, "Ring and ownership").
 */
export function liveMembers(
  ring: RingConfig | undefined,
  nodes: ReadonlyMap<string, NodeInfo>,
): readonly RingMember[] {
  return liveOf(ring?.members, nodes);
}

/** The members of a transition's previous ring that are still alive (for dual delivery). */
export function previousLiveMembers(
  ring: RingConfig | undefined,
  nodes: ReadonlyMap<string, NodeInfo>,
): readonly RingMember[] {
  return liveOf(ring?.transition?.fromMembers, nodes);
}

function liveOf(
  members: readonly RingMember[] | undefined,
  nodes: ReadonlyMap<string, NodeInfo>,
): readonly RingMember[] {
  if (!members) return [];
  return members.filter((member) => {
    const node = nodes.get(member.id);
    return node !== undefined && node.leaving !== true;
  });
}

/**
 * The most of `times` (ms, ascending) that fall within one second of each other: a drain's
 * `peakPerSec` from its move times, and the same figure in tests and benches.
 */
export function peakPerSecond(times: readonly number[]): number {
  let peak = 0;
  let start = 0;
  for (let end = 0; end < times.length; end++) {
    while (times[end]! - times[start]! >= 1000) start++;
    peak = Math.max(peak, end - start + 1);
  }
  return peak;
}

/**
 * What a draining node publishes under `P/drain/<nodeId>` (under its lease): the dashboard's
 * drain record without the percent, so the two cannot drift apart.
 */
export type DrainProgress = Omit<DashboardDrain, 'percent'>;

export function parseDrainProgress(value: unknown): DrainProgress {
  const o = object(value, 'drain');
  return Object.freeze({
    nodeId: id(o['nodeId'], 'drain.nodeId'),
    epoch: nonNegativeInt(o['epoch'], 'drain.epoch'),
    total: nonNegativeInt(o['total'], 'drain.total'),
    moved: nonNegativeInt(o['moved'], 'drain.moved'),
    remaining: nonNegativeInt(o['remaining'], 'drain.remaining'),
    ratePerSec: positive(o['ratePerSec'], 'drain.ratePerSec'),
    peakPerSec: nonNegativeInt(o['peakPerSec'], 'drain.peakPerSec'),
    done: o['done'] === true,
    startedAt: nonNegativeInt(o['startedAt'], 'drain.startedAt'),
    updatedAt: nonNegativeInt(o['updatedAt'], 'drain.updatedAt'),
  });
}
