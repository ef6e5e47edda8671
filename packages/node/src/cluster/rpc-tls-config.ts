/**
 * RPC TLS settings: the cluster CA, this node's certificate and its key, as PEM files named by
 * CHAT_RPC_TLS_CA / CHAT_RPC_TLS_CERT / CHAT_RPC_TLS_KEY. All three or none. The files are
 * read and checked at startup (readable, PEM, the key matches the certificate, the
 * certificate is issued by the CA and currently valid), so that a mistake stops the node with
 * the variable's name rather than failing every peer connection later.
 *
 * Production without them is refused unless CHAT_RPC_ALLOW_PLAINTEXT=1 says the network below
 * is trusted or encrypted by other means (a service mesh with mTLS, WireGuard): RPC carries
 * every forwarded message, and an explicit opt-out keeps that decision visible.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import type { RpcTls } from '@chat/rpc';
import { ConfigError } from '@chat/cluster';
import type { EnvReader } from '@chat/cluster';

const VARS = ['CHAT_RPC_TLS_CA', 'CHAT_RPC_TLS_CERT', 'CHAT_RPC_TLS_KEY'] as const;
export const ALLOW_PLAINTEXT_VAR = 'CHAT_RPC_ALLOW_PLAINTEXT';

export interface RpcTransportConfig {
  /** Mutual TLS material; undefined: plain TCP. */
  readonly tls: RpcTls | undefined;
  /** Plain TCP in production, allowed by CHAT_RPC_ALLOW_PLAINTEXT=1 (logged loudly). */
  readonly plaintextInProduction: boolean;
}

export function rpcTransportFromEnv(
  r: EnvReader,
  production: boolean,
  readFile: (path: string) => Buffer = readFileSync,
): RpcTransportConfig {
  const allowRaw = r.optionalString(ALLOW_PLAINTEXT_VAR);
  if (allowRaw !== undefined && allowRaw !== '1' && allowRaw !== '0') {
    throw new ConfigError(`${ALLOW_PLAINTEXT_VAR} must be 1 or 0, got ${JSON.stringify(allowRaw)}`);
  }
  const paths = VARS.map((name) => r.optionalString(name));
  const given = VARS.filter((_, i) => paths[i] !== undefined);
  if (given.length === 0) {
    if (production && allowRaw !== '1') {
      throw new ConfigError(
        `${VARS.join(', ')} are required when NODE_ENV=production (mutual TLS between nodes); ` +
          `set ${ALLOW_PLAINTEXT_VAR}=1 only if the network between nodes is encrypted otherwise`,
      );
    }
    return { tls: undefined, plaintextInProduction: production };
  }
  if (given.length < VARS.length) {
    const missing = VARS.filter((name) => !given.includes(name));
    throw new ConfigError(`${given.join(', ')} set but not ${missing.join(', ')}: set all three`);
  }
  const [ca, cert, key] = VARS.map((name, i) => readPem(name, paths[i]!, readFile)) as [
    Buffer,
    Buffer,
    Buffer,
  ];
  checkPair(ca, cert, key);
  return { tls: Object.freeze({ ca, cert, key }), plaintextInProduction: false };
}

function readPem(name: string, path: string, readFile: (path: string) => Buffer): Buffer {
  let content: Buffer;
  try {
    content = readFile(path);
  } catch (err) {
    throw new ConfigError(`${name}: cannot read ${path}: ${(err as Error).message}`);
  }
  const expected =
    name === 'CHAT_RPC_TLS_KEY'
      ? /-----BEGIN [A-Z ]*PRIVATE KEY-----/
      : /-----BEGIN CERTIFICATE-----/;
  if (!expected.test(content.toString('latin1'))) {
    throw new ConfigError(
      `${name}: ${path} is not a PEM ${name === 'CHAT_RPC_TLS_KEY' ? 'private key' : 'certificate'}`,
    );
  }
  return content;
}

function checkPair(ca: Buffer, cert: Buffer, key: Buffer): void {
  try {
    createSecureContext({ ca, cert, key });
  } catch (err) {
    throw new ConfigError(
      `CHAT_RPC_TLS_CERT / CHAT_RPC_TLS_KEY / CHAT_RPC_TLS_CA unusable: ${(err as Error).message}`,
    );
  }
  const caCert = new X509Certificate(ca);
  const nodeCert = new X509Certificate(cert);
  if (!nodeCert.checkIssued(caCert) || !nodeCert.verify(caCert.publicKey)) {
    throw new ConfigError(
      `CHAT_RPC_TLS_CERT (${nodeCert.subject}) is not issued by CHAT_RPC_TLS_CA (${caCert.subject})`,
    );
  }
  const now = Date.now();
  if (now < Date.parse(nodeCert.validFrom) || now > Date.parse(nodeCert.validTo)) {
    throw new ConfigError(
      `CHAT_RPC_TLS_CERT is not valid now (valid from ${nodeCert.validFrom} to ${nodeCert.validTo})`,
    );
  }
}
