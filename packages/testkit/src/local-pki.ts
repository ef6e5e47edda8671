/**
 * A throwaway certificate authority for local runs and tests: `npm start -- --secure` and the
 * TLS tests issue the certificates of the RPC links, etcd and the TLS edge from it. Deployments
 * bring their own CA and certificates (files named by configuration); nothing here is used
 * there.
 *
 * ECDSA P-256 keys (fast to make, accepted by Node, etcd, nginx and PostgreSQL), written as PEM.
 */
import { webcrypto } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import path from 'node:path';
import type * as X509 from '@peculiar/x509';

/**
 * @peculiar/x509 loads on first use, not at import: it takes most of a second, which every test
 * file importing @chat/testkit would pay, TLS test or not.
 */
async function loadX509(): Promise<typeof X509> {
  // Its services resolve through tsyringe, which needs the Reflect metadata API.
  await import('reflect-metadata');
  const x509 = await import('@peculiar/x509');
  x509.cryptoProvider.set(webcrypto as unknown as Crypto);
  return x509;
}

const ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY_MS = 86_400_000;

/** A certificate and its private key, PEM. */
export interface PemPair {
  readonly cert: string;
  readonly key: string;
}

/** A CA that can issue leaf certificates. */
export interface LocalCa extends PemPair {
  /** A server and client certificate for `names` (DNS names or IP addresses). */
  issue(commonName: string, names: readonly string[]): Promise<PemPair>;
}

/** Files written by writePemPair. */
export interface PemFiles {
  readonly cert: string;
  readonly key: string;
}

let serial = 0;
function nextSerial(): string {
  serial += 1;
  return `${Date.now().toString(16)}${serial.toString(16).padStart(4, '0')}`;
}

async function keyPem(keys: CryptoKeyPair): Promise<string> {
  const der = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey as webcrypto.CryptoKey);
  const b64 = Buffer.from(der).toString('base64');
  return `-----BEGIN PRIVATE KEY-----\n${b64.match(/.{1,64}/g)!.join('\n')}\n-----END PRIVATE KEY-----\n`;
}

function newKeys(): Promise<CryptoKeyPair> {
  return webcrypto.subtle.generateKey(ALGORITHM, true, [
    'sign',
    'verify',
  ]) as Promise<CryptoKeyPair>;
}

/** Creates a CA valid for `days` (default 30), named `name`. */
export async function createLocalCa(name = 'chat local CA', days = 30): Promise<LocalCa> {
  const x509 = await loadX509();
  const caKeys = await newKeys();
  const notBefore = new Date(Date.now() - 60_000); // a little slack for clocks
  const notAfter = new Date(Date.now() + days * DAY_MS);
  const caCert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: nextSerial(),
    name: `CN=${name}`,
    notBefore,
    notAfter,
    keys: caKeys,
    signingAlgorithm: ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
        true,
      ),
      await x509.SubjectKeyIdentifierExtension.create(caKeys.publicKey),
    ],
  });

  async function issue(commonName: string, names: readonly string[]): Promise<PemPair> {
    const keys = await newKeys();
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: nextSerial(),
      subject: `CN=${commonName}`,
      issuer: caCert.subject,
      notBefore,
      notAfter,
      publicKey: keys.publicKey,
      signingKey: caKeys.privateKey,
      signingAlgorithm: ALGORITHM,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(
          x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment,
          true,
        ),
        new x509.ExtendedKeyUsageExtension(
          [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth],
          false,
        ),
        new x509.SubjectAlternativeNameExtension(
          names.map((n): X509.JsonGeneralName => ({ type: isIP(n) ? 'ip' : 'dns', value: n })),
        ),
        await x509.AuthorityKeyIdentifierExtension.create(caCert),
      ],
    });
    return { cert: cert.toString('pem'), key: await keyPem(keys) };
  }

  return { cert: caCert.toString('pem'), key: await keyPem(caKeys), issue };
}

/** Writes `pair` as `<dir>/<name>.crt` and `<dir>/<name>.key` (the key readable by its owner only). */
export async function writePemPair(dir: string, name: string, pair: PemPair): Promise<PemFiles> {
  await mkdir(dir, { recursive: true });
  const cert = path.join(dir, `${name}.crt`);
  const key = path.join(dir, `${name}.key`);
  await writeFile(cert, pair.cert);
  await writeFile(key, pair.key, { mode: 0o600 });
  return { cert, key };
}
