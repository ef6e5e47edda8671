/**
 * How a process proves itself to etcd and checks etcd's identity: username and password (etcd's
 * role-based auth) and TLS (a CA to trust, and optionally a client certificate for etcd's
 * `--client-cert-auth`). Read from the environment in one place for the nodes, the registry and
 * chatctl:
 *
 * - `CHAT_ETCD_USERNAME` / `CHAT_ETCD_PASSWORD`: both or neither;
 * - `CHAT_ETCD_TLS_CA`: PEM file of the CA that signed etcd's certificate;
 * - `CHAT_ETCD_TLS_CERT` / `CHAT_ETCD_TLS_KEY`: PEM files of this process's client certificate
 *   and key, both or neither (they need `CHAT_ETCD_TLS_CA`).
 *
 * With any TLS setting every endpoint must be `https://`: a half-secured configuration stops the
 * process instead of talking plaintext to some endpoints. (`https://` without them trusts the
 * system's CAs.)
 */
import { readFileSync } from 'node:fs';
import { ConfigError, EnvReader } from './env';
import type { Env } from './env';

export interface EtcdSecurity {
  readonly auth?: { readonly username: string; readonly password: string };
  readonly tls?: {
    readonly ca: Buffer;
    readonly cert?: Buffer;
    readonly key?: Buffer;
  };
}

/** A bad etcd security setting; the message names the variable. */
export class InvalidEtcdSettings extends ConfigError {
  override readonly name = 'InvalidEtcdSettings';
}

function pem(r: EnvReader, name: string, readFile: (path: string) => Buffer): Buffer | undefined {
  const path = r.optionalString(name);
  if (path === undefined) return undefined;
  let text: Buffer;
  try {
    text = readFile(path);
  } catch (err) {
    throw new InvalidEtcdSettings(
      `${name}: cannot read ${JSON.stringify(path)} (${(err as NodeJS.ErrnoException).code ?? String(err)})`,
    );
  }
  if (!text.toString('utf8').includes('-----BEGIN ')) {
    throw new InvalidEtcdSettings(`${name}: ${JSON.stringify(path)} is not a PEM file`);
  }
  return text;
}

/**
 * CHAT_ETCD_ENDPOINTS: required, comma-separated `http://` or `https://` URLs (the registry,
 * the edge sync). The node reads it by the same rule (EnvReader.urlList) but as optional: unset,
 * it runs alone without etcd.
 */
export function etcdEndpointsFromEnv(env: Env): string[] {
  // The nodes' rule (EnvReader.urlList), so that one value is accepted or refused everywhere.
  const endpoints = new EnvReader(env).urlList('CHAT_ETCD_ENDPOINTS', ['http:', 'https:']);
  if (endpoints.length === 0)
    throw new InvalidEtcdSettings(
      'CHAT_ETCD_ENDPOINTS is required: comma-separated etcd client URLs',
    );
  return endpoints;
}

/**
 * The etcd security settings of `env`, files read with `readFile`; checked against the
 * `endpoints` they will be used with.
 *
 * @example
 * const security = etcdSecurityFromEnv(process.env, endpoints);
 * const etcd = createEtcdClient({ endpoints, security });
 */
export function etcdSecurityFromEnv(
  env: Env,
  endpoints: readonly string[],
  readFile: (path: string) => Buffer = readFileSync,
): EtcdSecurity {
  const r = new EnvReader(env);
  const username = r.optionalString('CHAT_ETCD_USERNAME');
  const password = r.optionalString('CHAT_ETCD_PASSWORD');
  if ((username === undefined) !== (password === undefined)) {
    throw new InvalidEtcdSettings(
      'CHAT_ETCD_USERNAME and CHAT_ETCD_PASSWORD go together: set both or neither',
    );
  }
  const ca = pem(r, 'CHAT_ETCD_TLS_CA', readFile);
  const cert = pem(r, 'CHAT_ETCD_TLS_CERT', readFile);
  const key = pem(r, 'CHAT_ETCD_TLS_KEY', readFile);
  if ((cert === undefined) !== (key === undefined)) {
    throw new InvalidEtcdSettings(
      'CHAT_ETCD_TLS_CERT and CHAT_ETCD_TLS_KEY go together: set both or neither',
    );
  }
  if (cert !== undefined && ca === undefined) {
    throw new InvalidEtcdSettings('CHAT_ETCD_TLS_CERT needs CHAT_ETCD_TLS_CA (the CA etcd uses)');
  }
  const plaintext = endpoints.find((e) => !e.startsWith('https://'));
  if (ca !== undefined && plaintext !== undefined) {
    throw new InvalidEtcdSettings(
      `CHAT_ETCD_ENDPOINTS must be https:// URLs when CHAT_ETCD_TLS_CA is set, got ${JSON.stringify(plaintext)}`,
    );
  }
  return Object.freeze({
    ...(username !== undefined && password !== undefined
      ? { auth: Object.freeze({ username, password }) }
      : {}),
    ...(ca !== undefined
      ? { tls: Object.freeze({ ca, ...(cert && key ? { cert, key } : {}) }) }
      : {}),
  });
}

/** What may be logged about the settings: who, and whether TLS is on; no password, no keys. */
export function describeEtcdSecurity(security: EtcdSecurity): Record<string, unknown> {
  return {
    username: security.auth?.username ?? null,
    tls: security.tls === undefined ? false : security.tls.cert ? 'client-cert' : 'server-only',
  };
}
