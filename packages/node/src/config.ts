/**
 * The chat node's options: a documented interface with defaults, read from the environment by
 * `nodeConfigFromEnv`. Every field is listed in the README's configuration table.
 */
import type { Limits } from '@chat/protocol';
import { defaultLimits, isValidId } from '@chat/protocol';
import { databaseTlsProblem } from '@chat/store';
import type { Env, LogLevel } from '@chat/cluster';
import { CLIENT_URL_SCHEMES, nodeUrlProblem, trustedProxiesFrom } from '@chat/cluster';
import {
  ConfigError,
  EnvReader,
  checkProductionCredential,
  checkProductionSecret,
} from '@chat/cluster';

export interface NodeConfig {
  /** This node's id, used in `welcome` and in the cluster. */
  readonly nodeId: string;
  /** Interface the WebSocket server binds to. */
  readonly host: string;
  /** Port of the WebSocket server; 0 picks a free one. */
  readonly port: number;
  /** URL clients are told to use for this node; derived from host and port when unset. */
  readonly publicUrl: string | undefined;
  /**
   * HS256 secret that device tokens without a `kid` are signed with; undefined when only
   * `authKeys` are configured (tokens without `kid` are then refused).
   */
  readonly authSecret: string | undefined;
  /** Verification keys by `kid` (CHAT_AUTH_KEYS), for key rotation. */
  readonly authKeys: ReadonlyMap<string, string>;
  /** When set, tokens must carry this `aud` (CHAT_AUTH_AUDIENCE). */
  readonly authAudience: string | undefined;
  /** When set, tokens must carry this `iss` (CHAT_AUTH_ISSUER). */
  readonly authIssuer: string | undefined;
  /**
   * Clock skew allowed between token issuer and node, in seconds: a token is honoured until
   * `exp` plus this (at connect, and a connected session is closed with 4003 then), and its
   * `iat` may be this far ahead.
   */
  readonly tokenLeewaySec: number;
  /** Browser Origins allowed to connect; empty allows any. Clients without Origin are allowed. */
  readonly allowedOrigins: readonly string[];
  /** Interval between heartbeat pings. */
  readonly heartbeatMs: number;
  /** How long a ping may stay unanswered before the connection is closed with 4002. */
  readonly heartbeatTimeoutMs: number;
  /** How long a pushed event may stay unacked before it is pushed again. */
  readonly ackTimeoutMs: number;
  /** Pushes of the same event before the connection is closed with 4002. */
  readonly maxPushTries: number;
  /** How often timers (heartbeats, ack timeouts) are checked. */
  readonly sweepIntervalMs: number;
  /**
   * How long a moved connection of a client with the `overlap-moves` feature stays open (and
   * delivering) while the client connects to the new owner, before this node closes it with
   * 4001. 0: such clients are closed at once, like every other.
   */
  readonly moveOverlapMs: number;
  /**
   * How often device cursors (acks) and delivered watermarks are written to Postgres,
   * coalesced (also on disconnect and at shutdown). A crash loses at most this long of acks:
   * devices then get those events again and drop them by seq.
   */
  readonly ackFlushMs: number;
  /** How often delivered receipts are pushed live to the senders, coalesced. */
  readonly receiptFlushMs: number;
  /** How often this node writes its fan-out mark. */
  readonly fanoutMarkMs: number;
  /** A node whose mark is older than this is swept: its owed fan-out is finished for it. */
  readonly fanoutStaleMs: number;
  /** How often the fan-out sweeper looks for such nodes (on the elected node). */
  readonly fanoutSweepMs: number;
  /**
   * How often the store epoch is read (it is also read on every new database connection): a
   * change closes every connection with 4010 so that devices resync.
   */
  readonly epochCheckMs: number;
  /** Frames a connection may send per second (token bucket refill). */
  readonly ratePerSec: number;
  /** Token bucket size. */
  readonly rateBurst: number;
  /** Frames refused in a row before the connection is closed with 4029. */
  readonly rateStrikes: number;
  /** Bytes buffered for one connection past which pushes to it stop until it drains. */
  readonly maxBufferedBytes: number;
  /** Unacked pushes kept per connection; past it the device catches up by sync. */
  readonly maxPendingPushes: number;
  /** Default and maximum sync page. */
  readonly syncPageSize: number;
  /** New connections admitted per second (token bucket); over it the upgrade gets 503 + Retry-After. */
  readonly admitRatePerSec: number;
  readonly admitBurst: number;
  /**
   * New connections admitted per second for one user (all its devices), and that bucket's size;
   * over it the upgrade gets 429 + Retry-After. 0 turns the limit off.
   */
  readonly admitPerUserPerSec: number;
  readonly admitPerUserBurst: number;
  /**
   * The same per client address (IPv4 address, IPv6 /64). Behind a proxy every client has the
   * proxy's address: raise it or turn it off (0) there. 0 turns the limit off.
   */
  readonly admitPerAddressPerSec: number;
  readonly admitPerAddressBurst: number;
  /**
   * Proxies (addresses or CIDR blocks) whose X-Forwarded-For names the client address for the
   * per-address limit, e.g. the TLS edge. Empty: the header is ignored.
   */
  readonly trustedProxies: readonly string[];
  /** Most users, and separately addresses, whose admission buckets are kept (least recent go). */
  readonly admitTrackedKeys: number;
  readonly limits: Limits;
  readonly databaseUrl: string;
  readonly pgPoolMax: number;
  /**
   * Deadline of one Postgres statement, client side and as statement_timeout: a hung or
   * blackholed database turns into UNAVAILABLE after this, not a request waiting for ever. At
   * most 10 s: the fan-out sweep's orphan window (DEFAULT_ORPHAN_WINDOW_MS, 12 s) counts on a
   * dead node's statements ending within it.
   */
  readonly pgQueryTimeoutMs: number;
  /** Deadline to get a Postgres connection (from the pool, or a new one). */
  readonly pgConnectTimeoutMs: number;
  readonly batchMaxSize: number;
  readonly logLevel: LogLevel;
  /** How long a busy port is retried at start before the node gives up (a restart after a crash). */
  readonly listenRetryMs: number;
}

