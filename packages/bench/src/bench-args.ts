/**
 * The command line of `npm run bench`, parsed by chatctl's parser (`node:util` parseArgs under
 * it): an unknown option, a missing or non-numeric value is a UsageError naming the option, with
 * the bench's usage added (exit 2). Pure.
 */
import { UsageError, parseArgv } from '@chat/cli';
import type { FlagSpec } from '@chat/cli';
import type { CodecName } from './loadgen/messages';

export interface BenchArgs {
  readonly workload: string;
  readonly repeats: number | undefined;
  readonly codec: CodecName;
  readonly users: number | undefined;
  readonly quick: boolean;
  readonly ackMs: number | undefined;
  /** Base name of the result files (default: the workload's name). */
  readonly out: string | undefined;
  /**
   * Durable workloads: offer only this rate (one step, e.g. to profile at it); rebalance and
   * failover: their load (instead of half the three-node durable rate, or their default).
   */
  readonly rate: number | undefined;
  /** Fleet devices move the old way (close, then reconnect) instead of overlapping. */
  readonly legacyMoves: boolean;
  /** rebalance: chatctl --rate (moves per second per draining node). */
  readonly drainRate: number | undefined;
  /** rebalance: profile the drain against a steady window (adds its own reads; not for figures). */
  readonly profile: boolean;
  /** Durable workloads: on Citus (a coordinator and two workers) instead of one PostgreSQL. */
  readonly citus: boolean;
  /** soak: how long it runs. */
  readonly minutes: number | undefined;
}

export const BENCH_USAGE =
  'usage: npm run bench -- <durable-1to1|durable-1to1-3node|idle|cross-node|group-fanout|rebalance|failover|soak|all> [--repeats N] [--codec json|msgpack] [--users N] [--ack-ms N] [--out NAME] [--quick] [--rate N] [--citus] [--legacy-moves] [--drain-rate N] [--profile] [--minutes N]';

const count: FlagSpec = { type: 'number', description: 'a positive integer' };
const on: FlagSpec = { type: 'boolean', description: '' };
const SPEC: Readonly<Record<string, FlagSpec>> = {
  repeats: count,
  users: count,
  'ack-ms': count,
  rate: count,
  minutes: count,
  'drain-rate': count,
  codec: { type: 'string', description: 'json or msgpack' },
  out: { type: 'string', description: 'a plain file base name' },
  quick: on,
  citus: on,
  'legacy-moves': on,
  profile: on,
};

function usageError(problem: string): UsageError {
  return new UsageError(`${problem}\n${BENCH_USAGE}`);
}

/**
 * @example parseBenchArgs(['rebalance', '--users', '3000', '--quick'])
 * // { workload: 'rebalance', users: 3000, quick: true, codec: 'json', ... }
 */
export function parseBenchArgs(argv: readonly string[]): BenchArgs {
  let args;
  try {
    args = parseArgv(argv, SPEC);
  } catch (err) {
    throw err instanceof UsageError ? usageError(err.message) : err;
  }
  const { flags, positionals } = args;
  const [workload, extra] = positionals;
  if (workload === undefined) throw usageError('name a workload');
  if (extra !== undefined) throw usageError(`unexpected argument ${extra}`);
  const positive = (name: string): number | undefined => {
    const n = flags[name];
    if (n === undefined) return undefined;
    if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 1) {
      throw usageError(`--${name} must be a positive integer, got ${String(n)}`);
    }
    return n;
  };
  const codec = flags['codec'] ?? 'json';
  if (codec !== 'json' && codec !== 'msgpack') {
    throw usageError(`--codec takes json or msgpack, got ${JSON.stringify(codec)}`);
  }
  const out = flags['out'];
  if (out !== undefined && (typeof out !== 'string' || !/^[A-Za-z0-9._-]+$/.test(out))) {
    throw usageError('--out takes a plain file base name');
  }
  return {
    workload,
    repeats: positive('repeats'),
    codec,
    users: positive('users'),
    quick: flags['quick'] === true,
    ackMs: positive('ack-ms'),
    out,
    rate: positive('rate'),
    citus: flags['citus'] === true,
    legacyMoves: flags['legacy-moves'] === true,
    drainRate: positive('drain-rate'),
    profile: flags['profile'] === true,
    minutes: positive('minutes'),
  };
}
