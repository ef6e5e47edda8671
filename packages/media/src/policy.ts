/**
 * The pure decisions of media handling: which types and sizes are accepted, how object keys
 * are made and whose they are, what a presigned POST policy must say. No I/O here.
 */
import { ChatError } from '@chat/protocol';
import type { AttachmentRef } from '@chat/protocol';

/** Limits on what may be uploaded and attached. */
export interface MediaLimits {
  /** Largest attachment, bytes. */
  readonly maxBytes: number;
  /**
   * Allowed MIME types: exact (`application/pdf`) or a whole top-level type (`image/*`).
   * Compared in lower case; parameters (`; charset=...`) are not accepted.
   */
  readonly allowedTypes: readonly string[];
}

/** 16 MiB. */
export const DEFAULT_MAX_BYTES = 16 * 1024 * 1024;

/**
 * Images, video, audio, PDF and plain files. SVG and HTML are left out on purpose: a browser
 * opening one from the storage origin would run its scripts.
 */
export const DEFAULT_ALLOWED_TYPES: readonly string[] = Object.freeze([
  'image/jpeg',
  'image/png',
  'image/gif',
  'image/webp',
  'image/heic',
  'image/heif',
  'image/avif',
  'video/*',
  'audio/*',
  'application/pdf',
  'text/plain',
  'application/octet-stream',
]);

const TOKEN = '[a-z0-9][a-z0-9!#$&^_.+-]{0,63}';
const MIME_PATTERN = new RegExp(`^${TOKEN}/${TOKEN}$`);
const TYPE_PATTERN = new RegExp(`^(${TOKEN}/${TOKEN}|${TOKEN}/\\*)$`);

/** Key layout: `u/<userId>/<random>`. User ids cannot contain `/`, so the prefix is unambiguous. */
const KEY_PATTERN = /^u\/([A-Za-z0-9._-]{1,64})\/([A-Za-z0-9_-]{16,64})$/;

/** True when `pattern` is a usable entry of an allowed-types list. */
export function isTypePattern(pattern: string): boolean {
  return TYPE_PATTERN.test(pattern.toLowerCase());
}

/** The canonical (lower-case) form of a MIME type, or undefined when it is not `type/subtype`. */
export function normalizeMime(mime: string): string | undefined {
  const lower = mime.trim().toLowerCase();
  return MIME_PATTERN.test(lower) ? lower : undefined;
}

export function isTypeAllowed(mime: string, allowed: readonly string[]): boolean {
  const normal = normalizeMime(mime);
  if (normal === undefined) return false;
  const top = normal.slice(0, normal.indexOf('/'));
  return allowed.some((p) => {
    const pattern = p.toLowerCase();
    return pattern === normal || pattern === `${top}/*`;
  });
}

/**
 * Checks a declared type and size; returns the normalized type.
 * TOO_LARGE past the limit, BAD_REQUEST for an empty file or a type that is not allowed.
 *
 * @example
 * const mime = checkDeclared('image/PNG', 1024, limits); // 'image/png'
 */
export function checkDeclared(mime: string, size: number, limits: MediaLimits): string {
  if (size > limits.maxBytes) {
    throw new ChatError('TOO_LARGE', `attachments are at most ${limits.maxBytes} bytes`, {
      size,
    });
  }
  if (size < 1) throw new ChatError('BAD_REQUEST', 'an attachment must not be empty');
  const normal = normalizeMime(mime);
  if (normal === undefined || !isTypeAllowed(normal, limits.allowedTypes)) {
    throw new ChatError('BAD_REQUEST', `attachment type ${JSON.stringify(mime)} is not allowed`, {
      allowed: limits.allowedTypes,
    });
  }
  return normal;
}

/**
 * A fresh object key under the user's prefix.
 *
 * @example
 * newObjectKey('alice', randomBytes(18)) // 'u/alice/3q2-7w...'
 */
export function newObjectKey(userId: string, random: Uint8Array): string {
  return `u/${userId}/${Buffer.from(random).toString('base64url')}`;
}

/** The user a key was issued to, or undefined when the key is not one of ours. */
export function keyOwner(key: string): string | undefined {
  return KEY_PATTERN.exec(key)?.[1];
}

/**
 * Checks what can be checked of attachment references without storage: each key was issued
 * to `userId`, each declared type and size is allowed, no key twice. Returns the references
 * with normalized types.
 */
export function checkAttachmentRefs(
  userId: string,
  refs: readonly AttachmentRef[],
  limits: MediaLimits,
): AttachmentRef[] {
  const seen = new Set<string>();
  return refs.map((ref) => {
    if (keyOwner(ref.key) !== userId) {
      throw new ChatError('BAD_REQUEST', 'attachment key was not issued to you', { key: ref.key });
    }
    if (seen.has(ref.key)) {
      throw new ChatError('BAD_REQUEST', 'the same attachment twice in one message', {
        key: ref.key,
      });
    }
    seen.add(ref.key);
    return { key: ref.key, mime: checkDeclared(ref.mime, ref.size, limits), size: ref.size };
  });
}

/** What storage says about an uploaded object. */
export interface ObjectFacts {
  readonly size: number;
  /** Content-Type stored with the object, if any. */
  readonly contentType: string | undefined;
}

/** BAD_REQUEST unless the stored object is what the reference declares. */
export function checkUploaded(ref: AttachmentRef, facts: ObjectFacts): void {
  if (facts.size !== ref.size) {
    throw new ChatError(
      'BAD_REQUEST',
      `attachment is ${facts.size} bytes, ${ref.size} were declared`,
      {
        key: ref.key,
      },
    );
  }
  const stored = facts.contentType === undefined ? undefined : normalizeMime(facts.contentType);
  if (stored !== normalizeMime(ref.mime)) {
    throw new ChatError(
      'BAD_REQUEST',
      `attachment was uploaded as ${facts.contentType ?? 'no type'}`,
      {
        key: ref.key,
      },
    );
  }
}

/** The conditions of a presigned POST for one upload, before the store signs it. */
export interface UploadPolicy {
  readonly bucket: string;
  readonly key: string;
  readonly contentType: string;
  /** Exact size: the policy's content-length-range is [size, size]. */
  readonly size: number;
  readonly expiresAt: Date;
}
