/** Input bounds enforced by validation and by the node. Every field is configurable. */
export interface Limits {
  /** Largest frame answered with TOO_LARGE instead of being processed, in bytes. */
  readonly maxFrameBytes: number;
  /** Longest message body, in characters (UTF-16 code units). */
  readonly maxBodyChars: number;
  /** Most members in one chat, the creator included. */
  readonly maxMembersPerChat: number;
  /** Most simultaneously connected devices of one user. */
  readonly maxDevicesPerUser: number;
  /** Longest chat name, in characters. */
  readonly maxChatNameChars: number;
  /** Most events returned by one sync page. */
  readonly maxSyncLimit: number;
  /** Most attachments on one message. */
  readonly maxAttachments: number;
}

export const defaultLimits: Limits = Object.freeze({
  maxFrameBytes: 64 * 1024,
  maxBodyChars: 4096,
  maxMembersPerChat: 100,
  maxDevicesPerUser: 3,
  maxChatNameChars: 128,
  maxSyncLimit: 500,
  maxAttachments: 10,
});

/** User and device ids: 1 to 64 characters of `[A-Za-z0-9._-]`. */
export const ID_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;

export function isValidId(value: unknown): value is string {
  return typeof value === 'string' && ID_PATTERN.test(value);
}

/** Orders ids naturally, digit runs as numbers: `node-2` before `node-10`. */
export function compareIds(a: string, b: string): number {
  return a.localeCompare(b, 'en', { numeric: true });
}

const DIGITS = /^[1-9][0-9]*$|^0$/;

/**
 * Orders message ids of one chat (decimal numbers as strings, as the node sends them) by their
 * value, without a locale-aware compare on the hot path; anything else by `compareIds`.
 */
export function compareMessageIds(a: string, b: string): number {
  if (DIGITS.test(a) && DIGITS.test(b)) {
    if (a.length !== b.length) return a.length - b.length;
    return a < b ? -1 : a > b ? 1 : 0;
  }
  return compareIds(a, b);
}
