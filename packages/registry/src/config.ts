/** Registry settings from the environment, validated with errors that name the variable. */
import type { Env, EtcdSecurity, LogLevel } from '@chat/cluster';
import {
  ConfigError,
  EnvReader,
  etcdEndpointsFromEnv,
  edgeOriginFrom,
  etcdSecurityFromEnv,
  trustedProxiesFrom,
} from '@chat/cluster';
import { isVapidPublicKey } from '@chat/protocol';

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
  /**
   * The nodes' VAPID public key (CHAT_PUSH_WEBPUSH_VAPID_PUBLIC_KEY), handed to the chat page
   * for its Web Push subscription; unset when the nodes send no Web Push.
   */
  readonly webPushPublicKey: string | undefined;
  readonly logLevel: LogLevel;
}

/** Shortest operator token accepted in production, as a random 256-bit key in base64. */
const MIN_OPERATOR_TOKEN_CHARS = 32;

function operatorTokenFrom(r: EnvReader, production: boolean, web: boolean): string | undefined {
  const token = r.optionalString('CHAT_OPERATOR_TOKEN');
  if (!production) return token;
  if (token === undefined && web) {
    throw new ConfigError(
      'CHAT_OPERATOR_TOKEN is required when CHAT_REGISTRY_WEB is on and NODE_ENV=production: the dashboard would be open to anyone (openssl rand -base64 32)',
    );
  }
  if (token !== undefined && token.length < MIN_OPERATOR_TOKEN_CHARS) {
    throw new ConfigError(
      `CHAT_OPERATOR_TOKEN must be at least ${MIN_OPERATOR_TOKEN_CHARS} characters when NODE_ENV=production (openssl rand -base64 32)`,
    );
  }
  return token;
}

function webPushPublicKeyFrom(r: EnvReader): string | undefined {
  const key = r.optionalString('CHAT_PUSH_WEBPUSH_VAPID_PUBLIC_KEY')?.trim();
  if (key === undefined || key === '') return undefined;
  if (!isVapidPublicKey(key)) {
    throw new ConfigError(
      "CHAT_PUSH_WEBPUSH_VAPID_PUBLIC_KEY must be an uncompressed P-256 public key in base64url (65 bytes), the nodes' key",
    );
  }
  return key;
}

/** The dev token endpoint's signing secret, when CHAT_DEV_TOKENS is on (never in production). */
function devTokenSecretFrom(r: EnvReader, production: boolean): string | undefined {
  if (!r.flag('CHAT_DEV_TOKENS', false)) return undefined;
  if (production) throw new ConfigError('CHAT_DEV_TOKENS must not be on when NODE_ENV=production');
  return r.string('CHAT_AUTH_SECRET', 'dev-secret');
}

/**
 * The registry's settings; throws a ConfigError naming the variable (and what it takes) for a
 * bad one, with the same rules as the nodes for the settings both read.
 */
export function registryConfigFromEnv(env: Env): RegistryConfig {
  const r = new EnvReader(env);
  const endpoints = etcdEndpointsFromEnv(env);
  const production = r.string('NODE_ENV', 'development') === 'production';
  const web = r.flag('CHAT_REGISTRY_WEB', false);
  return Object.freeze({
    etcdEndpoints: Object.freeze(endpoints),
    etcdSecurity: etcdSecurityFromEnv(env, endpoints),
    prefix: r.etcdPrefix(),
    host: r.string('CHAT_REGISTRY_HOST', '127.0.0.1'),
    port: r.int('CHAT_REGISTRY_PORT', 0, 0, 65535),
    devTokenSecret: devTokenSecretFrom(r, production),
    web,
    edgeOrigin: edgeOriginFrom(r),
    internalHost: r.string('CHAT_REGISTRY_INTERNAL_HOST', '127.0.0.1'),
    internalPort: r.int('CHAT_REGISTRY_INTERNAL_PORT', 0, 0, 65535),
    operatorToken: operatorTokenFrom(r, production, web),
    dashboardStreamsPerAddress: r.int('CHAT_DASHBOARD_STREAMS_PER_ADDRESS', 4, 1, 1000),
    trustedProxies: trustedProxiesFrom(r),
    webPushPublicKey: webPushPublicKeyFrom(r),
    logLevel: r.logLevel(),
  });
}
