import { ConfigError } from '@chat/cluster';
import { defaultPushOutboxConfig, pushOutboxConfigFromEnv } from '../../src/push/push-config';

describe('pushOutboxConfigFromEnv', () => {
  it('has defaults: a minute window, 5 s ack wait, previews a user setting, private endpoints refused', () => {
    expect(pushOutboxConfigFromEnv({})).toEqual(defaultPushOutboxConfig);
    expect(defaultPushOutboxConfig).toMatchObject({ windowMs: 60_000, ackWaitMs: 5000 });
    expect(defaultPushOutboxConfig.allowPrivateEndpoints).toBe(false);
  });

  it('reads every variable', () => {
    const config = pushOutboxConfigFromEnv({
      CHAT_PUSH_WINDOW_MS: '1500',
      CHAT_PUSH_ACK_WAIT_MS: '300',
      CHAT_PUSH_CONCURRENCY: '4',
      CHAT_PUSH_RETRY_BASE_MS: '200',
      CHAT_PUSH_RETRY_MAX_MS: '9000',
      CHAT_PUSH_MAX_ATTEMPTS: '3',
      CHAT_PUSH_LEASE_MS: '5000',
      CHAT_PUSH_POLL_MS: '50',
      CHAT_PUSH_TTL_SECONDS: '600',
      CHAT_PUSH_ALLOW_PRIVATE_ENDPOINTS: '1',
    });
    expect(config).toMatchObject({
      windowMs: 1500,
      ackWaitMs: 300,
      concurrency: 4,
      retry: { baseMs: 200, maxMs: 9000, maxAttempts: 3 },
      leaseMs: 5000,
      pollMs: 50,
      ttlSeconds: 600,
      allowPrivateEndpoints: true,
    });
  });

  it.each([
    ['CHAT_PUSH_WINDOW_MS', '-1'],
    ['CHAT_PUSH_ACK_WAIT_MS', 'soon'],
    ['CHAT_PUSH_CONCURRENCY', '0'],
    ['CHAT_PUSH_MAX_ATTEMPTS', '1.5'],
    ['CHAT_PUSH_ALLOW_PRIVATE_ENDPOINTS', 'yes'],
  ])('refuses %s=%s naming the variable', (name, value) => {
    expect(() => pushOutboxConfigFromEnv({ [name]: value })).toThrow(ConfigError);
    expect(() => pushOutboxConfigFromEnv({ [name]: value })).toThrow(name);
  });

  it('refuses a retry cap below the base', () => {
    expect(() =>
      pushOutboxConfigFromEnv({ CHAT_PUSH_RETRY_BASE_MS: '5000', CHAT_PUSH_RETRY_MAX_MS: '1000' }),
    ).toThrow(/CHAT_PUSH_RETRY_MAX_MS must be an integer from 5000/);
  });
});
