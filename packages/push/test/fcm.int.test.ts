import { startFcmReceiver } from '@chat/testkit';
import type { FcmReceiver } from '@chat/testkit';
import { createFcmProvider } from '../src/fcm-provider';
import type { PushProvider, PushTarget } from '../src/provider';
import {
  OpenProviders,
  REQUEST_TIMEOUT_MS,
  notification,
  receiverTls,
  rsaKeyPem,
} from './fixtures';

const PROJECT = 'chat-test-project';
const CLIENT_EMAIL = 'push@chat-test-project.iam.gserviceaccount.com';
const target: PushTarget = { kind: 'fcm', token: 'fcm-registration-token-1' };

describe('FCM provider against a strict local FCM and OAuth token endpoint', () => {
  const privateKey = rsaKeyPem();
  let receiver: FcmReceiver;
  let ca: string;
  const providers = new OpenProviders();

  function provider(key = privateKey): PushProvider {
    return providers.add(
      createFcmProvider({
        serviceAccount: { projectId: PROJECT, clientEmail: CLIENT_EMAIL, privateKey: key },
        fcmUrl: receiver.url,
        tokenUrl: receiver.tokenUrl,
        ca,
        requestTimeoutMs: REQUEST_TIMEOUT_MS,
      }),
    );
  }

  beforeAll(async () => {
    const pki = await receiverTls();
    ca = pki.ca;
    receiver = await startFcmReceiver({
      tls: pki.tls,
      projectId: PROJECT,
      clientEmail: CLIENT_EMAIL,
      verificationKey: privateKey,
    });
  });

  afterAll(async () => {
    await providers.closeAll();
    await receiver.close();
  });

  it('exchanges a signed assertion for an access token once and sends a content-free v1 message', async () => {
    const fcm = provider();
    const tokensBefore = receiver.tokensIssued();
    const before = receiver.delivered.length;
    await expect(fcm.send(target, notification)).resolves.toEqual({ outcome: 'sent' });
    await expect(fcm.send(target, { ...notification, badge: 4 })).resolves.toEqual({
      outcome: 'sent',
    });
    expect(receiver.tokensIssued() - tokensBefore).toBe(1);
    expect(receiver.delivered[before]).toEqual({
      token: target.token,
      message: {
        token: target.token,
        data: { chatId: 'c1', collapseId: 'chat-c1', badge: '3' },
        android: { collapse_key: 'chat-c1', priority: 'HIGH', ttl: '600s' },
      },
    });
  });

  it('adds an Android notification with the title only when the notification has one', async () => {
    const before = receiver.delivered.length;
    const titled = { ...notification, title: 'New message from Ada' };
    await expect(provider().send(target, titled)).resolves.toEqual({ outcome: 'sent' });
    expect(receiver.delivered[before]!.message['android']).toMatchObject({
      notification: { title: 'New message from Ada', tag: 'chat-c1', notification_count: 3 },
    });
  });

  it('answers 429 with Retry-After in seconds and 503 with an HTTP date as retry at that time', async () => {
    const fcm = provider();
    receiver.faults.failNext(1, { kind: 'status', status: 429, retryAfter: '7' });
    await expect(fcm.send(target, notification)).resolves.toEqual({
      outcome: 'retry',
      reason: 'fcm 429 QUOTA_EXCEEDED',
      retryAfterMs: 7000,
    });
    const at = new Date(Date.now() + 120_000);
    receiver.faults.failNext(1, { kind: 'status', status: 503, retryAfter: at.toUTCString() });
    const result = await fcm.send(target, notification);
    expect(result).toMatchObject({ outcome: 'retry', reason: 'fcm 503 UNAVAILABLE' });
    const retryAfterMs = (result as { retryAfterMs?: number }).retryAfterMs;
    expect(retryAfterMs).toBeGreaterThan(110_000);
    expect(retryAfterMs).toBeLessThanOrEqual(120_000);
  });

  it('answers 404 UNREGISTERED as gone', async () => {
    receiver.faults.markGone('stale-token');
    await expect(
      provider().send({ kind: 'fcm', token: 'stale-token' }, notification),
    ).resolves.toEqual({
      outcome: 'gone',
      reason: 'fcm 404 UNREGISTERED',
    });
  });

  it('ends an attempt against a hanging FCM within the request timeout, as retry', async () => {
    const fcm = provider();
    await expect(fcm.send(target, notification)).resolves.toEqual({ outcome: 'sent' });
    receiver.faults.failNext(1, { kind: 'hang' });
    const started = Date.now();
    const result = await fcm.send(target, notification);
    const elapsed = Date.now() - started;
    expect(result).toMatchObject({ outcome: 'retry' });
    expect(elapsed).toBeGreaterThanOrEqual(REQUEST_TIMEOUT_MS - 50);
    expect(elapsed).toBeLessThan(REQUEST_TIMEOUT_MS + 3000);
  });

  it('ends an attempt within the request timeout when the token endpoint hangs or is down, as retry', async () => {
    receiver.tokenFaults.failNext(1, { kind: 'hang' });
    const started = Date.now();
    await expect(provider().send(target, notification)).resolves.toMatchObject({
      outcome: 'retry',
    });
    expect(Date.now() - started).toBeLessThan(REQUEST_TIMEOUT_MS + 1000);
    receiver.tokenFaults.failNext(1, { kind: 'status', status: 503 });
    await expect(provider().send(target, notification)).resolves.toEqual({
      outcome: 'retry',
      reason: 'fcm token: 503',
    });
  });

  it('is refused a token when the assertion is signed with another key, and sends nothing', async () => {
    const before = receiver.delivered.length;
    await expect(provider(rsaKeyPem()).send(target, notification)).resolves.toEqual({
      outcome: 'failed',
      reason: 'fcm token 400',
    });
    expect(receiver.delivered.length).toBe(before);
    expect(receiver.refused.at(-1)).toMatchObject({ path: '/token', status: 400 });
  });
});
