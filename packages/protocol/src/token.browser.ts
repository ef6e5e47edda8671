/**
 * What browser bundles get instead of `token.ts` (see `browser` in package.json): tokens are
 * signed and verified by servers only, and `node:crypto` does not exist in browsers.
 */
import type { SignOptions, TokenClaims, VerifyOptions } from './token';

function serverOnly(name: string): never {
  throw new Error(`${name} runs on servers only: a browser gets its token from the server`);
}

export function signToken(_claims: TokenClaims, _secret: string, _options?: SignOptions): string {
  return serverOnly('signToken');
}

export function verifyToken(
  _token: string,
  _secret: string | undefined,
  _nowMs: number,
  _options?: VerifyOptions,
): TokenClaims {
  return serverOnly('verifyToken');
}
