/**
 * The TLS material of a `--secure` local run (and of the TLS tests): one throwaway CA in a temp
 * directory, and certificates from it written next to it on demand. Every TLS piece of a local
 * run (the client edge, RPC links, etcd) takes its certificate from here, so that one CA file
 * is all a client has to trust.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createLocalCa, writePemPair } from './local-pki';
import type { LocalCa, PemFiles } from './local-pki';

/** Names every local certificate carries: the services listen on loopback only. */
export const LOOPBACK_NAMES: readonly string[] = Object.freeze(['127.0.0.1', 'localhost']);

export interface LocalTls {
  /** The temp directory holding the CA and the issued certificates. */
  readonly dir: string;
  readonly ca: LocalCa;
  /** The CA certificate, PEM: what clients trust (e.g. NODE_EXTRA_CA_CERTS, sslrootcert). */
  readonly caFile: string;
  /**
   * Issues a certificate for the loopback names plus `extraNames`, written as
   * `<dir>/<name>.crt` and `<dir>/<name>.key`.
   *
   * @example const files = await tls.issueFiles('edge'); // files.cert, files.key
   */
  issueFiles(name: string, extraNames?: readonly string[]): Promise<PemFiles>;
  /** Removes the directory (keys included). */
  close(): Promise<void>;
}

export async function createLocalTls(): Promise<LocalTls> {
  const dir = await mkdtemp(path.join(tmpdir(), 'chat-tls-'));
  try {
    const ca = await createLocalCa();
    const caFile = (await writePemPair(dir, 'ca', ca)).cert;
    return {
      dir,
      ca,
      caFile,
      issueFiles: async (name, extraNames = []) =>
        writePemPair(dir, name, await ca.issue(name, [...LOOPBACK_NAMES, ...extraNames])),
      close: () => rm(dir, { recursive: true, force: true }),
    };
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}
