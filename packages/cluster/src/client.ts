import {
  ConsecutiveBreaker,
  ExponentialBackoff,
  circuitBreaker,
  handleWhen,
  retry,
} from 'cockatiel';
import { Etcd3, isRecoverableError } from 'etcd3';
import type { EtcdSecurity } from './etcd-security';

export interface EtcdClientOptions {
  /** One or more client URLs, e.g. `http://127.0.0.1:2379`. */
  readonly endpoints: string | readonly string[];
  /** Deadline of each unary call, ms (default 5000). Streams (watch, keepalive) have none. */
  readonly callTimeoutMs?: number;
  /** Retries of a failed unary call on recoverable errors (default 1). */
  readonly retries?: number;
  /** How long a host is skipped after 3 consecutive failures, ms (default 1000). */
  readonly circuitOpenMs?: number;
  /** Username/password and TLS (see etcdSecurityFromEnv); none by default. */
  readonly security?: EtcdSecurity;
}

/**
 * An etcd3 client tuned for this cluster: every unary call has a deadline (a paused etcd must
 * not hang a call forever), few retries, and a short circuit breaker so that a restarted etcd
 * is used again within about a second (etcd3's defaults: 3 retries, 5 s breaker, 30 s max
 * watch backoff). The caller owns it and calls `close()`.
 *
 * @example
 * const etcd = createEtcdClient({ endpoints: process.env.CHAT_ETCD_ENDPOINTS!.split(',') });
 */
export function createEtcdClient(options: EtcdClientOptions): Etcd3 {
  const callTimeoutMs = options.callTimeoutMs ?? 5_000;
  const circuitOpenMs = options.circuitOpenMs ?? 1_000;
  const { auth, tls } = options.security ?? {};
  return new Etcd3({
    ...(auth !== undefined ? { auth: { username: auth.username, password: auth.password } } : {}),
    ...(tls !== undefined
      ? {
          credentials: {
            rootCertificate: tls.ca,
            ...(tls.cert !== undefined && tls.key !== undefined
              ? { certChain: tls.cert, privateKey: tls.key }
              : {}),
          },
        }
      : {}),
    hosts: typeof options.endpoints === 'string' ? options.endpoints : [...options.endpoints],
    defaultCallOptions: (context) =>
      context.isStream ? {} : { deadline: Date.now() + callTimeoutMs },
    faultHandling: {
      host: () =>
        circuitBreaker(handleWhen(isRecoverableError), {
          halfOpenAfter: circuitOpenMs,
          breaker: new ConsecutiveBreaker(3),
        }),
      global: retry(handleWhen(isRecoverableError), { maxAttempts: options.retries ?? 1 }),
      // etcd3 calls `.next()` on this for each first delay: pass the zero-delay first state.
      watchBackoff: new ExponentialBackoff({ initialDelay: 100, maxDelay: 2_000 }).next(),
    },
  });
}
