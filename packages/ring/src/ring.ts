import HashRing from 'hashring';

/** One ring member: a chat node id and its relative weight (1 = a standard node). */
export interface RingMember {
  readonly id: string;
  readonly weight: number;
}

/** Tuning of the continuum. Every process must use the same values, or they disagree on owners. */
export interface RingOptions {
  /**
   * Virtual nodes per unit of weight. Each virtual node puts 4 points on the continuum
   * (ketama). More points give a more even split and cost a little more memory and build time.
   * Default 160 (640 points for a weight-1 member: max/mean share about 1.04 for 3 to 10 nodes).
   */
  readonly vnodesPerWeight?: number;
  /**
   * Size of the LRU cache of recent owner lookups kept by `hashring`. Must be positive: the
   * library crashes with 0. Default 5000.
   */
  readonly cacheSize?: number;
}

/** Largest accepted weight: bounds the continuum at 100 x vnodesPerWeight x 4 points per member. */
export const MAX_WEIGHT = 100;

const defaultRingOptions: Required<RingOptions> = Object.freeze({
  vnodesPerWeight: 160,
  cacheSize: 5000,
});

/**
 * `hashring`'s LRU cache is a plain object, so a key inherited from Object.prototype
 * ("constructor", "toString", "__proto__", ...) would be found there as a function and corrupt
 * the cache's linked list (and Object itself). Such keys, all valid user ids, skip the cache.
 */
function unsafeCacheKey(key: string): boolean {
  return key in Object.prototype || key === '__proto__';
}

/**
 * An immutable consistent-hash ring over the members that are both configured and alive.
 * Build it with {@link buildRing}; a membership change means building a new ring.
 *
 * @example
 * const ring = buildRing([{ id: 'node-1', weight: 1 }, { id: 'node-2', weight: 1 }]);
 * ring.owner('alice'); // 'node-1' or 'node-2', the same in every process
 */
export class Ring {
  /** The members that own part of the ring (weight > 0), sorted by id. */
  readonly members: readonly RingMember[];
  private readonly hashRing: HashRing;
  private readonly ids: ReadonlySet<string>;

  /** @internal use {@link buildRing}. */
  constructor(members: readonly RingMember[], options: Required<RingOptions>) {
    this.members = Object.freeze(members.map((m) => Object.freeze({ id: m.id, weight: m.weight })));
    this.ids = new Set(this.members.map((m) => m.id));
    const servers: Record<string, { vnodes: number }> = {};
    for (const m of this.members) {
      servers[m.id] = { vnodes: Math.max(1, Math.round(m.weight * options.vnodesPerWeight)) };
    }
    // `vnode count` 0 makes hashring use exactly the vnodes we computed for each member. With
    // its own formula (weight share x vnode count x member count, floored) the point count of
    // every member depends on the others' weights and on float rounding, so adding one node
    // would also move users between the old nodes.
    this.hashRing = new HashRing(servers, 'md5', {
      'vnode count': 0,
      'max cache size': options.cacheSize,
    });
  }

  get isEmpty(): boolean {
    return this.members.length === 0;
  }

  /** True when `id` owns part of this ring. */
  has(id: string): boolean {
    return this.ids.has(id);
  }

  /** The member that owns `userId`, or undefined when the ring is empty. */
  owner(userId: string): string | undefined {
    if (this.members.length === 0) return undefined;
    // range(key, 1) is the same continuum lookup as get(key), without the cache.
    if (unsafeCacheKey(userId)) return this.hashRing.range(userId, 1)[0];
    return this.hashRing.get(userId);
  }

  /**
   * The continuum points of every member, each point owning the arc that ends at it.
   * @internal for {@link ringShares} and {@link ringArcs}.
   */
  pointsByMember(): ReadonlyMap<string, readonly number[]> {
    // @types/hashring declares points() wrongly: it returns { server: number[] }.
    const points = this.hashRing.points(this.members.map((m) => m.id)) as unknown as Record<
      string,
      number[]
    >;
    return new Map(this.members.map((m) => [m.id, points[m.id] ?? []]));
  }
}

/**
 * Builds the ring from the members that are configured AND alive (the caller intersects the
 * two). Members are sorted by id first: `hashring` breaks ties between equal continuum points
 * by insertion order, so without the sort two processes that list the same members in a
 * different order (etcd watch order, config order) could disagree on an owner.
 *
 * Throws RangeError on a duplicate or empty id, or a weight that is negative, not finite or
 * above {@link MAX_WEIGHT}. A member of weight 0 is left out: it owns nothing.
 *
 * @example
 * const ring = buildRing(config.members.filter((m) => alive.has(m.id)));
 */
