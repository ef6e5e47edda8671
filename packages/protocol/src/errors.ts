/**
 * The one code table shared by WebSocket replies, close codes, RPC errors and HTTP answers.
 * Clients outside this repository switch on these strings: they are part of wire protocol v1.
 */
export const ErrorCodes = [
  'BAD_REQUEST',
  'UNAUTHORIZED',
  'NOT_FOUND',
  'NOT_MEMBER',
  'TOO_LARGE',
  'LIMIT',
  'RATE_LIMITED',
  'UNAVAILABLE',
  'INTERNAL',
  /**
   * Refused because of a block (issue 16): the other user blocked the caller, so the caller
   * cannot create a chat with them, add them to a chat, or send in their one-to-one chat.
   */
  'BLOCKED',
] as const;

export type ErrorCode = (typeof ErrorCodes)[number];

/** WebSocket close codes of protocol v1 (docs/protocol.md, "Close codes"). */
export const CloseCode = {
  /** The node is shutting down. */
  GOING_AWAY: 1001,
  /** The node cannot reach its database at connect (after `err UNAVAILABLE`): retry later. */
  TRY_AGAIN_LATER: 1013,
  /** The peer broke the protocol (wrong frame kind, repeated garbage). */
  PROTOCOL_ERROR: 4000,
  /** The user belongs to another node; a `moved` frame preceded the close. */
  MOVED: 4001,
  /** No pong in time, or pushed events stayed unacked after every retry. */
  TIMEOUT: 4002,
  /** The token expired or was revoked during the session. */
  UNAUTHORIZED: 4003,
  /** A newer connection with the same device id replaced this one. */
  REPLACED: 4008,
  /** The user already has the maximum number of connected devices. */
  DEVICE_LIMIT: 4009,
  /**
   * The node's database was restored or failed over (a new store epoch): reconnect; the next
   * `welcome` carries the new `storeEpoch`.
   */
  STORE_EPOCH: 4010,
  /** The connection kept sending over its rate limit. */
  RATE_LIMITED: 4029,
} as const;

export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode];

/** HTTP status that goes with each code, for the registry and upgrade refusals. */
export const httpStatusOf: Readonly<Record<ErrorCode, number>> = {
  BAD_REQUEST: 400,
  UNAUTHORIZED: 401,
  NOT_FOUND: 404,
  NOT_MEMBER: 403,
  TOO_LARGE: 413,
  LIMIT: 409,
  RATE_LIMITED: 429,
  UNAVAILABLE: 503,
  INTERNAL: 500,
  BLOCKED: 403,
};

/**
 * An error with a protocol code. Thrown by validation and by the node's handlers; the node
 * turns it into `{t:"err", id, code, message}`. Anything else thrown becomes INTERNAL.
 *
 * @example
 * throw new ChatError('NOT_MEMBER', 'not a member of this chat', { chatId });
 */
export class ChatError extends Error {
  override readonly name = 'ChatError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly context: Readonly<Record<string, unknown>> = {},
  ) {
    super(message);
  }
}

export function isChatError(err: unknown): err is ChatError {
  return err instanceof ChatError;
}
