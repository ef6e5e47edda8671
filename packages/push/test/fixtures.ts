import { generateKeyPairSync } from 'node:crypto';
import { createLocalCa } from '@chat/testkit';
import type { PushNotification, PushProvider } from '../src/provider';

/** A CA the provider trusts and a certificate for the receiver at localhost. */
export async function receiverTls(): Promise<{ ca: string; tls: { cert: string; key: string } }> {
  const ca = await createLocalCa('push receivers CA');
  const tls = await ca.issue('localhost', ['localhost', '127.0.0.1']);
  return { ca: ca.cert, tls };
}

/** A P-256 private key in PKCS#8 PEM, like Apple's .p8 file. */
export function ecKeyPem(): string {
  return generateKeyPairSync('ec', { namedCurve: 'prime256v1' })
    .privateKey.export({ type: 'pkcs8', format: 'pem' })
    .toString();
}

/** An RSA private key in PKCS#8 PEM, like a Google service-account key. */
export function rsaKeyPem(): string {
  return generateKeyPairSync('rsa', { modulusLength: 2048 })
    .privateKey.export({ type: 'pkcs8', format: 'pem' })
    .toString();
}

export const notification: PushNotification = {
  collapseId: 'chat-c1',
  chatId: 'c1',
  badge: 3,
  ttlSeconds: 600,
};

/** Timeout of one provider attempt in these tests: short, so that a hang is seen quickly. */
export const REQUEST_TIMEOUT_MS = 400;

/** The providers a suite opened, closed together in its afterAll. */
export class OpenProviders {
  private readonly open: PushProvider[] = [];

  /** Returns `provider`, to be closed by closeAll(). */
  add(provider: PushProvider): PushProvider {
    this.open.push(provider);
    return provider;
  }

  async closeAll(): Promise<void> {
    await Promise.all(this.open.map((p) => p.close()));
  }
}
