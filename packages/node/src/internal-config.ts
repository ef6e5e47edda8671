/**
 * Where the node's internal (operator) listener binds: `/metrics`, `/v1/stats`, `/v1/owners`.
 * They tell whoever asks how many users a node has and which node owns whom, so they are not on
 * the public port; by default this listener answers on the loopback interface only.
 */
import { INTERNAL_URL_SCHEMES, nodeUrlProblem } from '@chat/cluster';
import type { Env } from '@chat/cluster';
import { ConfigError, EnvReader } from '@chat/cluster';

export interface InternalListenerConfig {
  /** Interface to bind (CHAT_INTERNAL_HOST). */
  readonly host: string;
  /** Port; 0 picks a free one (CHAT_INTERNAL_PORT). */
  readonly port: number;
  /**
   * Base URL the registry and chatctl use to reach it, published in the node's etcd record
   * (CHAT_INTERNAL_URL); `http://<host>:<port>` when unset.
   */
  readonly advertiseUrl: string | undefined;
}

export const defaultInternalListener: InternalListenerConfig = Object.freeze({
  host: '127.0.0.1',
  port: 0,
  advertiseUrl: undefined,
});

export function internalListenerFromEnv(env: Env): InternalListenerConfig {
  const r = new EnvReader(env);
  const d = defaultInternalListener;
  const advertiseUrl = r.optionalUrl('CHAT_INTERNAL_URL', INTERNAL_URL_SCHEMES);
  // Readers of the node record refuse what fails this: the node would be invisible.
  const problem = advertiseUrl && nodeUrlProblem(advertiseUrl, INTERNAL_URL_SCHEMES);
  if (problem) throw new ConfigError(`CHAT_INTERNAL_URL ${problem}`);
  return Object.freeze({
    host: r.string('CHAT_INTERNAL_HOST', d.host),
    port: r.int('CHAT_INTERNAL_PORT', d.port, 0, 65535),
    advertiseUrl: advertiseUrl?.replace(/\/+$/, ''),
  });
}

/** The URL to publish: the configured one, or the bound host and port. */
export function internalUrlOf(config: InternalListenerConfig, boundPort: number): string {
  if (config.advertiseUrl !== undefined) return config.advertiseUrl;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  return `http://${host}:${boundPort}`;
}
