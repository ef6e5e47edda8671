/**
 * One bad value per registry setting, with what the error must say: the variable and what it
 * takes. The registry's main prints it and exits 2 (registry/test/config-exit.int.test.ts).
 */
export const BAD_REGISTRY_SETTINGS: readonly {
  readonly env: Record<string, string>;
  readonly says: readonly RegExp[];
}[] = [
  { env: { CHAT_ETCD_ENDPOINTS: '' }, says: [/CHAT_ETCD_ENDPOINTS is required/] },
  {
    env: { CHAT_ETCD_ENDPOINTS: 'etcd:2379' },
    says: [/CHAT_ETCD_ENDPOINTS must be/, /http:\/\/ or https:\/\//],
  },
  { env: { CHAT_ETCD_PREFIX: 'chat' }, says: [/CHAT_ETCD_PREFIX must start with \//] },
  { env: { CHAT_ETCD_USERNAME: 'chat' }, says: [/CHAT_ETCD_USERNAME and CHAT_ETCD_PASSWORD/] },
  { env: { CHAT_REGISTRY_PORT: 'http' }, says: [/CHAT_REGISTRY_PORT/, /from 0 to 65535/] },
  {
    env: { CHAT_REGISTRY_INTERNAL_PORT: '-1' },
    says: [/CHAT_REGISTRY_INTERNAL_PORT/, /from 0 to 65535/],
  },
  { env: { CHAT_REGISTRY_WEB: 'on' }, says: [/CHAT_REGISTRY_WEB/, /one of 1, true, 0, false/] },
  { env: { CHAT_DEV_TOKENS: 'yes' }, says: [/CHAT_DEV_TOKENS/, /one of 1, true, 0, false/] },
  {
    env: { CHAT_DEV_TOKENS: '1', NODE_ENV: 'production' },
    says: [/CHAT_DEV_TOKENS must not be on when NODE_ENV=production/],
  },
  { env: { CHAT_EDGE_URL: 'http://edge.example' }, says: [/CHAT_EDGE_URL must be an https/] },
  {
    env: { CHAT_OPERATOR_TOKEN: 'short', NODE_ENV: 'production' },
    says: [/CHAT_OPERATOR_TOKEN must be at least 32 characters/],
  },
  {
    env: { CHAT_DASHBOARD_STREAMS_PER_ADDRESS: 'many' },
    says: [/CHAT_DASHBOARD_STREAMS_PER_ADDRESS/, /from 1 to 1000/],
  },
  { env: { CHAT_TRUSTED_PROXIES: 'not-an-address' }, says: [/CHAT_TRUSTED_PROXIES/] },
  {
    env: { CHAT_PUSH_WEBPUSH_VAPID_PUBLIC_KEY: 'not a key' },
    says: [/CHAT_PUSH_WEBPUSH_VAPID_PUBLIC_KEY must be an uncompressed P-256 public key/],
  },
  {
    env: { CHAT_LOG_LEVEL: 'loud' },
    says: [/CHAT_LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent/],
  },
];
