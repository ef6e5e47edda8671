/** Registry settings from the environment, validated with errors that name the variable. */
import type { EtcdSecurity } from '@chat/cluster';
import {
  etcdEndpointsFromEnv,
  etcdSecurityFromEnv,
  parseEdgeUrl,
  parseTrustedProxies,
} from '@chat/cluster';

export interface RegistryConfig {
  readonly etcdEndpoints: readonly string[];
  /** etcd username/password and TLS (CHAT_ETCD_USERNAME, CHAT_ETCD_TLS_CA, ...). */
  readonly etcdSecurity: EtcdSecurity;
  readonly prefix: string;
  readonly host: string;
  readonly port: number;
  readonly devTokenSecret: string | undefined;
  /** Serve the web chat client and the cluster dashboard (CHAT_REGISTRY_WEB=1). */
  readonly web: boolean;
  /** The TLS edge's public https origin (CHAT_EDGE_URL); routes then go through it. */
  readonly edgeOrigin: string | undefined;
  /** The internal listener (`/metrics`): CHAT_REGISTRY_INTERNAL_HOST, default loopback. */
  readonly internalHost: string;
  /** CHAT_REGISTRY_INTERNAL_PORT; 0 picks a free one. */
  readonly internalPort: number;
  /** Guards the dashboard (CHAT_OPERATOR_TOKEN); required with the web pages in production. */
  readonly operatorToken: string | undefined;
  /** Dashboard streams one address may hold open (CHAT_DASHBOARD_STREAMS_PER_ADDRESS). */
  readonly dashboardStreamsPerAddress: number;
  /**
   * Proxies (the TLS edge) whose X-Forwarded-For names the client address that dashboard
   * streams are counted under (CHAT_TRUSTED_PROXIES, as on the nodes).
   */
  readonly trustedProxies: readonly string[];
  readonly logLevel: string;
}

/** Shortest operator token accepted in production, as a random 256-bit key in base64. */
const MIN_OPERATOR_TOKEN_CHARS = 32;

function intFrom(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new Error(`${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(raw)}`);
  }
  return value;
}

function operatorTokenFrom(env: Env, web: boolean): string | undefined {
  const token = env.CHAT_OPERATOR_TOKEN || undefined;
  if (env.NODE_ENV !== 'production') return token;
  if (token === undefined && web) {
    throw new Error(
      'CHAT_OPERATOR_TOKEN is required when CHAT_REGISTRY_WEB is on and NODE_ENV=production: the dashboard would be open to anyone (openssl rand -base64 32)',
    );
  }
  if (token !== undefined && token.length < MIN_OPERATOR_TOKEN_CHARS) {
    throw new Error(
      `CHAT_OPERATOR_TOKEN must be at least ${MIN_OPERATOR_TOKEN_CHARS} characters when NODE_ENV=production (openssl rand -base64 32)`,
    );
  }
  return token;
}

type Env = Readonly<Record<string, string | undefined>>;

function trustedProxiesFrom(env: Env): readonly string[] {
  const entries = (env.CHAT_TRUSTED_PROXIES ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  parseTrustedProxies('CHAT_TRUSTED_PROXIES', entries); // throws, naming the variable
  return Object.freeze(entries);
}

export function registryConfigFromEnv(env: Env): RegistryConfig {
  const endpoints = etcdEndpointsFromEnv(env);
  const rawPort = env.CHAT_REGISTRY_PORT ?? '0';
  const port = Number(rawPort);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(
      `CHAT_REGISTRY_PORT must be an integer from 0 to 65535, got ${JSON.stringify(rawPort)}`,
    );
  }
  const web = env.CHAT_REGISTRY_WEB === '1' || env.CHAT_REGISTRY_WEB === 'true';
  const devTokens = env.CHAT_DEV_TOKENS === '1' || env.CHAT_DEV_TOKENS === 'true';
  if (devTokens && env.NODE_ENV === 'production')
    throw new Error('CHAT_DEV_TOKENS must not be on when NODE_ENV=production');
  return Object.freeze({
    etcdEndpoints: Object.freeze(endpoints),
    etcdSecurity: etcdSecurityFromEnv(env, endpoints),
    prefix: env.CHAT_ETCD_PREFIX || '/chat',
    host: env.CHAT_REGISTRY_HOST || '127.0.0.1',
    port,
    devTokenSecret: devTokens ? env.CHAT_AUTH_SECRET || 'dev-secret' : undefined,
    web,
    edgeOrigin: env.CHAT_EDGE_URL ? parseEdgeUrl(env.CHAT_EDGE_URL, 'CHAT_EDGE_URL') : undefined,
    internalHost: env.CHAT_REGISTRY_INTERNAL_HOST || '127.0.0.1',
    internalPort: intFrom(env, 'CHAT_REGISTRY_INTERNAL_PORT', 0, 0, 65535),
    operatorToken: operatorTokenFrom(env, web),
    dashboardStreamsPerAddress: intFrom(env, 'CHAT_DASHBOARD_STREAMS_PER_ADDRESS', 4, 1, 1000),
    trustedProxies: trustedProxiesFrom(env),
    logLevel: env.CHAT_LOG_LEVEL || 'info',
  });
}
