/**
 * The edge configuration rendered from membership: one exact route per node to its own URL,
 * everything else to the registry, and node records that could inject nginx directives left out.
 */
import { renderEdgeConfig, renderStandaloneNginx, upstreamOf } from '../src/nginx-config';

const site = {
  listen: '127.0.0.1:8443',
  certFile: '/tmp/tls/edge.crt',
  keyFile: '/tmp/tls/edge.key',
  registryUrl: 'http://127.0.0.1:8080',
};

it('routes each node by id to its own WebSocket URL and the rest to the registry', () => {
  const { text, skipped } = renderEdgeConfig(site, [
    { nodeId: 'node-2', wsUrl: 'ws://127.0.0.1:7002/ws' },
    { nodeId: 'node-1', wsUrl: 'ws://127.0.0.1:7001/ws' },
  ]);
  expect(skipped).toEqual([]);
  expect(text).toContain('listen 127.0.0.1:8443 ssl;');
  expect(text).toContain('ssl_certificate /tmp/tls/edge.crt;');
  const routes = [...text.matchAll(/location = (\S+) \{\n\s+proxy_pass (\S+);/g)].map((m) => [
    m[1],
    m[2],
  ]);
  // Sorted by id: the same membership always renders the same text.
  expect(routes).toEqual([
    ['/n/node-1/ws', 'http://127.0.0.1:7001/ws'],
    ['/n/node-2/ws', 'http://127.0.0.1:7002/ws'],
  ]);
  expect(text).toMatch(/location \/ \{\n\s+proxy_pass http:\/\/127\.0\.0\.1:8080;/);
  expect(text).toMatch(/location \/n\/ \{\n\s+return 404;/);
});

it('keeps tokens (in the query string) out of access logs of node routes', () => {
  const { text } = renderEdgeConfig(site, [{ nodeId: 'n1', wsUrl: 'ws://10.0.0.5:7001/ws' }]);
  const route = /location = \/n\/n1\/ws \{[^}]*\}/.exec(text)![0];
  expect(route).toContain('access_log off;');
  expect(route).toContain('proxy_set_header Upgrade $http_upgrade;');
});

it.each([
  ['ws://evil;}server{listen 80;/ws', 'wsUrl'],
  ['ws://10.0.0.5:7001/ws;return 200', 'wsUrl path has unsafe characters'],
  ['javascript:alert(1)', 'wsUrl scheme javascript:'],
  ['ws://user:pw@10.0.0.5:7001/ws', 'wsUrl carries more than host, port and path'],
  ['ws://10.0.0.5:7001/ws?x=1', 'wsUrl carries more than host, port and path'],
])('leaves out a node record with wsUrl %s', (wsUrl, reason) => {
  const { text, skipped } = renderEdgeConfig(site, [{ nodeId: 'bad', wsUrl }]);
  expect(skipped).toEqual([{ nodeId: 'bad', reason: expect.stringContaining(reason) }]);
  expect(text).not.toContain('/n/bad/ws');
});

it('maps wss node URLs to https upstreams', () => {
  expect(upstreamOf({ nodeId: 'n', wsUrl: 'wss://[::1]:7001/ws' })).toEqual({
    url: 'https://[::1]:7001/ws',
  });
});

it('refuses site settings nginx would misread', () => {
  expect(() => renderEdgeConfig({ ...site, listen: '443; evil' }, [])).toThrow('host:port');
  expect(() => renderEdgeConfig({ ...site, certFile: '/a b.crt' }, [])).toThrow('certificate');
  expect(() => renderStandaloneNginx('/tmp/x;y.conf', '/tmp/run')).toThrow('cannot take');
});