export function buildRing(members: Iterable<RingMember>, options: RingOptions = {}): Ring {
  const opts: Required<RingOptions> = Object.freeze({ ...defaultRingOptions, ...options });
  if (!Number.isInteger(opts.cacheSize) || opts.cacheSize < 1) {
    throw new RangeError(`cacheSize must be a positive integer, got ${opts.cacheSize}`);
  }
  if (!(opts.vnodesPerWeight >= 1 && opts.vnodesPerWeight <= 10_000)) {
    throw new RangeError(`vnodesPerWeight must be in [1, 10000], got ${opts.vnodesPerWeight}`);
  }
  const seen = new Set<string>();
  const kept: RingMember[] = [];
  for (const m of members) {
    if (typeof m.id !== 'string' || m.id.length === 0 || m.id === '__proto__') {
      throw new RangeError(`invalid ring member id ${JSON.stringify(m.id)}`);
    }
    if (seen.has(m.id)) throw new RangeError(`duplicate ring member ${m.id}`);
    seen.add(m.id);
    if (!Number.isFinite(m.weight) || m.weight < 0 || m.weight > MAX_WEIGHT) {
      throw new RangeError(`weight of ${m.id} must be in [0, ${MAX_WEIGHT}], got ${m.weight}`);
    }
    if (m.weight > 0) kept.push(m);
  }
  kept.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return new Ring(kept, opts);
}

/** One member's part of the hash space, as a fraction in [0, 1]. */
export interface RingShare {
  readonly id: string;
  readonly weight: number;
  readonly share: number;
}

const HASH_SPACE = 2 ** 32;

/**
 * Each member's share of the hash space, sorted by id, for `chatctl ring`.
 *
 * Without `samples` the share is exact: the length of the continuum arcs each member owns
 * (a key goes to the first point at or after its 32-bit hash, wrapping around). With
 * `samples` it is estimated by looking up that many synthetic keys (`sample-0`, ...), which is
 * what a population of that many users would see.
 *
 * @example
 * for (const s of ringShares(ring)) console.log(s.id, (s.share * 100).toFixed(1) + '%');
 */
export function ringShares(ring: Ring, samples?: number): RingShare[] {
  const shares = new Map<string, number>(ring.members.map((m) => [m.id, 0]));
  if (samples !== undefined) {
    const n = Math.max(1, Math.floor(samples));
    for (let i = 0; i < n; i++) {
      const owner = ring.owner(`sample-${i}`);
      if (owner !== undefined) shares.set(owner, (shares.get(owner) ?? 0) + 1 / n);
    }
  } else {
    for (const arc of ringArcs(ring))
      shares.set(arc.id, (shares.get(arc.id) ?? 0) + (arc.end - arc.start));
  }
  return ring.members.map((m) => ({ id: m.id, weight: m.weight, share: shares.get(m.id) ?? 0 }));
}

/** A stretch of the hash space owned by one member, as fractions of 2^32 in [0, 1]. */
export interface RingArc {
  readonly id: string;
  /** Where the arc begins (exclusive: the hash of a point's predecessor). */
  readonly start: number;
  /** Where the arc ends (inclusive: the owning point's hash), greater than `start`. */
  readonly end: number;
}

/**
 * The continuum's distinct points in ascending order, each with its owner. Members are in id
 * order, which is hashring's insertion order: on equal points the first one wins the lookup,
 * so the first occurrence of each value is kept.
 */
function continuum(ring: Ring): { value: number; id: string }[] {
  const all: { value: number; id: string; order: number }[] = [];
  let order = 0;
  for (const [id, points] of ring.pointsByMember()) {
    for (const value of points) all.push({ value, id, order: order++ });
  }
  all.sort((a, b) => a.value - b.value || a.order - b.order);
  return all.filter((p, i) => i === 0 || p.value !== all[i - 1]?.value);
}

/**
 * Who owns which part of the hash space, as arcs that cover [0, 1] in order, consecutive
 * points of one member merged (a few thousand arcs for a handful of members). A key goes to
 * the first point at or after its 32-bit hash, so a point owns the arc that ends at it, and the
 * first point also owns the wrap-around: the last arc and the first arc belong to the same
 * member. Empty for an empty ring. For drawing the ring (the registry's dashboard) and for
 * exact shares.
 *
 * @example
 * for (const arc of ringArcs(ring)) drawArc(arc.start * 360, arc.end * 360, colourOf(arc.id));
 */
export function ringArcs(ring: Ring): RingArc[] {
  const points = continuum(ring);
  const first = points[0];
  const last = points[points.length - 1];
  if (first === undefined || last === undefined) return [];
  const arcs: { id: string; start: number; end: number }[] = [];
  const push = (id: string, start: number, end: number): void => {
    if (end <= start) return;
    const prev = arcs[arcs.length - 1];
    if (prev !== undefined && prev.id === id && prev.end === start) prev.end = end;
    else arcs.push({ id, start, end });
  };
  let start = 0;
  for (const p of points) {
    push(p.id, start, p.value / HASH_SPACE);
    start = p.value / HASH_SPACE;
  }
  push(first.id, start, 1);
  return arcs;
}

/** A user whose owner differs between two rings; undefined means "no owner" (empty ring). */
export interface MovedUser {
  readonly user: string;
  readonly from: string | undefined;
  readonly to: string | undefined;
}

/**
 * The users whose owner differs between `before` and `after`: the "who moves" diff of a drain.
 * A node drains `movedUsers(old, next, connectedUsers).filter((m) => m.from === self)`.
 *
 * @example
 * const moves = movedUsers(ring3, ring4, connected.keys()); // every m.to is the new node
 */
export function movedUsers(before: Ring, after: Ring, users: Iterable<string>): MovedUser[] {
  const moved: MovedUser[] = [];
  for (const user of users) {
    const from = before.owner(user);
    const to = after.owner(user);
    if (from !== to) moved.push({ user, from, to });
  }
  return moved;
}
