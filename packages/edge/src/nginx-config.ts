/**
 * The TLS edge's nginx configuration, rendered from cluster membership. Pure: no I/O.
 *
 * One `server` on the public https port: `/n/<nodeId>/ws` goes to that node's own WebSocket URL
 * (the `wsUrl` it registered in etcd), everything else to the registry (routes, web pages,
 * dashboard). The text is meant for nginx's `http` context (Debian: `/etc/nginx/conf.d/`);
 * {@link renderStandaloneNginx} wraps it into a whole nginx.conf for local runs and tests.
 */
import { edgeNodePath } from '@chat/cluster';

export interface EdgeSite {
  /** `host:port` the edge listens on for https, e.g. `0.0.0.0:443` or `127.0.0.1:8443`. */
  readonly listen: string;
  /** PEM files of the edge's certificate (chain) and key. */
  readonly certFile: string;
  readonly keyFile: string;
  /** The registry's base URL (`http://host:port`), for everything that is not a node route. */
  readonly registryUrl: string;
}

/** A node the edge routes to: its id and its own (plaintext) WebSocket URL. */
export interface EdgeNode {
  readonly nodeId: string;
  readonly wsUrl: string;
}

/** What was left out of a configuration and why. */
export interface RenderedEdge {
  readonly text: string;
  /** Nodes whose records cannot be routed to safely (see {@link upstreamOf}). */
  readonly skipped: readonly { readonly nodeId: string; readonly reason: string }[];
}

// A node record is data anyone with etcd write access can publish: only plain host:port and a
// path of URL-safe characters reach the configuration, so a record cannot inject directives.
const SAFE_HOST = /^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])$/;
const SAFE_PATH = /^\/[A-Za-z0-9._~%/-]*$/;
const SAFE_ID = /^[A-Za-z0-9._-]{1,64}$/;
const SAFE_FILE = /^[^\s;{}'"\\]+$/;

/** The `proxy_pass` target of a node, or why there is none. */
export function upstreamOf(node: EdgeNode): { url: string } | { problem: string } {
  if (!SAFE_ID.test(node.nodeId) || node.nodeId === '.' || node.nodeId === '..')
    return { problem: 'node id is not a plain id' };
  let url: URL;
  try {
    url = new URL(node.wsUrl);
  } catch {
    return { problem: 'wsUrl is not a URL' };
  }
  const scheme = url.protocol === 'ws:' ? 'http' : url.protocol === 'wss:' ? 'https' : undefined;
  if (scheme === undefined) return { problem: `wsUrl scheme ${url.protocol} is not ws: or wss:` };
  if (url.username !== '' || url.password !== '' || url.search !== '' || url.hash !== '')
    return { problem: 'wsUrl carries more than host, port and path' };
  if (!SAFE_HOST.test(url.hostname)) return { problem: 'wsUrl host is not a plain host' };
  if (!SAFE_PATH.test(url.pathname)) return { problem: 'wsUrl path has unsafe characters' };
  return { url: `${scheme}://${url.host}${url.pathname}` };
}

function checkSite(site: EdgeSite): void {
  if (!/^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]):\d{1,5}$/.test(site.listen))
    throw new Error(`edge listen address must be host:port, got ${JSON.stringify(site.listen)}`);
  for (const [what, file] of [
    ['certificate', site.certFile],
    ['key', site.keyFile],
  ] as const) {
    if (!SAFE_FILE.test(file))
      throw new Error(`edge ${what} path has characters nginx cannot take: ${file}`);
  }
  const registry = new URL(site.registryUrl);
  if (registry.protocol !== 'http:' && registry.protocol !== 'https:')
    throw new Error(`the registry URL must be http:// or https://, got ${site.registryUrl}`);
}

/** Headers every proxied request carries: who the client is (for CHAT_TRUSTED_PROXIES). */
const FORWARDED = [
  'proxy_http_version 1.1;',
  'proxy_set_header Host $host;',
  'proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;',
  'proxy_set_header X-Forwarded-Proto https;',
];

