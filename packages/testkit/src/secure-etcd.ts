/**
 * An etcd that wants proof from every client, as `npm start -- --secure` and the etcd security
 * tests run it: TLS with client certificates from the local CA (`--client-cert-auth`), and
 * etcd's role-based auth with a `root` user and a `chat` user that may read and write the
 * cluster's prefix only. Processes get the CHAT_ETCD_* variables of the chat user.
 *
 * The client certificate's common name is `chat-client`, which is no etcd user on purpose:
 * etcd takes a certificate's CN as the user when a request carries no token, so a client with
 * the certificate but without the password is anonymous and may do nothing.
 */
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { EtcdSecurity } from '@chat/cluster';
import { createEtcdClient } from '@chat/cluster';
import type { EtcdHandle } from './etcd';
import { startEtcd } from './etcd';
import type { LocalTls } from './local-tls';

export const ETCD_CHAT_USER = 'chat';

export interface SecureEtcd {
  readonly etcd: EtcdHandle;
  /** CHAT_ETCD_ENDPOINTS and the chat user's credentials and TLS files, for processes. */
  readonly env: Readonly<Record<string, string>>;
  /** The same for clients in this process. */
  readonly security: EtcdSecurity;
  /** The root user's (user and role administration). */
  readonly rootSecurity: EtcdSecurity;
}

/** @example const { etcd, env } = await startSecureEtcd(tls, '/chat'); // nodes get `env` */
export async function startSecureEtcd(tls: LocalTls, prefix: string): Promise<SecureEtcd> {
  const server = await tls.issueFiles('etcd-server');
  const client = await tls.issueFiles('chat-client');
  const etcd = await startEtcd({
    tls: { caFile: tls.caFile, certFile: server.cert, keyFile: server.key },
  });
  try {
    const ca = Buffer.from(tls.ca.cert);
    const clientTls = {
      ca,
      cert: await readFile(client.cert),
      key: await readFile(client.key),
    };
    const password = randomBytes(18).toString('base64url');
    const rootPassword = randomBytes(18).toString('base64url');
    const security: EtcdSecurity = {
      auth: { username: ETCD_CHAT_USER, password },
      tls: clientTls,
    };
    const rootSecurity: EtcdSecurity = {
      auth: { username: 'root', password: rootPassword },
      tls: clientTls,
    };
    await enableAuth(etcd.endpoint, { tls: clientTls }, rootPassword, password, prefix);
    return {
      etcd,
      security,
      rootSecurity,
      env: {
        CHAT_ETCD_ENDPOINTS: etcd.endpoint,
        CHAT_ETCD_USERNAME: ETCD_CHAT_USER,
        CHAT_ETCD_PASSWORD: password,
        CHAT_ETCD_TLS_CA: tls.caFile,
        CHAT_ETCD_TLS_CERT: client.cert,
        CHAT_ETCD_TLS_KEY: client.key,
      },
    };
  } catch (err) {
    await etcd.close();
    throw err;
  }
}

/** Creates root and the chat user (read-write on `prefix/`), then turns auth on. */
async function enableAuth(
  endpoint: string,
  security: EtcdSecurity,
  rootPassword: string,
  chatPassword: string,
  prefix: string,
): Promise<void> {
  const admin = createEtcdClient({ endpoints: endpoint, security });
  try {
    await admin.role('root').create();
    await (await admin.user('root').create(rootPassword)).addRole('root');
    const role = await admin.role(ETCD_CHAT_USER).create();
    await role.grant({
      permission: 'Readwrite',
      range: admin.range({ prefix: `${prefix.replace(/\/+$/, '')}/` }),
    });
    await (await admin.user(ETCD_CHAT_USER).create(chatPassword)).addRole(ETCD_CHAT_USER);
    await admin.auth.authEnable();
  } finally {
    admin.close();
  }
}
