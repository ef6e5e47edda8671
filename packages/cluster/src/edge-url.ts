/**
 * Client URLs behind a TLS edge. The uWebSockets.js build in use has no TLS, so a secure
 * deployment puts one edge (nginx, see @chat/edge) in front of every node at a public https
 * origin; it routes `/n/<nodeId>/ws` to that node's own WebSocket URL (the `wsUrl` it
 * registered). The registry (route answers) and the nodes (`moved` frames) then hand out
 * `wss://<edge>/n/<nodeId>/ws` instead of the node's own address. Pure: no I/O.
 */
import { ConfigError } from './env';
import type { EnvReader } from './env';

/** The path the edge serves node `nodeId`'s WebSocket on. */
export function edgeNodePath(nodeId: string): string {
  return `/n/${encodeURIComponent(nodeId)}/ws`;
}

/**
 * Validates the edge's public origin (`https://host[:port]`, nothing after it) and returns it
 * normalized (no trailing slash); throws an Error naming `variable` otherwise.
 *
 * @example parseEdgeUrl('https://chat.example.com/', 'CHAT_EDGE_URL') // 'https://chat.example.com'
 */
export function parseEdgeUrl(raw: string, variable: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new Error(`${variable} must be an https:// URL, got ${JSON.stringify(raw)}`);
  }
  // Plain http would hand out ws:// URLs and send tokens in the clear: the edge is for TLS.
  if (url.protocol !== 'https:')
    throw new Error(`${variable} must be an https:// URL, got a ${url.protocol}// URL`);
  if (url.username !== '' || url.password !== '')
    throw new Error(`${variable} must not carry credentials`);
  if (url.pathname !== '/' || url.search !== '' || url.hash !== '') {
    throw new Error(
      `${variable} must be the edge's origin only (https://host[:port]), got ${JSON.stringify(raw)}`,
    );
  }
  return url.origin;
}

/**
 * The URL a client connects to for `nodeId`: through the edge when there is one, else the
 * node's own `wsUrl`.
 *
 * @example clientWsUrl({ nodeId: 'node-1', wsUrl: 'ws://10.0.0.5:7001/ws' }, 'https://chat.example.com')
 * // 'wss://chat.example.com/n/node-1/ws'
 */
export function clientWsUrl(
  node: { readonly nodeId: string; readonly wsUrl: string },
  edgeOrigin: string | undefined,
): string {
  if (edgeOrigin === undefined) return node.wsUrl;
  return `wss://${new URL(edgeOrigin).host}${edgeNodePath(node.nodeId)}`;
}

/**
 * CHAT_EDGE_URL as the node and the registry read it: undefined when unset, the origin when
 * well formed, a ConfigError naming the variable otherwise.
 */
export function edgeOriginFrom(r: EnvReader): string | undefined {
  const raw = r.optionalString('CHAT_EDGE_URL');
  if (raw === undefined) return undefined;
  try {
    return parseEdgeUrl(raw, 'CHAT_EDGE_URL');
  } catch (err) {
    throw new ConfigError((err as Error).message);
  }
}
