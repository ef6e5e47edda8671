/**
 * Device tokens: compact JWTs signed with HS256 carrying `sub` (user id), `dev` (device id)
 * and `exp` (seconds since the epoch), optionally `iat`, `aud` and `iss`. Only HS256 is
 * accepted, whatever the header asks for, so `alg: none` and algorithm-confusion tokens are
 * refused. A header `kid` names the verification key (key rotation); a token without one is
 * checked against the default secret.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { ChatError } from './errors';
import { isValidId } from './limits';

export interface TokenClaims {
  readonly sub: string;
  readonly dev: string;
  readonly exp: number;
  /** Issued at, seconds since the epoch. */
  readonly iat?: number;
  /** Audience: one string or several. */
  readonly aud?: string | readonly string[];
  /** Issuer. */
  readonly iss?: string;
}

/** What a token is verified against, besides the default secret. */
export interface VerifyOptions {
  /**
   * Verification keys by id: a token whose header names a `kid` is checked against that key
   * only, and refused when the id is unknown. Several keys let a new one be rolled out before
   * the old one is retired.
   */
  readonly keys?: ReadonlyMap<string, string>;
  /** When set, `aud` must be (or contain) it; tokens without `aud` are refused. */
  readonly audience?: string;
  /** When set, `iss` must equal it; tokens without `iss` are refused. */
  readonly issuer?: string;
  /** Clock skew allowed, in seconds: `exp` is honoured this long after, `iat` this far ahead. */
  readonly leewaySec?: number;
}

export interface SignOptions {
  /** Key id written in the header, for a node that verifies with several keys. */
  readonly kid?: string;
}

const HEADER = base64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));

function base64url(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64url');
}

function hmac(secret: string, signingInput: string): Buffer {
  return createHmac('sha256', secret).update(signingInput).digest();
}

/**
 * @example
 * const token = signToken({ sub: 'alice', dev: 'phone', exp: Math.floor(Date.now() / 1000) + 3600 }, secret);
 */
export function signToken(claims: TokenClaims, secret: string, options: SignOptions = {}): string {
  if (!isValidId(claims.sub) || !isValidId(claims.dev)) {
    throw new ChatError(
      'BAD_REQUEST',
      'user and device ids must be 1-64 characters of [A-Za-z0-9._-]',
    );
  }
  const header =
    options.kid === undefined
      ? HEADER
      : base64url(JSON.stringify({ alg: 'HS256', typ: 'JWT', kid: options.kid }));
  const signingInput = `${header}.${base64url(JSON.stringify(claims))}`;
  return `${signingInput}.${hmac(secret, signingInput).toString('base64url')}`;
}

function unauthorized(reason: string): ChatError {
  return new ChatError('UNAUTHORIZED', reason);
}

function parseJsonPart(part: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
      return value as Record<string, unknown>;
    }
  } catch {
    // fall through
  }
  throw unauthorized('malformed token');
}

/**
 * Verifies signature, algorithm, key id, ids, expiry, issue time, audience and issuer; throws
 * ChatError UNAUTHORIZED otherwise. `secret` checks tokens without `kid` (undefined refuses
 * them).
 *
 * @example
 * const claims = verifyToken(token, secret, Date.now(), { keys: new Map([['k2', k2]]), leewaySec: 5 });
 */
export function verifyToken(
  token: string,
  secret: string | undefined,
  nowMs: number,
  options: VerifyOptions = {},
): TokenClaims {
  const parts = token.split('.');
  if (parts.length !== 3 || parts.some((p) => p.length === 0))
    throw unauthorized('malformed token');
  const [headerPart, payloadPart, signaturePart] = parts as [string, string, string];
  const header = parseJsonPart(headerPart);
  if (header.alg !== 'HS256') throw unauthorized('token algorithm must be HS256');
  const key = keyFor(header, secret, options.keys);
  const expected = hmac(key, `${headerPart}.${payloadPart}`);
  const given = Buffer.from(signaturePart, 'base64url');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    throw unauthorized('bad token signature');
  }
  const payload = parseJsonPart(payloadPart);
  const { sub, dev, exp, iat, aud, iss } = payload;
  if (!isValidId(sub) || !isValidId(dev)) throw unauthorized('token has no valid sub and dev');
  if (typeof exp !== 'number' || !Number.isFinite(exp)) throw unauthorized('token has no exp');
  const leewayMs = (options.leewaySec ?? 0) * 1000;
  if (exp * 1000 + leewayMs <= nowMs) throw unauthorized('token expired');
  if (iat !== undefined) {
    if (typeof iat !== 'number' || !Number.isFinite(iat))
      throw unauthorized('token iat is not a number');
    if (iat * 1000 > nowMs + leewayMs) throw unauthorized('token issued in the future');
  }
  const audiences = audiencesOf(aud);
  if (options.audience !== undefined && !audiences?.includes(options.audience)) {
    throw unauthorized('token is not for this audience');
  }
  if (iss !== undefined && typeof iss !== 'string') throw unauthorized('token iss is not a string');
  if (options.issuer !== undefined && iss !== options.issuer) {
    throw unauthorized('token is not from the expected issuer');
  }
  return {
    sub,
    dev,
    exp,
    ...(iat === undefined ? {} : { iat }),
    ...(audiences === undefined ? {} : { aud: aud as string | readonly string[] }),
    ...(iss === undefined ? {} : { iss }),
  };
}

function keyFor(
  header: Record<string, unknown>,
  secret: string | undefined,
  keys: ReadonlyMap<string, string> | undefined,
): string {
  const { kid } = header;
  if (kid === undefined) {
    if (secret === undefined) throw unauthorized('token has no kid');
    return secret;
  }
  const key = typeof kid === 'string' ? keys?.get(kid) : undefined;
  if (key === undefined) throw unauthorized('token names an unknown kid');
  return key;
}

/** `aud` as a list; undefined when absent; refuses anything but a string or strings. */
function audiencesOf(aud: unknown): readonly string[] | undefined {
  if (aud === undefined) return undefined;
  if (typeof aud === 'string') return [aud];
  if (Array.isArray(aud) && aud.every((a) => typeof a === 'string')) return aud as string[];
  throw unauthorized('token aud is not a string or strings');
}