/**
 * The `http`-context configuration of the edge for these nodes (sorted by id, so the same
 * membership always gives the same text and an unchanged one needs no reload).
 *
 * @example
 * const { text } = renderEdgeConfig(site, [{ nodeId: 'node-1', wsUrl: 'ws://10.0.0.5:7001/ws' }]);
 */
export function renderEdgeConfig(site: EdgeSite, nodes: readonly EdgeNode[]): RenderedEdge {
  checkSite(site);
  const skipped: { nodeId: string; reason: string }[] = [];
  const routes: string[] = [];
  for (const node of [...nodes].sort((a, b) => (a.nodeId < b.nodeId ? -1 : 1))) {
    const upstream = upstreamOf(node);
    if ('problem' in upstream) {
      skipped.push({ nodeId: node.nodeId, reason: upstream.problem });
      continue;
    }
    routes.push(
      `    location = ${edgeNodePath(node.nodeId)} {`,
      `        proxy_pass ${upstream.url};`,
      ...FORWARDED.map((line) => `        ${line}`),
      '        proxy_set_header Upgrade $http_upgrade;',
      '        proxy_set_header Connection $chat_edge_connection;',
      // Heartbeats keep a session busy far more often than this; idle sockets are the nodes' call.
      '        proxy_read_timeout 1h;',
      '        proxy_send_timeout 1h;',
      // The token travels in the query string: it must not land in an access log.
      '        access_log off;',
      '    }',
    );
  }
  const registry = new URL(site.registryUrl);
  const text = [
    '# Generated by @chat/edge from cluster membership: edits are overwritten.',
    'map $http_upgrade $chat_edge_connection {',
    '    default upgrade;',
    "    '' close;",
    '}',
    'server {',
    `    listen ${site.listen} ssl;`,
    `    ssl_certificate ${site.certFile};`,
    `    ssl_certificate_key ${site.keyFile};`,
    '    ssl_protocols TLSv1.2 TLSv1.3;',
    '    ssl_session_cache shared:chat_edge:1m;',
    '    add_header Strict-Transport-Security "max-age=31536000" always;',
    ...routes,
    '    location /n/ {',
    '        return 404;',
    '    }',
    '    location / {',
    `        proxy_pass ${registry.protocol}//${registry.host};`,
    ...FORWARDED.map((line) => `        ${line}`),
    // The dashboard's event stream must reach the browser as it is written.
    '        proxy_buffering off;',
    '        proxy_read_timeout 1h;',
    '    }',
    '}',
    '',
  ].join('\n');
  return { text, skipped };
}

/**
 * A whole nginx.conf around an included site file, with every path nginx writes under
 * `runtimeDir`: nginx runs as the calling user, in the foreground, without touching /var.
 */
export function renderStandaloneNginx(siteFile: string, runtimeDir: string): string {
  for (const file of [siteFile, runtimeDir]) {
    if (!SAFE_FILE.test(file)) throw new Error(`path has characters nginx cannot take: ${file}`);
  }
  return [
    '# Generated by @chat/edge for a local run.',
    'daemon off;',
    'worker_processes 1;',
    `pid ${runtimeDir}/nginx.pid;`,
    `error_log ${runtimeDir}/error.log notice;`,
    'events {',
    '    worker_connections 4096;',
    '}',
    'http {',
    '    access_log off;',
    `    client_body_temp_path ${runtimeDir}/client_body;`,
    `    proxy_temp_path ${runtimeDir}/proxy;`,
    `    fastcgi_temp_path ${runtimeDir}/fastcgi;`,
    `    uwsgi_temp_path ${runtimeDir}/uwsgi;`,
    `    scgi_temp_path ${runtimeDir}/scgi;`,
    `    include ${siteFile};`,
    '}',
    '',
  ].join('\n');
}
