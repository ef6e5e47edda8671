/** Settings of the edge sync process (`main.ts`), validated with errors that name the variable. */
import { etcdEndpointsFromEnv } from '@chat/cluster';
import type { EdgeSite } from './nginx-config';

export interface EdgeConfig {
  readonly etcdEndpoints: readonly string[];
  readonly prefix: string;
  readonly site: EdgeSite;
  /** The file nginx includes in its `http` context, rewritten on membership changes. */
  readonly confFile: string;
  /** Shell command that makes nginx load the file. */
  readonly reloadCommand: string;
  readonly logLevel: string;
}

type Env = Readonly<Record<string, string | undefined>>;

function httpUrl(name: string, raw: string): string {
  let protocol: string | undefined;
  try {
    protocol = new URL(raw).protocol;
  } catch {
    protocol = undefined;
  }
  if (protocol !== 'http:' && protocol !== 'https:')
    throw new Error(`${name} must be an http:// or https:// URL, got ${JSON.stringify(raw)}`);
  return raw;
}

function required(env: Env, name: string, what: string): string {
  const value = env[name];
  if (value === undefined || value === '') throw new Error(`${name} is required: ${what}`);
  return value;
}

export function edgeConfigFromEnv(env: Env): EdgeConfig {
  const endpoints = etcdEndpointsFromEnv(env);
  const listen = env.CHAT_EDGE_LISTEN || '0.0.0.0:443';
  if (!/^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]):\d{1,5}$/.test(listen))
    throw new Error(`CHAT_EDGE_LISTEN must be host:port, got ${JSON.stringify(listen)}`);
  return Object.freeze({
    etcdEndpoints: Object.freeze(endpoints),
    prefix: env.CHAT_ETCD_PREFIX || '/chat',
    site: Object.freeze({
      listen,
      certFile: required(env, 'CHAT_EDGE_CERT', "PEM file of the edge's certificate chain"),
      keyFile: required(env, 'CHAT_EDGE_KEY', "PEM file of the edge's private key"),
      registryUrl: httpUrl(
        'CHAT_EDGE_REGISTRY_URL',
        required(env, 'CHAT_EDGE_REGISTRY_URL', 'the registry base URL, e.g. http://10.0.0.2:8080'),
      ),
    }),
    confFile: env.CHAT_EDGE_CONF || '/etc/nginx/conf.d/chat-edge.conf',
    reloadCommand: env.CHAT_EDGE_RELOAD || 'nginx -s reload',
    logLevel: env.CHAT_LOG_LEVEL || 'info',
  });
}
