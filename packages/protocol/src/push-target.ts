/**
 * Validation of push targets (issue 18). A target is stored and later handed to a provider
 * client that makes outbound requests with it, so it is checked strictly here: known kinds
 * only, bounded sizes, the character sets the providers issue, an https endpoint for Web Push
 * and keys of the lengths RFC 8291 requires. Whether an endpoint's host may be a private or
 * loopback address is the node's decision (it depends on where the node runs), not the wire's.
 */
import { ChatError } from './errors';
import type { PushTargetSpec } from './frames';

type Raw = Record<string, unknown>;

/** APNs device tokens are 32 bytes today; Apple warns they may grow, so up to 100 bytes. */
const APNS_TOKEN = /^(?:[0-9a-fA-F]{2}){16,100}$/;
/** A bundle id, possibly with a suffix such as `.voip`. */
const APNS_TOPIC = /^[A-Za-z0-9._-]{1,255}$/;
/** FCM registration tokens: about 150-300 characters of these, with room to grow. */
const FCM_TOKEN = /^[A-Za-z0-9_:.-]{1,4096}$/;
export const MAX_PUSH_ENDPOINT_CHARS = 2048;
const BASE64URL = /^[A-Za-z0-9_-]+={0,2}$/;
/** An uncompressed P-256 point: 0x04 then 32 bytes of x and 32 of y (RFC 8291 section 3.1). */
const P256DH_BYTES = 65;
/** The subscription's authentication secret (RFC 8291 section 3.2). */
const AUTH_BYTES = 16;

function bad(message: string, id: number): ChatError {
  return new ChatError('BAD_REQUEST', message, { id });
}

function isObject(v: unknown): v is Raw {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Bytes encoded by a base64url string (padding allowed), or -1 when it is not base64url. */
function base64urlBytes(v: string): number {
  if (!BASE64URL.test(v)) return -1;
  const chars = v.replace(/=+$/, '').length;
  if (chars % 4 === 1) return -1;
  return Math.floor((chars * 3) / 4);
}

function matching(raw: Raw, name: string, pattern: RegExp, what: string, id: number): string {
  const v = raw[name];
  if (typeof v !== 'string' || !pattern.test(v)) throw bad(`target.${name} must be ${what}`, id);
  return v;
}

function webPushEndpoint(raw: Raw, id: number): string {
  const v = raw.endpoint;
  if (typeof v !== 'string' || v.length === 0) {
    throw bad('target.endpoint must be a non-empty string', id);
  }
  if (v.length > MAX_PUSH_ENDPOINT_CHARS) {
    throw bad(`target.endpoint must be at most ${MAX_PUSH_ENDPOINT_CHARS} characters`, id);
  }
  let url: URL;
  try {
    url = new URL(v);
  } catch {
    throw bad('target.endpoint must be an absolute URL', id);
  }
  if (url.protocol !== 'https:') throw bad('target.endpoint must be an https URL', id);
  if (url.username !== '' || url.password !== '') {
    throw bad('target.endpoint must not carry credentials', id);
  }
  return v;
}

function webPushKey(keys: Raw, name: 'p256dh' | 'auth', bytes: number, id: number): string {
  const v = keys[name];
  if (typeof v !== 'string' || base64urlBytes(v) !== bytes) {
    throw bad(`target.keys.${name} must be ${bytes} bytes in base64url`, id);
  }
  return v;
}

/**
 * The push target of a `pushRegister` request, as a fresh object of known fields; throws
 * ChatError BAD_REQUEST naming the field at fault.
 *
 * @example
 * validatePushTarget({ kind: 'fcm', token: 'abc:def' }, 7); // { kind: 'fcm', token: 'abc:def' }
 */
export function validatePushTarget(value: unknown, id: number): PushTargetSpec {
  if (!isObject(value)) throw bad('target must be an object with a kind', id);
  switch (value.kind) {
    case 'apns': {
      const environment = value.environment;
      if (environment !== 'sandbox' && environment !== 'production') {
        throw bad('target.environment must be sandbox or production', id);
      }
      return {
        kind: 'apns',
        token: matching(value, 'token', APNS_TOKEN, '32 to 200 hexadecimal characters', id),
        topic: matching(value, 'topic', APNS_TOPIC, 'a bundle id of [A-Za-z0-9._-]{1,255}', id),
        environment,
      };
    }
    case 'fcm':
      return {
        kind: 'fcm',
        token: matching(value, 'token', FCM_TOKEN, '1 to 4096 characters of [A-Za-z0-9_:.-]', id),
      };
    case 'webpush': {
      const endpoint = webPushEndpoint(value, id);
      const keys = value.keys;
      if (!isObject(keys)) throw bad('target.keys must be an object {p256dh, auth}', id);
      const p256dh = webPushKey(keys, 'p256dh', P256DH_BYTES, id);
      // 0x04 (an uncompressed point) is the first six bits 000001: base64url 'B'.
      if (!p256dh.startsWith('B')) {
        throw bad('target.keys.p256dh must be an uncompressed P-256 point (0x04...)', id);
      }
      return {
        kind: 'webpush',
        endpoint,
        keys: { p256dh, auth: webPushKey(keys, 'auth', AUTH_BYTES, id) },
      };
    }
    default:
      throw bad('target.kind must be apns, fcm or webpush', id);
  }
}

/**
 * Whether `text` is a VAPID public key as browsers take it for `applicationServerKey`: an
 * uncompressed P-256 point (65 bytes, 0x04...) in unpadded base64url, the rule the nodes
 * apply to CHAT_PUSH_WEBPUSH_VAPID_PUBLIC_KEY.
 *
 * @example
 * isVapidPublicKey(generated.publicKey); // true
 */
export function isVapidPublicKey(text: string): boolean {
  // 0x04 is the bits 000001 00: a first character 'B', then one whose top two bits are 00.
  return !text.includes('=') && base64urlBytes(text) === P256DH_BYTES && /^B[A-P]/.test(text);
}
