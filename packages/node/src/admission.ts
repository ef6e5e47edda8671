/**
 * Admission of new connections: one token bucket for the node (a mass reconnect is smoothed)
 * and one per user and per client address, so that one token or one host reconnecting in a
 * tight loop is refused on its own instead of using up the node's budget. Pure; the caller
 * passes the time.
 *
 * @example
 * const admission = new Admission(policy, clock.now());
 * const verdict = admission.admit(claims.sub, addressKey(remoteAddress), clock.now());
 * if (verdict.scope !== undefined) refuse(verdict.scope === 'node' ? 503 : 429, verdict.retryAfterSec);
 */
import { TokenBucket } from './token-bucket';

export interface AdmissionPolicy {
  readonly ratePerSec: number;
  readonly burst: number;
  /** 0 turns the per-user limit off. */
  readonly perUserPerSec: number;
  readonly perUserBurst: number;
  /** 0 turns the per-address limit off. */
  readonly perAddressPerSec: number;
  readonly perAddressBurst: number;
  /** Most users (and, separately, addresses) tracked at once; the least recently seen go first. */
  readonly maxTrackedKeys: number;
}

/** Who refused: the node's own budget (503) or the caller's user or address (429). */
export type AdmissionScope = 'node' | 'user' | 'address';

export type AdmissionVerdict =
  | { readonly scope: undefined; readonly retryAfterSec: 0 }
  | { readonly scope: AdmissionScope; readonly retryAfterSec: number };

const ADMITTED: AdmissionVerdict = { scope: undefined, retryAfterSec: 0 };

export class Admission {
  private readonly node: TokenBucket;
  private readonly users: KeyedBuckets | undefined;
  private readonly addresses: KeyedBuckets | undefined;

  constructor(policy: AdmissionPolicy, now: number) {
    this.node = new TokenBucket(policy.ratePerSec, policy.burst, now);
    this.users =
      policy.perUserPerSec > 0
        ? new KeyedBuckets(policy.perUserPerSec, policy.perUserBurst, policy.maxTrackedKeys)
        : undefined;
    this.addresses =
      policy.perAddressPerSec > 0
        ? new KeyedBuckets(policy.perAddressPerSec, policy.perAddressBurst, policy.maxTrackedKeys)
        : undefined;
  }

  /**
   * Takes a token from each bucket, or from none: a refused connect costs the node's budget
   * nothing, and a user refused by the node keeps its own tokens.
   */
  admit(user: string, address: string, now: number): AdmissionVerdict {
    const userBucket = this.users?.bucket(user, now);
    const addressBucket = this.addresses?.bucket(address, now);
    const checks: [AdmissionScope, TokenBucket | undefined][] = [
      ['user', userBucket],
      ['address', addressBucket],
      ['node', this.node],
    ];
    for (const [scope, bucket] of checks) {
      const waitMs = bucket?.waitMs(now) ?? 0;
      if (waitMs > 0) return { scope, retryAfterSec: Math.max(1, Math.ceil(waitMs / 1000)) };
    }
    for (const [, bucket] of checks) bucket?.take(now);
    return ADMITTED;
  }

  /** Users and addresses tracked now (for tests and stats). */
  tracked(): { users: number; addresses: number } {
    return { users: this.users?.size ?? 0, addresses: this.addresses?.size ?? 0 };
  }
}

/**
 * Token buckets by key with bounded memory: a Map in least-recently-seen order, capped at
 * `maxKeys`, and a bucket idle long enough to be full again is dropped (a new one is the same).
 */
class KeyedBuckets {
  private readonly buckets = new Map<string, { bucket: TokenBucket; seenAt: number }>();
  private readonly refillMs: number;

  constructor(
    private readonly ratePerSec: number,
    private readonly burst: number,
    private readonly maxKeys: number,
  ) {
    this.refillMs = Math.ceil((burst / ratePerSec) * 1000);
  }

  get size(): number {
    return this.buckets.size;
  }

  bucket(key: string, now: number): TokenBucket {
    this.expire(now);
    const entry = this.buckets.get(key);
    if (entry !== undefined) {
      this.buckets.delete(key);
      entry.seenAt = now;
      this.buckets.set(key, entry);
      return entry.bucket;
    }
    const bucket = new TokenBucket(this.ratePerSec, this.burst, now);
    this.buckets.set(key, { bucket, seenAt: now });
    while (this.buckets.size > this.maxKeys) {
      const oldest = this.buckets.keys().next();
      if (oldest.done === true) break;
      this.buckets.delete(oldest.value);
    }
    return bucket;
  }

  /** A few of the least recently seen per call: amortised O(1), and idle keys do not pile up. */
  private expire(now: number): void {
    for (let i = 0; i < 4; i++) {
      const oldest = this.buckets.entries().next();
      if (oldest.done === true) return;
      const [key, entry] = oldest.value;
      if (now - entry.seenAt < this.refillMs) return;
      this.buckets.delete(key);
    }
  }
}

/**
 * The key an address is limited under: IPv4 as is (also when mapped into IPv6), IPv6 by its
 * /64, since one host usually holds a whole /64.
 *
 * @example addressKey('::ffff:10.0.0.7') === '10.0.0.7'; addressKey('2001:db8::1') === '2001:db8:0:0::/64'
 */
export function addressKey(address: string): string {
  const text = address.trim().toLowerCase();
  const mapped = /^(?:0{0,4}:){0,5}(?:0{0,4}:)?ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (mapped !== null) return mapped[1]!;
  if (!text.includes(':')) return text;
  const [head = '', tail] = text.split('::', 2);
  const headParts = head === '' ? [] : head.split(':');
  const tailParts = tail === undefined || tail === '' ? [] : tail.split(':');
  const missing = tail === undefined ? 0 : 8 - headParts.length - tailParts.length;
  const parts = [...headParts, ...Array<string>(Math.max(0, missing)).fill('0'), ...tailParts];
  if (parts.length !== 8) return text;
  return `${parts
    .slice(0, 4)
    .map((p) => p.replace(/^0+(?=.)/, ''))
    .join(':')}::/64`;
}
