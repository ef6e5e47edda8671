/** CHAT_RPC_TLS_* and CHAT_RPC_ALLOW_PLAINTEXT are checked at startup (issue 16, item 5). */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createLocalCa, writePemPair } from '@chat/testkit';
import { clusterConfigFromEnv } from '../src/cluster/cluster-config';
import { ConfigError } from '@chat/cluster';

const strong = 'Q'.repeat(16) + 'w'.repeat(16) + '-7';
const prod = {
  NODE_ENV: 'production',
  CHAT_ETCD_ENDPOINTS: 'http://e:2379',
  CHAT_CLUSTER_SECRET: strong,
};
let dir: string;
let files: { ca: string; cert: string; key: string; strangerCert: string; strangerKey: string };

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'rpc-tls-config-'));
  const ca = await createLocalCa('cluster CA');
  const node = await writePemPair(dir, 'node', await ca.issue('node-1', ['127.0.0.1']));
  const other = await createLocalCa('other CA');
  const stranger = await writePemPair(dir, 'stranger', await other.issue('x', ['127.0.0.1']));
  files = {
    ca: (await writePemPair(dir, 'ca', ca)).cert,
    cert: node.cert,
    key: node.key,
    strangerCert: stranger.cert,
    strangerKey: stranger.key,
  };
});
afterAll(() => rm(dir, { recursive: true, force: true }));

const tlsEnv = () => ({
  CHAT_RPC_TLS_CA: files.ca,
  CHAT_RPC_TLS_CERT: files.cert,
  CHAT_RPC_TLS_KEY: files.key,
});

function load(env: Record<string, string>) {
  return clusterConfigFromEnv(env, '127.0.0.1')!.config;
}

it('refuses production without RPC TLS, naming the variables and the opt-out', () => {
  expect(() => load(prod)).toThrow(ConfigError);
  expect(() => load(prod)).toThrow(
    /CHAT_RPC_TLS_CA, CHAT_RPC_TLS_CERT, CHAT_RPC_TLS_KEY are required when NODE_ENV=production.*CHAT_RPC_ALLOW_PLAINTEXT=1/,
  );
});

it('runs plain TCP in production only with CHAT_RPC_ALLOW_PLAINTEXT=1, flagged for the warning', () => {
  const config = load({ ...prod, CHAT_RPC_ALLOW_PLAINTEXT: '1' });
  expect(config.rpcTls).toBeUndefined();
  expect(config.rpcPlaintextInProduction).toBe(true);
  expect(() => load({ ...prod, CHAT_RPC_ALLOW_PLAINTEXT: 'yes' })).toThrow(
    'CHAT_RPC_ALLOW_PLAINTEXT must be 1 or 0, got "yes"',
  );
});

it('runs plain TCP outside production without any setting', () => {
  const config = load({ CHAT_ETCD_ENDPOINTS: 'http://e:2379' });
  expect(config.rpcTls).toBeUndefined();
  expect(config.rpcPlaintextInProduction).toBe(false);
});

it('loads the CA, certificate and key, and keeps them out of the loggable config', async () => {
  const { loggableClusterConfig } = await import('../src/cluster/cluster-config');
  const config = load({ ...prod, ...tlsEnv() });
  expect(config.rpcTls?.cert.toString()).toContain('BEGIN CERTIFICATE');
  expect(config.rpcTls?.key.toString()).toContain('PRIVATE KEY');
  expect(JSON.stringify(loggableClusterConfig(config))).not.toContain('PRIVATE KEY');
});

it.each<[string, () => Record<string, string>, RegExp]>([
  [
    'only some of the three',
    () => ({ ...prod, CHAT_RPC_TLS_CA: files.ca }),
    /CHAT_RPC_TLS_CA set but not CHAT_RPC_TLS_CERT, CHAT_RPC_TLS_KEY/,
  ],
  [
    'a missing file',
    () => ({ ...prod, ...tlsEnv(), CHAT_RPC_TLS_CERT: '/nonexistent/node.crt' }),
    /^CHAT_RPC_TLS_CERT: cannot read \/nonexistent\/node.crt/,
  ],
  [
    'a key where the certificate belongs',
    () => ({ ...prod, ...tlsEnv(), CHAT_RPC_TLS_CERT: files.key }),
    /^CHAT_RPC_TLS_CERT: .* is not a PEM certificate/,
  ],
  [
    'a key that does not match the certificate',
    () => ({ ...prod, ...tlsEnv(), CHAT_RPC_TLS_KEY: files.strangerKey }),
    /unusable/,
  ],
  [
    'a certificate from another CA',
    () => ({
      ...prod,
      ...tlsEnv(),
      CHAT_RPC_TLS_CERT: files.strangerCert,
      CHAT_RPC_TLS_KEY: files.strangerKey,
    }),
    /CHAT_RPC_TLS_CERT \(CN=x\) is not issued by CHAT_RPC_TLS_CA \(CN=cluster CA\)/,
  ],
])('refuses %s with an error naming the variable', (_name, env, why) => {
  expect(() => load(env())).toThrow(ConfigError);
  expect(() => load(env())).toThrow(why);
});

it('refuses a file that is not PEM at all', async () => {
  const junk = path.join(dir, 'junk.pem');
  await writeFile(junk, 'not a certificate');
  expect(() => load({ ...prod, ...tlsEnv(), CHAT_RPC_TLS_CA: junk })).toThrow(
    `CHAT_RPC_TLS_CA: ${junk} is not a PEM certificate`,
  );
});
