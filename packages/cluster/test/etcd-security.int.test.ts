/**
 * etcd with TLS (client certificates) and role-based auth, as `--secure` runs it: the chat
 * user reads and writes the cluster, and nobody without its password can put a node into the
 * ring, whatever else they hold.
 */
import { createEtcdClient, etcdSecurityFromEnv, RingConfigStore } from '../src';
import type { EtcdSecurity } from '../src';
import { createLocalTls, startSecureEtcd } from '@chat/testkit';
import type { LocalTls, SecureEtcd } from '@chat/testkit';

const PREFIX = '/chat';
let tls: LocalTls;
let secure: SecureEtcd;

beforeAll(async () => {
  tls = await createLocalTls();
  secure = await startSecureEtcd(tls, PREFIX);
});
afterAll(async () => {
  await secure?.etcd.close();
  await tls?.close();
});

/** Tries to write a ring naming an attacker's node with the given settings; the error or 'ok'. */
async function writeRing(security: EtcdSecurity | undefined, endpoint = secure.etcd.endpoint) {
  const etcd = createEtcdClient({
    endpoints: endpoint,
    callTimeoutMs: 3_000,
    retries: 0,
    ...(security ? { security } : {}),
  });
  try {
    const store = new RingConfigStore({ etcd, prefix: PREFIX });
    const ring = await store.readRing();
    const members = [{ id: 'intruder', weight: 1 }];
    await store.casRing(ring?.modRevision ?? 0, { epoch: (ring?.config.epoch ?? 0) + 1, members });
    return 'ok';
  } catch (err) {
    return (err as Error).message;
  } finally {
    etcd.close();
  }
}

test('the chat user, from the env the processes get, reads and writes the cluster prefix', async () => {
  const security = etcdSecurityFromEnv(secure.env, [secure.etcd.endpoint]);
  expect(await writeRing(security)).toBe('ok');
});

test('without the password, with a wrong one, without a client certificate, or over plaintext, the ring cannot be written', async () => {
  const { tls: clientTls } = secure.security;
  const attempts: Record<string, EtcdSecurity | undefined> = {
    'certificate but no password': { tls: clientTls! },
    'wrong password': { tls: clientTls!, auth: { username: 'chat', password: 'guess' } },
    'password but no client certificate': {
      tls: { ca: clientTls!.ca },
      auth: secure.security.auth!,
    },
  };
  for (const [what, security] of Object.entries(attempts)) {
    expect({ what, result: await writeRing(security) }).not.toEqual({ what, result: 'ok' });
  }
  const plaintext = secure.etcd.endpoint.replace('https://', 'http://');
  expect(await writeRing(undefined, plaintext)).not.toBe('ok');
  // The ring is what the chat user wrote, not the intruder's.
  const reader = createEtcdClient({ endpoints: secure.etcd.endpoint, security: secure.security });
  try {
    const ring = await new RingConfigStore({ etcd: reader, prefix: PREFIX }).readRing();
    expect(ring?.config.epoch).toBe(1);
  } finally {
    reader.close();
  }
});
