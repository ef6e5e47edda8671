/**
 * The address a client is counted under (the nodes' per-address admission, the registry's
 * dashboard streams). Behind a TLS edge or load balancer every peer is
 * the proxy, so per-address limits would throttle all clients as one; proxies the
 * operator names (CHAT_TRUSTED_PROXIES) may say who their client is in X-Forwarded-For. Nobody
 * else may: a client that sends the header itself straight to a node is limited by its own
 * address, and a client behind a trusted proxy can only prepend entries the walk never reaches.
 */
import { BlockList, isIP } from 'node:net';
import { ConfigError } from './env';
import type { EnvReader } from './env';

/**
 * A setting of trusted proxies that is not a list of addresses and CIDR blocks: a configuration
 * error, so a process reading its settings stops with its message (exit 2).
 */
export class InvalidTrustedProxies extends ConfigError {
  override readonly name = 'InvalidTrustedProxies';
}

/** Proxies whose X-Forwarded-For is believed. */
export interface TrustedProxies {
  has(address: string): boolean;
}

/** Trusts nobody: X-Forwarded-For is ignored. */
export const NO_TRUSTED_PROXIES: TrustedProxies = { has: () => false };

/**
 * Parses addresses and CIDR blocks (IPv4 and IPv6), e.g. `127.0.0.1,10.0.0.0/8,fd00::/8`;
 * a bad entry is quoted in the error (InvalidTrustedProxies) with the variable's name.
 */
export function parseTrustedProxies(name: string, entries: readonly string[]): TrustedProxies {
  if (entries.length === 0) return NO_TRUSTED_PROXIES;
  const list = new BlockList();
  for (const entry of entries) {
    const [address = '', prefixText, extra] = entry.split('/');
    const family = isIP(address);
    const prefix = prefixText === undefined ? undefined : Number(prefixText);
    const maxPrefix = family === 6 ? 128 : 32;
    const valid =
      family !== 0 &&
      extra === undefined &&
      (prefix === undefined || (/^\d+$/.test(prefixText!) && prefix >= 0 && prefix <= maxPrefix));
    if (!valid) {
      throw new InvalidTrustedProxies(
        `${name} must be comma-separated IP addresses or CIDR blocks, got ${JSON.stringify(entry)}`,
      );
    }
    const type = family === 6 ? 'ipv6' : 'ipv4';
    if (prefix === undefined) list.addAddress(address, type);
    else list.addSubnet(address, prefix, type);
  }
  return { has: (address) => checkAddress(list, address) };
}

/**
 * CHAT_TRUSTED_PROXIES as the node and the registry read it: the entries, checked now so that a
 * bad one stops the start naming the variable (InvalidTrustedProxies, a ConfigError).
 *
 * @example parseTrustedProxies('CHAT_TRUSTED_PROXIES', trustedProxiesFrom(new EnvReader(env)))
 */
export function trustedProxiesFrom(r: EnvReader): readonly string[] {
  const entries = r.list('CHAT_TRUSTED_PROXIES');
  parseTrustedProxies('CHAT_TRUSTED_PROXIES', entries);
  return Object.freeze(entries);
}

function checkAddress(list: BlockList, address: string): boolean {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  const plain = mapped === null ? address : mapped[1]!;
  const family = isIP(plain);
  if (family === 0) return false;
  return list.check(plain, family === 6 ? 'ipv6' : 'ipv4');
}

/**
 * The client's address: the peer's, unless the peer is a trusted proxy; then the nearest
 * X-Forwarded-For entry (walking from the right, where each proxy appends) that is not itself
 * a trusted proxy. Garbage in the header ends the walk at the last address that was sound.
 *
 * @example clientAddress('10.0.0.2', '198.51.100.7, 10.0.0.3', trusting 10.0.0.0/8) === '198.51.100.7'
 */
export function clientAddress(peer: string, forwardedFor: string, trusted: TrustedProxies): string {
  let client = peer;
  if (!trusted.has(client) || forwardedFor === '') return client;
  const hops = forwardedFor.split(',').map((s) => s.trim());
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = hops[i]!;
    if (isIP(hop) === 0) break;
    client = hop;
    if (!trusted.has(hop)) break;
  }
  return client;
}
