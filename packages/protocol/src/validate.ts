/**
 * Validation of decoded client frames. Runs before any authorization, so a malformed request
 * gets BAD_REQUEST (or TOO_LARGE) even from a non-member. The result is a fresh object holding
 * only the known fields, so nothing unexpected from the wire travels further.
 */
import { ChatError } from './errors';
import type { AttachmentRef, ClientFrame, ClientRequest, LastSeenVisibility } from './frames';
import type { Limits } from './limits';
import { isValidId } from './limits';
import { validatePushTarget } from './push-target';

type Raw = Record<string, unknown>;

const MAX_OPAQUE_ID_CHARS = 64;
const MAX_MIME_CHARS = 127;
const MAX_KEY_CHARS = 512;
const LAST_SEEN_VISIBILITIES: ReadonlySet<string> = new Set<LastSeenVisibility>([
  'everyone',
  'contacts',
  'nobody',
]);
/** Most chats in one listChats reply (and its default). */
export const MAX_LIST_CHATS = 100;

function bad(message: string, id: number | undefined): ChatError {
  return new ChatError('BAD_REQUEST', message, id === undefined ? {} : { id });
}

/** Postgres text cannot hold U+0000: a string with one would fail the statement it is in. */
function hasNul(v: string): boolean {
  return v.includes('\u0000');
}

function isNonNegativeInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/** The request id of a frame if it has a usable one, so that errors can be correlated. */
export function requestIdOf(value: unknown): number | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const id = (value as Raw).id;
  return isNonNegativeInt(id) ? id : undefined;
}

class FieldReader {
  constructor(
    private readonly raw: Raw,
    private readonly id: number | undefined,
  ) {}

  /** Optional fields may be missing or null: msgpack clients in many languages send nil for "absent". */
  private isAbsent(name: string): boolean {
    const v = this.raw[name];
    return v === undefined || v === null;
  }

  userId(name: string): string {
    const v = this.raw[name];
    if (!isValidId(v)) throw bad(`${name} must be 1-64 characters of [A-Za-z0-9._-]`, this.id);
    return v;
  }

  opaqueId(name: string): string {
    const v = this.raw[name];
    if (typeof v !== 'string' || v.length === 0 || v.length > MAX_OPAQUE_ID_CHARS) {
      throw bad(
        `${name} must be a non-empty string of at most ${MAX_OPAQUE_ID_CHARS} characters`,
        this.id,
      );
    }
    if (hasNul(v)) throw bad(`${name} must not contain the NUL character (U+0000)`, this.id);
    return v;
  }

  count(name: string): number {
    const v = this.raw[name];
    if (!isNonNegativeInt(v)) throw bad(`${name} must be a non-negative integer`, this.id);
    return v;
  }

  optionalCount(name: string): number | undefined {
    return this.isAbsent(name) ? undefined : this.count(name);
  }

  optionalBoolean(name: string): boolean | undefined {
    if (this.isAbsent(name)) return undefined;
    const v = this.raw[name];
    if (typeof v !== 'boolean') throw bad(`${name} must be true or false`, this.id);
    return v;
  }

  /** An optional flag: true, or absent (missing, null or false). */
  optionalTrue(name: string): boolean {
    const v = this.raw[name];
    if (this.isAbsent(name) || v === false) return false;
    if (v !== true) throw bad(`${name} must be true when given`, this.id);
    return true;
  }

  string(name: string, maxChars: number, tooLarge = false): string {
    const v = this.raw[name];
    if (typeof v !== 'string') throw bad(`${name} must be a string`, this.id);
    if (v.length > maxChars) {
      if (tooLarge) {
        throw new ChatError('TOO_LARGE', `${name} is longer than ${maxChars} characters`, {
          id: this.id,
        });
      }
      throw bad(`${name} must be at most ${maxChars} characters`, this.id);
    }
    if (hasNul(v)) throw bad(`${name} must not contain the NUL character (U+0000)`, this.id);
    return v;
  }

  optionalString(name: string, maxChars: number, tooLarge = false): string | undefined {
    return this.isAbsent(name) ? undefined : this.string(name, maxChars, tooLarge);
  }

  userIds(name: string, maxCount: number): string[] {
    const v = this.raw[name];
    if (!Array.isArray(v)) throw bad(`${name} must be an array of user ids`, this.id);
    if (v.length > maxCount) {
      throw new ChatError('LIMIT', `${name} may list at most ${maxCount} users`, { id: this.id });
    }
    const out: string[] = [];
    for (const item of v) {
      if (!isValidId(item))
        throw bad(`${name} must hold user ids of [A-Za-z0-9._-]{1,64}`, this.id);
      out.push(item);
    }
    return out;
  }

  optionalLastSeenVisibility(name: string): LastSeenVisibility | undefined {
    if (this.isAbsent(name)) return undefined;
    const v = this.raw[name];
    if (typeof v !== 'string' || !LAST_SEEN_VISIBILITIES.has(v)) {
      throw bad(`${name} must be one of ${[...LAST_SEEN_VISIBILITIES].join(', ')}`, this.id);
    }
    return v as LastSeenVisibility;
  }

