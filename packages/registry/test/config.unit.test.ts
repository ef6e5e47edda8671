import { generateVapidKeys, parsePushConfig } from '@chat/push';
import { ConfigError } from '@chat/cluster';
import { registryConfigFromEnv } from '../src/config';
import { BAD_REGISTRY_SETTINGS } from './bad-settings';

const BASE = { CHAT_ETCD_ENDPOINTS: 'http://127.0.0.1:2379' };
const STRONG = 'a-random-operator-token-of-32-chars-or-more';

describe('registry configuration: the dashboard and the internal listener', () => {
  it('requires an operator token for the web pages in production, and a long one', () => {
    const production = { ...BASE, NODE_ENV: 'production', CHAT_REGISTRY_WEB: '1' };
    expect(() => registryConfigFromEnv(production)).toThrow(/CHAT_OPERATOR_TOKEN is required/);
    expect(() => registryConfigFromEnv({ ...production, CHAT_OPERATOR_TOKEN: 'short' })).toThrow(
      /at least 32 characters/,
    );
    expect(registryConfigFromEnv({ ...production, CHAT_OPERATOR_TOKEN: STRONG })).toMatchObject({
      operatorToken: STRONG,
    });
    // Without pages there is no dashboard to guard; outside production it may stay open.
    expect(registryConfigFromEnv({ ...BASE, NODE_ENV: 'production' }).operatorToken).toBe(
      undefined,
    );
    expect(registryConfigFromEnv({ ...BASE, CHAT_REGISTRY_WEB: '1' }).operatorToken).toBe(
      undefined,
    );
  });

  it('binds the internal listener to loopback by default and validates the numbers', () => {
    expect(registryConfigFromEnv(BASE)).toMatchObject({
      internalHost: '127.0.0.1',
      internalPort: 0,
      dashboardStreamsPerAddress: 4,
    });
    expect(() => registryConfigFromEnv({ ...BASE, CHAT_REGISTRY_INTERNAL_PORT: '70000' })).toThrow(
      'CHAT_REGISTRY_INTERNAL_PORT must be an integer from 0 to 65535, got "70000"',
    );
    expect(() =>
      registryConfigFromEnv({ ...BASE, CHAT_DASHBOARD_STREAMS_PER_ADDRESS: '0' }),
    ).toThrow('CHAT_DASHBOARD_STREAMS_PER_ADDRESS must be an integer from 1 to 1000');
  });
});

describe('registry configuration: the Web Push key for the chat page', () => {
  const vapid = generateVapidKeys('mailto:dev@localhost');
  const nodeEnv = (publicKey: string): Record<string, string> => ({
    CHAT_PUSH_WEBPUSH_VAPID_PUBLIC_KEY: publicKey,
    CHAT_PUSH_WEBPUSH_VAPID_PRIVATE_KEY: vapid.privateKey,
    CHAT_PUSH_WEBPUSH_VAPID_SUBJECT: vapid.subject,
  });

  it('takes the key the nodes take, and none when unset', () => {
    expect(parsePushConfig(nodeEnv(vapid.publicKey)).webpush?.vapid.publicKey).toBe(
      vapid.publicKey,
    );
    expect(
      registryConfigFromEnv({ ...BASE, CHAT_PUSH_WEBPUSH_VAPID_PUBLIC_KEY: vapid.publicKey })
        .webPushPublicKey,
    ).toBe(vapid.publicKey);
    expect(registryConfigFromEnv(BASE).webPushPublicKey).toBe(undefined);
    expect(
      registryConfigFromEnv({ ...BASE, CHAT_PUSH_WEBPUSH_VAPID_PUBLIC_KEY: ' ' }).webPushPublicKey,
    ).toBe(undefined);
  });

  it('refuses, naming the variable, every key the nodes refuse', () => {
    const point = Buffer.from(vapid.publicKey, 'base64url');
    const compressed = Buffer.concat([Buffer.from([0x02]), point.subarray(1, 33)]);
    const wrongPrefix = Buffer.concat([Buffer.from([0x05]), point.subarray(1)]);
    const bad = [
      compressed.toString('base64url'),
      wrongPrefix.toString('base64url'),
      point.toString('base64'), // standard base64: '+', '/' or '=' padding
      `${vapid.publicKey}A`,
      'not a key',
    ].filter((key) => key !== vapid.publicKey);
    for (const key of bad) {
      expect(() => parsePushConfig(nodeEnv(key))).toThrow(/CHAT_PUSH_WEBPUSH_VAPID_PUBLIC_KEY/);
      expect(() =>
        registryConfigFromEnv({ ...BASE, CHAT_PUSH_WEBPUSH_VAPID_PUBLIC_KEY: key }),
      ).toThrow(/CHAT_PUSH_WEBPUSH_VAPID_PUBLIC_KEY must be an uncompressed P-256 public key/);
    }
  });
});

describe('registry configuration: every setting is validated as on the nodes', () => {
  it.each(BAD_REGISTRY_SETTINGS.map((bad) => [Object.keys(bad.env).join(' + '), bad] as const))(
    'refuses a bad %s with a ConfigError that names it and what it takes',
    (_name, bad) => {
      const run = (): unknown => registryConfigFromEnv({ ...BASE, ...bad.env });
      expect(run).toThrow(ConfigError);
      for (const says of bad.says) expect(run).toThrow(says);
    },
  );

  it('reads switches and the log level the way the nodes do', () => {
    expect(registryConfigFromEnv({ ...BASE, CHAT_REGISTRY_WEB: 'true' }).web).toBe(true);
    expect(registryConfigFromEnv({ ...BASE, CHAT_REGISTRY_WEB: '0' }).web).toBe(false);
    expect(registryConfigFromEnv({ ...BASE, CHAT_LOG_LEVEL: 'debug' }).logLevel).toBe('debug');
    expect(registryConfigFromEnv(BASE)).toMatchObject({ logLevel: 'info', prefix: '/chat' });
  });
});
