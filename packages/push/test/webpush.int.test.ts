import { Agent } from 'node:https';
import webPush from 'web-push';
import { startWebPushReceiver } from '@chat/testkit';
import type { WebPushReceiver } from '@chat/testkit';
import type { PushProvider, PushTarget } from '../src/provider';
import { createWebPushProvider } from '../src/webpush-provider';
import type { VapidKeys } from '../src/webpush-provider';
import { OpenProviders, REQUEST_TIMEOUT_MS, notification, receiverTls } from './fixtures';

function newVapid(): VapidKeys {
  return { ...webPush.generateVAPIDKeys(), subject: 'mailto:ops@example.com' };
}

describe('Web Push provider against a strict local push service', () => {
  const vapid = newVapid();
  let receiver: WebPushReceiver;
  let ca: string;
  const providers = new OpenProviders();

  function provider(keys = vapid): PushProvider {
    return providers.add(
      createWebPushProvider({ vapid: keys, ca, requestTimeoutMs: REQUEST_TIMEOUT_MS }),
    );
  }

  function subscription(): PushTarget & { kind: 'webpush' } {
    return { kind: 'webpush', ...receiver.subscribe(vapid.publicKey) };
  }

  const idOf = (target: { endpoint: string }): string => target.endpoint.split('/').at(-1)!;

  beforeAll(async () => {
    const pki = await receiverTls();
    ca = pki.ca;
    receiver = await startWebPushReceiver({ tls: pki.tls });
  });

  afterAll(async () => {
    await providers.closeAll();
    await receiver.close();
  });

  it('sends a VAPID-signed, aes128gcm-encrypted, content-free payload that the subscription key decrypts', async () => {
    const target = subscription();
    const before = receiver.delivered.length;
    await expect(provider().send(target, notification)).resolves.toEqual({ outcome: 'sent' });
    const delivery = receiver.delivered[before]!;
    expect(delivery.subscriptionId).toBe(idOf(target));
    expect(JSON.parse(delivery.plaintext)).toEqual({
      chatId: 'c1',
      collapseId: 'chat-c1',
      badge: 3,
    });
    expect(delivery).toMatchObject({ ttl: 600, topic: 'chat-c1', urgency: 'high' });
    expect(delivery.vapid).toMatchObject({
      subject: 'mailto:ops@example.com',
      publicKey: vapid.publicKey,
    });
  });

  it('carries the title only when given, and turns a long collapse id into a valid Topic', async () => {
    const before = receiver.delivered.length;
    const titled = {
      ...notification,
      collapseId: 'chat:with/odd chars and more than 32 characters',
      title: 'New message from Ada',
    };
    await expect(provider().send(subscription(), titled)).resolves.toEqual({ outcome: 'sent' });
    const delivery = receiver.delivered[before]!;
    expect(JSON.parse(delivery.plaintext)).toMatchObject({ title: 'New message from Ada' });
    expect(delivery.topic).toMatch(/^[A-Za-z0-9_-]{1,32}$/);
  });

  it('answers 429 with Retry-After in seconds and 503 with an HTTP date as retry at that time', async () => {
    const target = subscription();
    receiver.faults.failNext(1, { kind: 'status', status: 429, retryAfter: '3' });
    await expect(provider().send(target, notification)).resolves.toEqual({
      outcome: 'retry',
      reason: 'webpush 429',
      retryAfterMs: 3000,
    });
    const at = new Date(Date.now() + 60_000);
    receiver.faults.failNext(1, { kind: 'status', status: 503, retryAfter: at.toUTCString() });
    const result = await provider().send(target, notification);
    expect(result).toMatchObject({ outcome: 'retry', reason: 'webpush 503' });
    const retryAfterMs = (result as { retryAfterMs?: number }).retryAfterMs;
    expect(retryAfterMs).toBeGreaterThan(50_000);
    expect(retryAfterMs).toBeLessThanOrEqual(60_000);
  });

  it('answers 410 (expired) and 404 (unknown) subscriptions as gone', async () => {
    const expired = subscription();
    receiver.faults.markGone(idOf(expired));
    await expect(provider().send(expired, notification)).resolves.toEqual({
      outcome: 'gone',
      reason: 'webpush 410',
    });
    const unknown = {
      ...subscription(),
      endpoint: `${receiver.url}/push/00000000-0000-0000-0000-000000000000`,
    };
    await expect(provider().send(unknown, notification)).resolves.toEqual({
      outcome: 'gone',
      reason: 'webpush 404',
    });
  });

  it('ends an attempt against a hanging push service within the request timeout, as retry', async () => {
    receiver.faults.failNext(1, { kind: 'hang' });
    const started = Date.now();
    const result = await provider().send(subscription(), notification);
    const elapsed = Date.now() - started;
    expect(result).toMatchObject({ outcome: 'retry' });
    expect(elapsed).toBeGreaterThanOrEqual(REQUEST_TIMEOUT_MS - 50);
    expect(elapsed).toBeLessThan(REQUEST_TIMEOUT_MS + 3000);
  });

  it('is refused when signed with a VAPID key the subscription was not made with', async () => {
    const before = receiver.delivered.length;
    await expect(provider(newVapid()).send(subscription(), notification)).resolves.toEqual({
      outcome: 'failed',
      reason: 'webpush 403',
    });
    expect(receiver.delivered.length).toBe(before);
  });

  it('refuses a VAPID token not signed by k, or made for another audience (the receiver checks both)', async () => {
    const target = subscription();
    const agent = new Agent({ ca });
    const forged = async (authorization: string): Promise<number | undefined> => {
      const sent = webPush.sendNotification(target, 'x', {
        headers: { Authorization: authorization },
        TTL: 60,
        agent,
      });
      return sent.then(
        () => 201,
        (err: { statusCode?: number }) => err.statusCode,
      );
    };
    const signedByOther = webPush.getVapidHeaders(
      receiver.url,
      vapid.subject,
      vapid.publicKey,
      newVapid().privateKey,
      'aes128gcm',
    );
    const otherAudience = webPush.getVapidHeaders(
      'https://push.example.net',
      vapid.subject,
      vapid.publicKey,
      vapid.privateKey,
      'aes128gcm',
    );
    const genuine = webPush.getVapidHeaders(
      receiver.url,
      vapid.subject,
      vapid.publicKey,
      vapid.privateKey,
      'aes128gcm',
    );
    try {
      await expect(forged(signedByOther.Authorization)).resolves.toBe(403);
      await expect(forged(otherAudience.Authorization)).resolves.toBe(403);
      await expect(forged(genuine.Authorization)).resolves.toBe(201);
    } finally {
      agent.destroy();
    }
  });

  it('is refused when the payload is encrypted for other subscription keys', async () => {
    const target = subscription();
    const other = receiver.subscribe(vapid.publicKey);
    const before = receiver.delivered.length;
    await expect(provider().send({ ...target, keys: other.keys }, notification)).resolves.toEqual({
      outcome: 'failed',
      reason: 'webpush 400',
    });
    expect(receiver.refused.at(-1)?.reason).toMatch(/^cannot decrypt/);
    expect(receiver.delivered.length).toBe(before);
  });
});