  attachments(name: string, maxCount: number): AttachmentRef[] | undefined {
    const v = this.raw[name];
    if (this.isAbsent(name)) return undefined;
    if (!Array.isArray(v)) throw bad(`${name} must be an array`, this.id);
    if (v.length > maxCount) {
      throw new ChatError('TOO_LARGE', `at most ${maxCount} attachments per message`, {
        id: this.id,
      });
    }
    return v.map((item: unknown) => {
      if (typeof item !== 'object' || item === null || Array.isArray(item)) {
        throw bad(`each of ${name} must be an object {key, mime, size}`, this.id);
      }
      const r = new FieldReader(item as Raw, this.id);
      return {
        key: r.string('key', MAX_KEY_CHARS),
        mime: r.string('mime', MAX_MIME_CHARS),
        size: r.count('size'),
      };
    });
  }
}

/**
 * Turns a decoded value into a typed client frame, or throws ChatError (BAD_REQUEST, TOO_LARGE
 * or LIMIT) whose context carries the request id when one could be read.
 *
 * @example
 * const frame = validateClientFrame(JSON.parse(text), defaultLimits);
 */
export function validateClientFrame(value: unknown, limits: Limits): ClientFrame {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw bad('a frame must be an object', undefined);
  }
  const raw = value as Raw;
  const t = raw.t;
  if (typeof t !== 'string') throw bad('a frame needs a string field t', requestIdOf(raw));

  switch (t) {
    case 'ack':
    case 'pong': {
      const r = new FieldReader(raw, undefined);
      return { t, seq: r.count('seq') };
    }
    case 'typing':
      return { t, chatId: new FieldReader(raw, undefined).opaqueId('chatId') };
    default:
      return validateRequest(raw, t, limits);
  }
}

function validateRequest(raw: Raw, t: string, limits: Limits): ClientRequest {
  const id = requestIdOf(raw);
  if (id === undefined)
    throw bad(
      `request ${JSON.stringify(t).slice(0, 40)} needs a non-negative integer id`,
      undefined,
    );
  const r = new FieldReader(raw, id);
  switch (t) {
    case 'createChat': {
      const name = r.optionalString('name', limits.maxChatNameChars);
      const members = r.userIds('members', limits.maxMembersPerChat);
      return name === undefined ? { t, id, members } : { t, id, members, name };
    }
    case 'addMembers': {
      const chatId = r.opaqueId('chatId');
      const members = r.userIds('members', limits.maxMembersPerChat);
      return r.optionalTrue('admin')
        ? { t, id, chatId, members, admin: true }
        : { t, id, chatId, members };
    }
    case 'removeMembers':
      return {
        t,
        id,
        chatId: r.opaqueId('chatId'),
        members: r.userIds('members', limits.maxMembersPerChat),
      };
    case 'listChats': {
      const before = r.optionalCount('before');
      const limit = r.optionalCount('limit');
      if (limit === 0) throw bad('limit must be at least 1', id);
      const frame: ClientRequest = { t, id };
      if (before !== undefined) frame.before = before;
      if (limit !== undefined) frame.limit = Math.min(limit, MAX_LIST_CHATS);
      return frame;
    }
    case 'send': {
      const chatId = r.opaqueId('chatId');
      const clientMsgId = r.opaqueId('clientMsgId');
      const body = r.optionalString('body', limits.maxBodyChars, true);
      const attachments = r.attachments('attachments', limits.maxAttachments);
      if (body === undefined && (attachments === undefined || attachments.length === 0)) {
        throw bad('send needs a body or at least one attachment', id);
      }
      const frame: ClientRequest = { t, id, chatId, clientMsgId };
      if (body !== undefined) frame.body = body;
      if (attachments !== undefined) frame.attachments = attachments;
      return frame;
    }
    case 'sync': {
      const after = r.count('after');
      const limit = r.optionalCount('limit');
      if (limit === undefined) return { t, id, after };
      if (limit === 0) throw bad('limit must be at least 1', id);
      return { t, id, after, limit: Math.min(limit, limits.maxSyncLimit) };
    }
    case 'read':
      return { t, id, chatId: r.opaqueId('chatId'), messageId: r.opaqueId('messageId') };
    case 'lastSeen':
      return { t, id, user: r.userId('user') };
    case 'block':
    case 'unblock':
      return { t, id, user: r.userId('user') };
    case 'listBlocked':
      return { t, id };
    case 'privacy': {
      const lastSeen = r.optionalLastSeenVisibility('lastSeen');
      return lastSeen === undefined ? { t, id } : { t, id, lastSeen };
    }
    case 'uploadTarget':
      return { t, id, mime: r.string('mime', MAX_MIME_CHARS), size: r.count('size') };
    case 'downloadUrl':
      return { t, id, key: r.string('key', MAX_KEY_CHARS) };
    case 'pushRegister':
      return { t, id, target: validatePushTarget(raw.target, id) };
    case 'pushRemove':
      return { t, id };
    case 'pushSettings': {
      const previews = r.optionalBoolean('previews');
      return previews === undefined ? { t, id } : { t, id, previews };
    }
    default:
      throw bad(`unknown frame type ${JSON.stringify(t).slice(0, 40)}`, id);
  }
}
