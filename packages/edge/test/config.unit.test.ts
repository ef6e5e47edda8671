import { edgeConfigFromEnv } from '../src/config';

const env = {
  CHAT_ETCD_ENDPOINTS: 'http://127.0.0.1:2379',
  CHAT_EDGE_CERT: '/etc/chat/edge.crt',
  CHAT_EDGE_KEY: '/etc/chat/edge.key',
  CHAT_EDGE_REGISTRY_URL: 'http://10.0.0.2:8080',
};

it('reads the edge settings with defaults', () => {
  const config = edgeConfigFromEnv(env);
  expect(config.site).toEqual({
    listen: '0.0.0.0:443',
    certFile: '/etc/chat/edge.crt',
    keyFile: '/etc/chat/edge.key',
    registryUrl: 'http://10.0.0.2:8080',
  });
  expect(config.confFile).toBe('/etc/nginx/conf.d/chat-edge.conf');
  expect(config.reloadCommand).toBe('nginx -s reload');
});

it.each([
  [{ CHAT_EDGE_CERT: '' }, 'CHAT_EDGE_CERT is required'],
  [
    { CHAT_EDGE_REGISTRY_URL: 'ftp://x' },
    'CHAT_EDGE_REGISTRY_URL must be an http:// or https:// URL',
  ],
  [{ CHAT_EDGE_LISTEN: '443' }, 'CHAT_EDGE_LISTEN must be host:port'],
  [{ CHAT_ETCD_ENDPOINTS: '' }, 'CHAT_ETCD_ENDPOINTS is required'],
])('refuses %j', (change, message) => {
  expect(() => edgeConfigFromEnv({ ...env, ...change })).toThrow(message);
});
