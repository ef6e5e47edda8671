import { describeEtcdSecurity, etcdSecurityFromEnv, InvalidEtcdSettings } from '../src';

const PEM = Buffer.from('-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
const files: Record<string, Buffer> = { '/ca.pem': PEM, '/c.pem': PEM, '/k.pem': PEM };
const readFile = (path: string): Buffer => {
  const file = files[path];
  if (file === undefined) throw Object.assign(new Error('no such file'), { code: 'ENOENT' });
  return file;
};
const HTTPS = ['https://127.0.0.1:2379'];
const HTTP = ['http://127.0.0.1:2379'];

describe('etcdSecurityFromEnv', () => {
  it('is empty without settings, over http', () => {
    expect(etcdSecurityFromEnv({}, HTTP, readFile)).toEqual({});
  });

  it('reads a user, a CA and a client certificate', () => {
    const security = etcdSecurityFromEnv(
      {
        CHAT_ETCD_USERNAME: 'chat',
        CHAT_ETCD_PASSWORD: 'pw',
        CHAT_ETCD_TLS_CA: '/ca.pem',
        CHAT_ETCD_TLS_CERT: '/c.pem',
        CHAT_ETCD_TLS_KEY: '/k.pem',
      },
      HTTPS,
      readFile,
    );
    expect(security).toEqual({
      auth: { username: 'chat', password: 'pw' },
      tls: { ca: PEM, cert: PEM, key: PEM },
    });
    expect(describeEtcdSecurity(security)).toEqual({ username: 'chat', tls: 'client-cert' });
    expect(JSON.stringify(describeEtcdSecurity(security))).not.toContain('pw');
  });

  it.each([
    [{ CHAT_ETCD_USERNAME: 'chat' }, HTTP, 'CHAT_ETCD_USERNAME and CHAT_ETCD_PASSWORD go together'],
    [{ CHAT_ETCD_PASSWORD: 'pw' }, HTTP, 'CHAT_ETCD_USERNAME and CHAT_ETCD_PASSWORD go together'],
    [
      { CHAT_ETCD_TLS_CA: '/ca.pem', CHAT_ETCD_TLS_CERT: '/c.pem' },
      HTTPS,
      'CHAT_ETCD_TLS_CERT and CHAT_ETCD_TLS_KEY go together',
    ],
    [
      { CHAT_ETCD_TLS_CERT: '/c.pem', CHAT_ETCD_TLS_KEY: '/k.pem' },
      HTTP,
      'CHAT_ETCD_TLS_CERT needs CHAT_ETCD_TLS_CA',
    ],
    [
      { CHAT_ETCD_TLS_CA: '/missing.pem' },
      HTTPS,
      'CHAT_ETCD_TLS_CA: cannot read "/missing.pem" (ENOENT)',
    ],
    [{ CHAT_ETCD_TLS_CA: '/ca.pem' }, HTTP, 'CHAT_ETCD_ENDPOINTS must be https:// URLs'],
  ])('refuses %j with %j', (env, endpoints, message) => {
    expect(() => etcdSecurityFromEnv(env, endpoints, readFile)).toThrow(InvalidEtcdSettings);
    expect(() => etcdSecurityFromEnv(env, endpoints, readFile)).toThrow(message);
  });

  it('refuses a file that is not PEM', () => {
    files['/junk'] = Buffer.from('junk');
    expect(() => etcdSecurityFromEnv({ CHAT_ETCD_TLS_CA: '/junk' }, HTTPS, readFile)).toThrow(
      'CHAT_ETCD_TLS_CA: "/junk" is not a PEM file',
    );
  });
});
