import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { generateVapidKeys } from '@chat/push';

/** Web Push settings for a local run: node environment, the public key, and cleanup. */
export interface LocalPush {
  /** CHAT_PUSH_WEBPUSH_* for every node (the private key by file, as in deployments). */
  readonly nodeEnv: Readonly<Record<string, string>>;
  readonly vapidPublicKey: string;
  close(): Promise<void>;
}

/**
 * Makes a VAPID key pair for this run (`npm start` turns Web Push on with it): the private key
 * goes to a file readable by its owner only, in a directory removed by `close()`.
 */
export async function createLocalPush(): Promise<LocalPush> {
  const dir = await mkdtemp(path.join(tmpdir(), 'chat-push-'));
  const vapid = generateVapidKeys('mailto:dev@localhost');
  const privateKeyFile = path.join(dir, 'vapid-private.key');
  await writeFile(privateKeyFile, `${vapid.privateKey}\n`, { mode: 0o600 });
  return {
    nodeEnv: {
      CHAT_PUSH_WEBPUSH_VAPID_PUBLIC_KEY: vapid.publicKey,
      CHAT_PUSH_WEBPUSH_VAPID_PRIVATE_KEY_FILE: privateKeyFile,
      CHAT_PUSH_WEBPUSH_VAPID_SUBJECT: vapid.subject,
    },
    vapidPublicKey: vapid.publicKey,
    close: () => rm(dir, { recursive: true, force: true }),
  };
}
