import { verify } from 'node:crypto';
import type { KeyObject } from 'node:crypto';

/** A verified compact JWS: its protected header and claims. */
export interface VerifiedJwt {
  readonly header: Record<string, unknown>;
  readonly claims: Record<string, unknown>;
}

/** Why a token was refused; receivers turn it into their provider's error document. */
export class JwtRejected extends Error {}

/**
 * Verifies a compact JWS signed with ES256 (P-256, raw r||s signature per RFC 7518 §3.4) or
 * RS256 (RSASSA-PKCS1-v1_5 with SHA-256) against `key`. Claims are returned for the caller to
 * check; only the signature and the `alg` header are checked here.
 */
export function verifyJwt(token: string, key: KeyObject, alg: 'ES256' | 'RS256'): VerifiedJwt {
  const parts = token.split('.');
  if (parts.length !== 3) throw new JwtRejected('not a compact JWS');
  const [headerB64, claimsB64, signatureB64] = parts as [string, string, string];
  const header = decodeJson(headerB64, 'header');
  if (header['alg'] !== alg)
    throw new JwtRejected(`alg is ${String(header['alg'])}, expected ${alg}`);
  const signature = Buffer.from(signatureB64, 'base64url');
  const signed = Buffer.from(`${headerB64}.${claimsB64}`);
  const ok =
    alg === 'ES256'
      ? signature.length === 64 &&
        verify('sha256', signed, { key, dsaEncoding: 'ieee-p1363' }, signature)
      : verify('sha256', signed, key, signature);
  if (!ok) throw new JwtRejected('bad signature');
  return { header, claims: decodeJson(claimsB64, 'claims') };
}

function decodeJson(part: string, what: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
    if (typeof value === 'object' && value !== null && !Array.isArray(value))
      return value as Record<string, unknown>;
  } catch {
    // fall through to the refusal below
  }
  throw new JwtRejected(`${what} is not a JSON object`);
}

/** Seconds since the epoch, as JWT claims count time. */
export function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}
