/** Random ids for clientMsgId: browser-safe (Web Crypto when present, no Node imports). */

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

interface MaybeCrypto {
  randomUUID?: () => string;
  getRandomValues?: <T extends Uint8Array>(array: T) => T;
}

/**
 * A random id of at most 36 characters. Uses `crypto.randomUUID` when available, else
 * `crypto.getRandomValues`, else the given random source (tests, exotic runtimes).
 */
export function randomId(random: () => number = Math.random): string {
  const c = (globalThis as { crypto?: MaybeCrypto }).crypto;
  if (c?.randomUUID !== undefined) return c.randomUUID();
  const bytes = new Uint8Array(22);
  if (c?.getRandomValues !== undefined) c.getRandomValues(bytes);
  else for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(random() * 256);
  let out = '';
  for (const b of bytes) out += ALPHABET[b % ALPHABET.length];
  return out;
}
