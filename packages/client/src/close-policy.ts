/**
 * What the client does when its current connection closes (docs/protocol.md, close codes):
 * follow a `moved`, reconnect (now or after the server's Retry-After, with backoff), or stop for
 * good with an error for the app. Pure: the client applies the decision (connection.ts onClose).
 */
import { ChatError, CloseCode } from '@chat/protocol';
import { ConnectionError } from './errors';
import type { SocketClose } from './transport';

/** What the client knew of the connection that closed. */
export interface ClosedConnection {
  /** The `moved` frame's URL, when the node said the user moved. */
  readonly movedUrl?: string;
  /** The node welcomed this connection (a token it then refuses has expired). */
  readonly welcomed: boolean;
  /** The app gave a fixed token string (nothing to refresh it from). */
  readonly fixedToken: boolean;
  /** `moved` redirects followed in a row, and the most the client follows. */
  readonly movedHops: number;
  readonly maxMovedHops: number;
  /** The message of the last id-less `err` (the reason before a 4009). */
  readonly lastErrorMessage?: string;
}

export type CloseDecision =
  | { readonly kind: 'follow-moved'; readonly url: string }
  | {
      readonly kind: 'reconnect';
      /** At least this long (a refused upgrade's Retry-After), then the backoff. */
      readonly minDelayMs: number;
      readonly why: string;
      readonly closeCode: number;
      readonly httpStatus?: number;
      /** Said to the app as an `error` event, the client reconnecting all the same. */
      readonly report?: ChatError;
      /** The moved hops start again from 0. */
      readonly resetHops?: boolean;
    }
  | { readonly kind: 'stop'; readonly error: Error };

/**
 * @example
 * closeDecision({ code: 4008, reason: 'replaced' }, { welcomed: true, fixedToken: false, movedHops: 0, maxMovedHops: 3 });
 * // { kind: 'stop', error: ConnectionError('replaced by a newer connection of this device') }
 */
export function closeDecision(info: SocketClose, conn: ClosedConnection): CloseDecision {
  const code = info.code;
  if (code === CloseCode.MOVED && conn.movedUrl !== undefined) {
    if (conn.movedHops < conn.maxMovedHops) return { kind: 'follow-moved', url: conn.movedUrl };
    return reconnect('too many moved redirects', code, { resetHops: true });
  }
  if (code === CloseCode.UNAUTHORIZED && conn.welcomed && !conn.fixedToken) {
    // Accepted, then expired: a reconnect with a fresh token, routine rather than an error.
    return reconnect('token expired', code);
  }
  if (code === CloseCode.UNAUTHORIZED || info.httpStatus === 401) {
    const error = new ChatError('UNAUTHORIZED', 'the node refused the token', {
      closeCode: code,
      httpStatus: info.httpStatus,
    });
    if (conn.fixedToken) return { kind: 'stop', error };
    return reconnect('token refused', code, { report: error });
  }
  if (code === CloseCode.DEVICE_LIMIT) {
    const message = conn.lastErrorMessage ?? 'device limit reached';
    return { kind: 'stop', error: new ChatError('LIMIT', message, { closeCode: code }) };
  }
  if (code === CloseCode.REPLACED) {
    return {
      kind: 'stop',
      error: new ConnectionError('replaced by a newer connection of this device', code),
    };
  }
  if (info.httpStatus === 403) {
    return {
      kind: 'stop',
      error: new ConnectionError('the node refused the upgrade (403)', code, 403),
    };
  }
  return {
    kind: 'reconnect',
    minDelayMs: info.retryAfterMs ?? 0,
    why: `connection closed (${info.httpStatus ?? code}${info.reason ? ` ${info.reason}` : ''})`,
    closeCode: code,
    ...(info.httpStatus === undefined ? {} : { httpStatus: info.httpStatus }),
  };
}

function reconnect(
  why: string,
  closeCode: number,
  extra: { readonly report?: ChatError; readonly resetHops?: boolean } = {},
): CloseDecision {
  return { kind: 'reconnect', minDelayMs: 0, why, closeCode, ...extra };
}