export const DEV_SECRET = 'dev-secret';

export const defaultNodeConfig = Object.freeze({
  nodeId: 'node-1',
  host: '127.0.0.1',
  port: 0,
  allowedOrigins: [] as readonly string[],
  trustedProxies: [] as readonly string[],
  heartbeatMs: 25_000,
  heartbeatTimeoutMs: 10_000,
  ackTimeoutMs: 10_000,
  maxPushTries: 3,
  sweepIntervalMs: 500,
  moveOverlapMs: 3000,
  ackFlushMs: 5000,
  receiptFlushMs: 250,
  fanoutMarkMs: 1000,
  fanoutStaleMs: 15_000,
  fanoutSweepMs: 2000,
  epochCheckMs: 5000,
  ratePerSec: 50,
  rateBurst: 100,
  rateStrikes: 50,
  maxBufferedBytes: 256 * 1024,
  maxPendingPushes: 1000,
  syncPageSize: 200,
  admitRatePerSec: 500,
  admitBurst: 1000,
  admitPerUserPerSec: 5,
  admitPerUserBurst: 20,
  admitPerAddressPerSec: 50,
  admitPerAddressBurst: 200,
  admitTrackedKeys: 100_000,
  tokenLeewaySec: 5,
  limits: defaultLimits,
  pgPoolMax: 10,
  pgQueryTimeoutMs: 10_000,
  pgConnectTimeoutMs: 10_000,
  batchMaxSize: 256,
  logLevel: 'info' as LogLevel,
  listenRetryMs: 60_000,
});

export interface LoadedConfig {
  readonly config: NodeConfig;
  /** True when CHAT_AUTH_SECRET was unset and the dev secret is in use. */
  readonly usingDevSecret: boolean;
}

