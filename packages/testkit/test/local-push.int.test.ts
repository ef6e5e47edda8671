import { existsSync, statSync } from 'node:fs';
import { createWebPushProvider, parsePushConfig } from '@chat/push';
import { createLocalCa } from '../src/local-pki';
import { createLocalPush } from '../src/local-push';
import { startWebPushReceiver } from '../src/push-receivers';

describe('createLocalPush (npm start turns Web Push on)', () => {
  it('gives the nodes a VAPID key pair that parses, signs what a push service accepts, and is removed on close', async () => {
    const push = await createLocalPush();
    const ca = await createLocalCa('local push test CA');
    const receiver = await startWebPushReceiver({
      tls: await ca.issue('localhost', ['localhost', '127.0.0.1']),
    });
    const config = parsePushConfig(push.nodeEnv);
    const provider = createWebPushProvider({ ...config.webpush!, ca: ca.cert });
    const keyFile = push.nodeEnv['CHAT_PUSH_WEBPUSH_VAPID_PRIVATE_KEY_FILE']!;
    try {
      expect(config.webpush?.vapid.publicKey).toBe(push.vapidPublicKey);
      expect(statSync(keyFile).mode & 0o777).toBe(0o600);
      const target = { kind: 'webpush' as const, ...receiver.subscribe(push.vapidPublicKey) };
      const sent = await provider.send(target, {
        collapseId: 'c1',
        chatId: 'c1',
        badge: 1,
        ttlSeconds: 60,
      });
      expect(sent).toEqual({ outcome: 'sent' });
      expect(receiver.delivered).toHaveLength(1);
    } finally {
      await provider.close();
      await receiver.close();
      await push.close();
    }
    expect(existsSync(keyFile)).toBe(false);
  });
});
