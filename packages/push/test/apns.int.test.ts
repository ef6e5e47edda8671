import { startApnsReceiver } from '@chat/testkit';
import type { ApnsReceiver } from '@chat/testkit';
import { createApnsProvider } from '../src/apns-provider';
import type { PushProvider, PushTarget } from '../src/provider';
import { OpenProviders, REQUEST_TIMEOUT_MS, ecKeyPem, notification, receiverTls } from './fixtures';

const KEY_ID = 'ABC123DEFG';
const TEAM_ID = 'TEAM123456';
const TOPIC = 'com.example.chat';
const TOKEN = 'a1'.repeat(32);
const target: PushTarget = { kind: 'apns', token: TOKEN, topic: TOPIC, environment: 'sandbox' };

describe('APNs provider against a strict local APNs', () => {
  const signingKey = ecKeyPem();
  let receiver: ApnsReceiver;
  let ca: string;
  const providers = new OpenProviders();

  function provider(overrides: { signingKey?: string; teamId?: string } = {}): PushProvider {
    return providers.add(
      createApnsProvider({
        signingKey: overrides.signingKey ?? signingKey,
        keyId: KEY_ID,
        teamId: overrides.teamId ?? TEAM_ID,
        urls: { production: receiver.url, sandbox: receiver.url },
        ca,
        requestTimeoutMs: REQUEST_TIMEOUT_MS,
      }),
    );
  }

  beforeAll(async () => {
    const pki = await receiverTls();
    ca = pki.ca;
    receiver = await startApnsReceiver({
      tls: pki.tls,
      verificationKey: signingKey,
      keyId: KEY_ID,
      teamId: TEAM_ID,
      topics: [TOPIC],
    });
  });

  afterAll(async () => {
    await providers.closeAll();
    await receiver.close();
  });

  it('sends a content-free alert with badge, collapse id and expiry over HTTP/2', async () => {
    const before = receiver.delivered.length;
    await expect(provider().send(target, notification)).resolves.toEqual({ outcome: 'sent' });
    const delivery = receiver.delivered[before]!;
    expect(delivery.deviceToken).toBe(TOKEN);
    expect(delivery.headers).toMatchObject({
      'apns-topic': TOPIC,
      'apns-push-type': 'alert',
      'apns-priority': '10',
      'apns-collapse-id': 'chat-c1',
    });
    const expiry = Number(delivery.headers['apns-expiration']);
    expect(Math.abs(expiry - (Date.now() / 1000 + 600))).toBeLessThan(30);
    expect(delivery.payload).toEqual({ aps: { badge: 3 }, chatId: 'c1', collapseId: 'chat-c1' });
  });

  it('adds the title only when the notification has one, and hashes a collapse id longer than 64 bytes', async () => {
    const before = receiver.delivered.length;
    const long = { ...notification, collapseId: 'x'.repeat(100), title: 'New message from Ada' };
    await expect(provider().send(target, long)).resolves.toEqual({ outcome: 'sent' });
    const delivery = receiver.delivered[before]!;
    expect(delivery.payload.aps).toEqual({ badge: 3, alert: { title: 'New message from Ada' } });
    expect(Buffer.byteLength(delivery.headers['apns-collapse-id']!)).toBeLessThanOrEqual(64);
  });

  it.each([429, 503, 500])('answers %i as retry', async (status) => {
    receiver.faults.failNext(1, { kind: 'status', status, retryAfter: '5' });
    const result = await provider().send(target, notification);
    // APNs documents no Retry-After and node-apn does not expose one: the outbox's backoff applies.
    expect(result).toMatchObject({ outcome: 'retry' });
    expect(receiver.refused.at(-1)?.status).toBe(status);
  });

  it('answers 410 Unregistered and BadDeviceToken as gone', async () => {
    const goneToken = 'b2'.repeat(32);
    receiver.faults.markGone(goneToken);
    await expect(provider().send({ ...target, token: goneToken }, notification)).resolves.toEqual({
      outcome: 'gone',
      reason: 'apns 410 Unregistered',
    });
    await expect(provider().send({ ...target, token: 'not-hex' }, notification)).resolves.toEqual({
      outcome: 'gone',
      reason: 'apns 400 BadDeviceToken',
    });
  });

  it('ends an attempt against a hanging APNs within the request timeout, as retry', async () => {
    receiver.faults.failNext(1, { kind: 'hang' });
    const started = Date.now();
    const result = await provider().send(target, notification);
    const elapsed = Date.now() - started;
    expect(result).toMatchObject({ outcome: 'retry' });
    expect(elapsed).toBeGreaterThanOrEqual(REQUEST_TIMEOUT_MS - 50);
    expect(elapsed).toBeLessThan(REQUEST_TIMEOUT_MS + 3000);
  });

  it('is refused when the provider token is signed with another key or names another team', async () => {
    const before = receiver.delivered.length;
    await expect(provider({ signingKey: ecKeyPem() }).send(target, notification)).resolves.toEqual({
      outcome: 'failed',
      reason: 'apns 403 InvalidProviderToken',
    });
    await expect(provider({ teamId: 'OTHERTEAM1' }).send(target, notification)).resolves.toEqual({
      outcome: 'failed',
      reason: 'apns 403 InvalidProviderToken',
    });
    expect(receiver.delivered.length).toBe(before);
  });

  it('is refused for a topic the key may not push to', async () => {
    await expect(
      provider().send({ ...target, topic: 'com.other.app' }, notification),
    ).resolves.toEqual({
      outcome: 'failed',
      reason: 'apns 400 TopicDisallowed',
    });
  });
});
