/** Registry settings from the environment, validated with errors that name the variable. */
import { parseEdgeUrl } from '@chat/cluster';

export interface RegistryConfig {
  readonly etcdEndpoints: readonly string[];
  readonly prefix: string;
  readonly host: string;
  readonly port: number;
  readonly devTokenSecret: string | undefined;
  /** Serve the web chat client and the cluster dashboard (CHAT_REGISTRY_WEB=1). */
  readonly web: boolean;
  /** The TLS edge's public https origin (CHAT_EDGE_URL); routes then go through it. */
  readonly edgeOrigin: string | undefined;
  readonly logLevel: string;
}

type Env = Readonly<Record<string, string | undefined>>;

export function registryConfigFromEnv(env: Env): RegistryConfig {
  const endpoints = (env.CHAT_ETCD_ENDPOINTS ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  if (endpoints.length === 0)
    throw new Error('CHAT_ETCD_ENDPOINTS is required: comma-separated etcd client URLs');
  for (const endpoint of endpoints) {
    let protocol: string | undefined;
    try {
      protocol = new URL(endpoint).protocol;
    } catch {
      protocol = undefined;
    }
    if (protocol !== 'http:' && protocol !== 'https:') {
      throw new Error(
        `CHAT_ETCD_ENDPOINTS must be comma-separated http:// or https:// URLs, got ${JSON.stringify(endpoint)}`,
      );
    }
  }
  const rawPort = env.CHAT_REGISTRY_PORT ?? '0';
  const port = Number(rawPort);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(
      `CHAT_REGISTRY_PORT must be an integer from 0 to 65535, got ${JSON.stringify(rawPort)}`,
    );
  }
  const devTokens = env.CHAT_DEV_TOKENS === '1' || env.CHAT_DEV_TOKENS === 'true';
  if (devTokens && env.NODE_ENV === 'production')
    throw new Error('CHAT_DEV_TOKENS must not be on when NODE_ENV=production');
  return Object.freeze({
    etcdEndpoints: Object.freeze(endpoints),
    prefix: env.CHAT_ETCD_PREFIX || '/chat',
    host: env.CHAT_REGISTRY_HOST || '127.0.0.1',
    port,
    devTokenSecret: devTokens ? env.CHAT_AUTH_SECRET || 'dev-secret' : undefined,
    web: env.CHAT_REGISTRY_WEB === '1' || env.CHAT_REGISTRY_WEB === 'true',
    edgeOrigin: env.CHAT_EDGE_URL ? parseEdgeUrl(env.CHAT_EDGE_URL, 'CHAT_EDGE_URL') : undefined,
    logLevel: env.CHAT_LOG_LEVEL || 'info',
  });
}