/** Reads and validates every CHAT_* variable and DATABASE_URL; throws ConfigError naming the variable. */
export function nodeConfigFromEnv(env: Env): LoadedConfig {
  const r = new EnvReader(env);
  const d = defaultNodeConfig;
  const nodeId = r.string('CHAT_NODE_ID', d.nodeId);
  if (!isValidId(nodeId))
    throw new ConfigError('CHAT_NODE_ID must be 1-64 characters of [A-Za-z0-9._-]');
  const production = r.string('NODE_ENV', 'development') === 'production';
  const secret = r.optionalString('CHAT_AUTH_SECRET');
  const authKeys = authKeysFrom(r.optionalString('CHAT_AUTH_KEYS'), production);
  if (secret === undefined && authKeys.size === 0 && production) {
    throw new ConfigError(
      'CHAT_AUTH_SECRET is required when NODE_ENV=production (or CHAT_AUTH_KEYS, for tokens with a kid)',
    );
  }
  if (secret !== undefined && production) checkProductionSecret('CHAT_AUTH_SECRET', secret);
  // The dev secret only stands in when no key at all is configured.
  const usingDevSecret = secret === undefined && authKeys.size === 0;
  const limits: Limits = Object.freeze({
    ...defaultLimits,
    maxFrameBytes: r.int(
      'CHAT_MAX_FRAME_BYTES',
      defaultLimits.maxFrameBytes,
      1024,
      16 * 1024 * 1024,
    ),
    maxBodyChars: r.int('CHAT_MAX_BODY_CHARS', defaultLimits.maxBodyChars, 1, 1_000_000),
    maxMembersPerChat: r.int('CHAT_MAX_MEMBERS', defaultLimits.maxMembersPerChat, 2, 100_000),
    maxDevicesPerUser: r.int('CHAT_MAX_DEVICES', defaultLimits.maxDevicesPerUser, 1, 100),
    maxAttachments: r.int('CHAT_MEDIA_MAX_ATTACHMENTS', defaultLimits.maxAttachments, 1, 100),
  });
  const config: NodeConfig = {
    nodeId,
    host: r.string('CHAT_HOST', d.host),
    port: r.int('CHAT_PORT', d.port, 0, 65535),
    publicUrl: publicUrlFrom(r),
    authSecret: usingDevSecret ? DEV_SECRET : secret,
    authKeys,
    authAudience: r.optionalString('CHAT_AUTH_AUDIENCE'),
    authIssuer: r.optionalString('CHAT_AUTH_ISSUER'),
    tokenLeewaySec: r.int('CHAT_TOKEN_LEEWAY_SEC', d.tokenLeewaySec, 0, 300),
    allowedOrigins: Object.freeze(r.list('CHAT_ALLOWED_ORIGINS')),
    heartbeatMs: r.int('CHAT_HEARTBEAT_MS', d.heartbeatMs, 100, 3_600_000),
    heartbeatTimeoutMs: r.int('CHAT_HEARTBEAT_TIMEOUT_MS', d.heartbeatTimeoutMs, 100, 3_600_000),
    ackTimeoutMs: r.int('CHAT_ACK_TIMEOUT_MS', d.ackTimeoutMs, 100, 3_600_000),
    maxPushTries: r.int('CHAT_PUSH_TRIES', d.maxPushTries, 1, 100),
    sweepIntervalMs: r.int('CHAT_SWEEP_MS', d.sweepIntervalMs, 10, 60_000),
    moveOverlapMs: r.int('CHAT_MOVE_OVERLAP_MS', d.moveOverlapMs, 0, 60_000),
    ackFlushMs: r.int('CHAT_ACK_FLUSH_MS', d.ackFlushMs, 1, 60_000),
    receiptFlushMs: r.int('CHAT_RECEIPT_FLUSH_MS', d.receiptFlushMs, 1, 60_000),
    fanoutMarkMs: r.int('CHAT_FANOUT_MARK_MS', d.fanoutMarkMs, 50, 60_000),
    fanoutStaleMs: r.int('CHAT_FANOUT_STALE_MS', d.fanoutStaleMs, 500, 3_600_000),
    fanoutSweepMs: r.int('CHAT_FANOUT_SWEEP_MS', d.fanoutSweepMs, 50, 600_000),
    epochCheckMs: r.int('CHAT_EPOCH_CHECK_MS', d.epochCheckMs, 100, 3_600_000),
    ratePerSec: r.int('CHAT_RATE_PER_SEC', d.ratePerSec, 1, 1_000_000),
    rateBurst: r.int('CHAT_RATE_BURST', d.rateBurst, 1, 1_000_000),
    rateStrikes: r.int('CHAT_RATE_STRIKES', d.rateStrikes, 1, 1_000_000),
    maxBufferedBytes: r.int('CHAT_MAX_BUFFERED_BYTES', d.maxBufferedBytes, 4096, 1 << 30),
    maxPendingPushes: r.int('CHAT_MAX_PENDING_PUSHES', d.maxPendingPushes, 1, 1_000_000),
    syncPageSize: r.int('CHAT_SYNC_PAGE', d.syncPageSize, 1, limits.maxSyncLimit),
    admitRatePerSec: r.int('CHAT_ADMIT_RATE', d.admitRatePerSec, 1, 1_000_000),
    admitBurst: r.int('CHAT_ADMIT_BURST', d.admitBurst, 1, 1_000_000),
    admitPerUserPerSec: r.int('CHAT_ADMIT_PER_USER_RATE', d.admitPerUserPerSec, 0, 1_000_000),
    admitPerUserBurst: r.int('CHAT_ADMIT_PER_USER_BURST', d.admitPerUserBurst, 1, 1_000_000),
    admitPerAddressPerSec: r.int(
      'CHAT_ADMIT_PER_ADDRESS_RATE',
      d.admitPerAddressPerSec,
      0,
      1_000_000,
    ),
    admitPerAddressBurst: r.int(
      'CHAT_ADMIT_PER_ADDRESS_BURST',
      d.admitPerAddressBurst,
      1,
      1_000_000,
    ),
    trustedProxies: trustedProxiesFrom(r),
    admitTrackedKeys: r.int('CHAT_ADMIT_TRACKED_KEYS', d.admitTrackedKeys, 100, 10_000_000),
    limits,
    databaseUrl: databaseUrlFrom(r, production),
    pgPoolMax: r.int('CHAT_PG_POOL_MAX', d.pgPoolMax, 1, 1000),
    pgQueryTimeoutMs: r.int('CHAT_PG_QUERY_TIMEOUT_MS', d.pgQueryTimeoutMs, 100, 10_000),
    pgConnectTimeoutMs: r.int('CHAT_PG_CONNECT_TIMEOUT_MS', d.pgConnectTimeoutMs, 100, 60_000),
    batchMaxSize: r.int('CHAT_BATCH_MAX', d.batchMaxSize, 1, 10_000),
    logLevel: r.logLevel(d.logLevel),
    listenRetryMs: r.int('CHAT_LISTEN_RETRY_MS', d.listenRetryMs, 0, 3_600_000),
  };
  return { config: Object.freeze(config), usingDevSecret };
}

