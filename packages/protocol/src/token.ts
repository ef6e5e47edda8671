/**
 * Device tokens: compact JWTs signed with HS256 carrying `sub` (user id), `dev` (device id)
 * and `exp` (seconds since the epoch). Only HS256 is accepted, whatever the header asks for,
 * so `alg: none` and algorithm-confusion tokens are refused.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { ChatError } from './errors';
import { isValidId } from './limits';

export interface TokenClaims {
  readonly sub: string;
  readonly dev: string;
  readonly exp: number;
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
export function signToken(claims: TokenClaims, secret: string): string {
  if (!isValidId(claims.sub) || !isValidId(claims.dev)) {
    throw new ChatError(
      'BAD_REQUEST',
      'user and device ids must be 1-64 characters of [A-Za-z0-9._-]',
    );
  }
  const signingInput = `${HEADER}.${base64url(JSON.stringify(claims))}`;
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

/** Verifies signature, algorithm, ids and expiry; throws ChatError UNAUTHORIZED otherwise. */
export function verifyToken(token: string, secret: string, nowMs: number): TokenClaims {
  const parts = token.split('.');
  if (parts.length !== 3 || parts.some((p) => p.length === 0))
    throw unauthorized('malformed token');
  const [headerPart, payloadPart, signaturePart] = parts as [string, string, string];
  const header = parseJsonPart(headerPart);
  if (header.alg !== 'HS256') throw unauthorized('token algorithm must be HS256');
  const expected = hmac(secret, `${headerPart}.${payloadPart}`);
  const given = Buffer.from(signaturePart, 'base64url');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    throw unauthorized('bad token signature');
  }
  const payload = parseJsonPart(payloadPart);
  const { sub, dev, exp } = payload;
  if (!isValidId(sub) || !isValidId(dev)) throw unauthorized('token has no valid sub and dev');
  if (typeof exp !== 'number' || !Number.isFinite(exp)) throw unauthorized('token has no exp');
  if (exp * 1000 <= nowMs) throw unauthorized('token expired');
  return { sub, dev, exp };
}
