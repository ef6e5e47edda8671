/**
 * The operator token that guards the dashboard (its page and its event stream): it shows every
 * node's address, load and the ring, which is for operators only. A browser page cannot set
 * headers on an EventSource, so the token may come as `?token=` as well as a bearer header.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

/** The token a request presents: `Authorization: Bearer <t>` or `?token=<t>`. */
export function presentedToken(req: IncomingMessage, url: URL): string | undefined {
  const bearer = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
  return bearer?.[1] ?? url.searchParams.get('token') ?? undefined;
}

/**
 * Whether `given` is the operator token, compared in constant time (over digests, so that the
 * length of the token does not show either).
 */
export function isOperatorToken(expected: string, given: string | undefined): boolean {
  if (given === undefined) return false;
  const digest = (value: string): Buffer => createHash('sha256').update(value).digest();
  return timingSafeEqual(digest(expected), digest(given));
}