/**
 * CHAT_PUBLIC_URL, checked as the registry checks node records: a URL the registry would refuse
 * to route anyone to (credentials, a fragment) stops the start instead of leaving the node
 * silently without users.
 */
function publicUrlFrom(r: EnvReader): string | undefined {
  const url = r.optionalUrl('CHAT_PUBLIC_URL', CLIENT_URL_SCHEMES);
  const problem = url === undefined ? undefined : nodeUrlProblem(url, CLIENT_URL_SCHEMES);
  if (problem !== undefined) throw new ConfigError(`CHAT_PUBLIC_URL ${problem} (not echoed)`);
  return url;
}

/**
 * CHAT_AUTH_KEYS: `kid:secret` pairs separated by commas (a secret may hold `:` but not `,`).
 * Secrets are never quoted in errors; in production each one passes the same checks as
 * CHAT_AUTH_SECRET.
 */
function authKeysFrom(raw: string | undefined, production: boolean): ReadonlyMap<string, string> {
  const keys = new Map<string, string>();
  if (raw === undefined) return keys;
  for (const item of raw.split(',').map((s) => s.trim())) {
    if (item === '') continue;
    const colon = item.indexOf(':');
    const kid = colon < 0 ? item : item.slice(0, colon);
    const secret = colon < 0 ? '' : item.slice(colon + 1);
    if (!isValidId(kid)) {
      throw new ConfigError(
        'CHAT_AUTH_KEYS must be kid:secret pairs separated by commas, each kid 1-64 characters of [A-Za-z0-9._-]',
      );
    }
    if (secret === '') throw new ConfigError(`CHAT_AUTH_KEYS: key ${kid} has no secret`);
    if (keys.has(kid)) throw new ConfigError(`CHAT_AUTH_KEYS: key ${kid} is listed twice`);
    if (production) checkProductionSecret(`CHAT_AUTH_KEYS (key ${kid})`, secret);
    keys.set(kid, secret);
  }
  return keys;
}

const POSTGRES_PROTOCOLS = ['postgres:', 'postgresql:'];

/** Checked without quoting the value: it carries the database password. */
function databaseUrlFrom(r: EnvReader, production: boolean): string {
  const raw = r.requiredString('DATABASE_URL', 'a postgres:// URL of the chat database');
  let protocol: string | undefined;
  try {
    protocol = new URL(raw).protocol;
  } catch {
    protocol = undefined;
  }
  // No host is fine: `postgres:///chat?host=/var/run/postgresql` is a Unix socket.
  if (protocol === undefined || !POSTGRES_PROTOCOLS.includes(protocol)) {
    throw new ConfigError(
      `DATABASE_URL must be a postgres:// or postgresql:// URL, got ${protocol === undefined ? 'something that is not a URL' : `a ${protocol}// URL`}`,
    );
  }
  if (production) {
    const password = passwordOf(raw);
    if (password !== '') checkProductionCredential('the password in DATABASE_URL', password);
  }
  const tlsProblem = databaseTlsProblem(raw, production);
  if (tlsProblem !== undefined) throw new ConfigError(`DATABASE_URL: ${tlsProblem}`);
  return raw;
}

function passwordOf(raw: string): string {
  try {
    return decodeURIComponent(new URL(raw).password);
  } catch {
    return '';
  }
}

/**
 * The configuration as it may be logged: secrets replaced, the database password masked.
 *
 * @example log.info({ config: loggableConfig(config) }, 'starting');
 */
export function loggableConfig(config: NodeConfig): Record<string, unknown> {
  return {
    ...config,
    authSecret: config.authSecret === undefined ? undefined : '[redacted]',
    authKeys: [...config.authKeys.keys()],
    databaseUrl: maskUrlPassword(config.databaseUrl),
  };
}

/** `postgres://chat:secret@db/chat` -> `postgres://chat:***@db/chat`. */
export function maskUrlPassword(raw: string): string {
  try {
    const url = new URL(raw);
    if (url.password !== '') url.password = '***';
    for (const key of [...url.searchParams.keys()])
      if (/pass|secret|key/i.test(key)) url.searchParams.set(key, '***');
    return url.toString();
  } catch {
    return '[unparseable]';
  }
}
