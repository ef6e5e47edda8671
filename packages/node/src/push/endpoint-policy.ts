/**
 * Which Web Push endpoints a node sends to. The endpoint comes from a client, and the node
 * makes an HTTPS request to it: an endpoint naming this host or the private network would let
 * any user make the node call internal services. So, unless the operator allows private
 * endpoints (CHAT_PUSH_ALLOW_PRIVATE_ENDPOINTS, for tests and local runs whose push receiver
 * is on loopback), endpoints whose host is `localhost`, a loopback, private, link-local or
 * unspecified address are refused. Host names are not resolved here: the push services'
 * endpoints are public names, and a name pointing inward is the operator's DNS to keep clean.
 */
import { isIP } from 'node:net';

const LOCAL_NAMES = /^(localhost|.*\.localhost|.*\.local|.*\.internal)$/i;

function isPrivateIpv4(host: string): boolean {
  const [a = 0, b = 0] = host.split('.').map(Number);
  return (
    a === 0 ||
    a === 10 ||
    a === 127 ||
    (a === 100 && b >= 64 && b <= 127) ||
    (a === 169 && b === 254) ||
    (a === 172 && b >= 16 && b <= 31) ||
    (a === 192 && b === 168)
  );
}

function isPrivateIpv6(host: string): boolean {
  const h = host.toLowerCase();
  if (h === '::' || h === '::1') return true;
  // An IPv4-mapped address; URL writes it in hex (::ffff:7f00:1 for 127.0.0.1).
  const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(h);
  if (mapped !== null) {
    const hi = parseInt(mapped[1]!, 16);
    const lo = parseInt(mapped[2]!, 16);
    return isPrivateIpv4(`${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`);
  }
  return /^(fc|fd|fe8|fe9|fea|feb)/.test(h);
}

/** True when `endpoint` (an https URL, validated by the protocol) names a private host. */
export function isPrivateEndpoint(endpoint: string): boolean {
  const host = new URL(endpoint).hostname.replace(/^\[|\]$/g, '');
  switch (isIP(host)) {
    case 4:
      return isPrivateIpv4(host);
    case 6:
      return isPrivateIpv6(host);
    default:
      return LOCAL_NAMES.test(host);
  }
}
