/**
 * Converts driver and database errors into ChatErrors at the store's edge: anything that means
 * "Postgres is unreachable, overloaded or restarting, try again" becomes UNAVAILABLE (clients
 * retry those with the same clientMsgId), everything else INTERNAL. ChatErrors pass through.
 */
import { ChatError, isChatError } from '@chat/protocol';

/** Thrown by the pool wrapper for a query on a connection that already failed. */
export class ConnectionBrokenError extends Error {
  override readonly name = 'ConnectionBrokenError';
}

const NETWORK_ERRNO = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

/**
 * Citus raises these as internal errors (XX000) although they mean a server went away. The
 * coordinator's postmaster died while the backend waited on a worker: the connection is gone,
 * and the statement may have committed on the worker.
 */
const CITUS_COORDINATOR_GONE = /postmaster was shut down/i;
/** A worker connection the transaction needed (a reference table write, say) failed. */
const CITUS_WORKER_LOST = /failure on connection marked as essential/i;

/** pg and pg-pool raise these as plain Errors, without a code. */
const DRIVER_UNAVAILABLE =
  /connection terminated|connection timeout|timeout exceeded when trying to connect|query read timeout|not queryable|connection error|cannot use a pool after calling end|driver has already been destroyed|server closed the connection/i;

/**
 * Two user steps gave one seq to different events: only possible while a shard moves, when the
 * user lock (an advisory lock on the shard's worker) is taken on the old and the new placement
 * at once. The primary key refuses the second; its step is retried and numbers anew.
 */
function isSeqRace(err: unknown): boolean {
  const code = sqlState(err);
  // Citus passes a worker's error on without the constraint field, so the constraint is also
  // read from the message. And a user step Citus does not delegate to the worker (as while its
  // shard moves) inserts through the coordinator, which raises the worker's refusal as XX000.
  if (code !== '23505' && code !== 'XX000') return false;
  const constraint =
    (err as { constraint?: unknown }).constraint ??
    /^duplicate key value violates unique constraint "([^"]+)"/.exec(
      err instanceof Error ? err.message : '',
    )?.[1];
  return typeof constraint === 'string' && /^inbox_pk(_\d+)?$/.test(constraint);
}

/** A Citus internal error (XX000) whose message matches `pattern`. */
function isCitusError(err: unknown, pattern: RegExp): boolean {
  return sqlState(err) === 'XX000' && err instanceof Error && pattern.test(err.message);
}

function sqlState(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** True when `err` says the database is (perhaps briefly) out of reach, not that a query is wrong. */
export function isUnavailableError(err: unknown): boolean {
  if (err instanceof ConnectionBrokenError || isSeqRace(err)) return true;
  const code = sqlState(err);
  if (code !== undefined) {
    if (NETWORK_ERRNO.has(code)) return true;
    if (/^[0-9A-Z]{5}$/.test(code)) {
      return (
        isCitusError(err, CITUS_COORDINATOR_GONE) ||
        isCitusError(err, CITUS_WORKER_LOST) ||
        code.startsWith('08') || // connection exception
        code.startsWith('53') || // insufficient resources (too many connections, disk full)
        code.startsWith('57P') || // admin/crash shutdown, cannot connect now
        code === '57014' || // statement_timeout
        code === '55P03' || // lock_timeout
        code === '40001' || // serialization failure
        code === '40P01' // deadlock detected
      );
    }
  }
  return err instanceof Error && DRIVER_UNAVAILABLE.test(err.message);
}

/** True when the connection that raised `err` cannot be trusted any more. */
export function isConnectionError(err: unknown): boolean {
  const code = sqlState(err);
  const isSqlState = code !== undefined && /^[0-9A-Z]{5}$/.test(code) && !NETWORK_ERRNO.has(code);
  if (isSqlState) {
    return (
      code.startsWith('08') || code.startsWith('57P') || isCitusError(err, CITUS_COORDINATOR_GONE)
    );
  }
  return isUnavailableError(err);
}

/**
 * The ChatError for anything thrown by a store operation.
 *
 * @example
 * try { ... } catch (err) { throw toChatError(err); }
 */
export function toChatError(err: unknown): ChatError {
  if (isChatError(err)) return err;
  const cause = err instanceof Error ? err.message : String(err);
  const sqlstate = sqlState(err);
  const context = sqlstate === undefined ? { cause } : { cause, sqlstate };
  if (isUnavailableError(err)) return new ChatError('UNAVAILABLE', 'database unavailable', context);
  return new ChatError('INTERNAL', 'internal storage error', context);
}
