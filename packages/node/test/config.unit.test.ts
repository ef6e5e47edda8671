import { randomBytes } from 'node:crypto';
import { ConfigError } from '@chat/cluster';
import { DEV_SECRET, loggableConfig, nodeConfigFromEnv } from '../src/config';
import { clusterConfigFromEnv } from '../src/cluster/cluster-config';
import { mediaConfigFromEnv } from '../src/media-config';

const base = { DATABASE_URL: 'postgres://x@127.0.0.1/db' };

describe('nodeConfigFromEnv', () => {
  it('applies defaults and says when the dev secret is in use', () => {
    const { config, usingDevSecret } = nodeConfigFromEnv(base);
    expect(config.authSecret).toBe(DEV_SECRET);
    expect(usingDevSecret).toBe(true);
    expect(config.limits.maxBodyChars).toBe(4096);
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('refuses a public URL the registry would not route to, without echoing it', () => {
    const bad = 'ws://user:s3cret@node-1.example:8080/ws';
    expect(() => nodeConfigFromEnv({ ...base, CHAT_PUBLIC_URL: bad })).toThrow(
      new ConfigError('CHAT_PUBLIC_URL carries credentials (not echoed)'),
    );
    expect(() =>
      nodeConfigFromEnv({ ...base, CHAT_PUBLIC_URL: 'wss://node-1.example/ws#x' }),
    ).toThrow(/CHAT_PUBLIC_URL carries a fragment/);
    const ok = 'wss://node-1.example/ws';
    expect(nodeConfigFromEnv({ ...base, CHAT_PUBLIC_URL: ok }).config.publicUrl).toBe(ok);
  });

  it('names the variable in errors', () => {
    expect(() => nodeConfigFromEnv({ ...base, CHAT_PORT: 'http' })).toThrow(
      /CHAT_PORT must be an integer/,
    );
    expect(() => nodeConfigFromEnv({})).toThrow(/DATABASE_URL is required/);
    expect(() => nodeConfigFromEnv({ ...base, CHAT_NODE_ID: 'bad id!' })).toThrow(ConfigError);
    expect(() => nodeConfigFromEnv({ ...base, CHAT_LOG_LEVEL: 'loud' })).toThrow(
      /CHAT_LOG_LEVEL must be one of/,
    );
    expect(() => nodeConfigFromEnv({ ...base, CHAT_EPOCH_CHECK_MS: '10' })).toThrow(
      /CHAT_EPOCH_CHECK_MS/,
    );
  });

  it('bounds Postgres statements and connects at 10 s unless told less', () => {
    const defaults = nodeConfigFromEnv(base).config;
    expect([defaults.pgQueryTimeoutMs, defaults.pgConnectTimeoutMs]).toEqual([10_000, 10_000]);
    const set = nodeConfigFromEnv({
      ...base,
      CHAT_PG_QUERY_TIMEOUT_MS: '3000',
      CHAT_PG_CONNECT_TIMEOUT_MS: '2000',
    }).config;
    expect([set.pgQueryTimeoutMs, set.pgConnectTimeoutMs]).toEqual([3000, 2000]);
    // Longer would outlast the fan-out sweep's orphan window.
    expect(() => nodeConfigFromEnv({ ...base, CHAT_PG_QUERY_TIMEOUT_MS: '30000' })).toThrow(
      /CHAT_PG_QUERY_TIMEOUT_MS/,
    );
    expect(() => nodeConfigFromEnv({ ...base, CHAT_PG_CONNECT_TIMEOUT_MS: '0' })).toThrow(
      /CHAT_PG_CONNECT_TIMEOUT_MS/,
    );
  });

  it('keeps moved connections of overlap-moves clients open 3 s unless told otherwise', () => {
    expect(nodeConfigFromEnv(base).config.moveOverlapMs).toBe(3000);
    expect(nodeConfigFromEnv({ ...base, CHAT_MOVE_OVERLAP_MS: '0' }).config.moveOverlapMs).toBe(0);
    expect(() => nodeConfigFromEnv({ ...base, CHAT_MOVE_OVERLAP_MS: '61000' })).toThrow(
      /CHAT_MOVE_OVERLAP_MS must be an integer from 0 to 60000/,
    );
  });

  it('checks the store epoch every 5 s unless told otherwise', () => {
    expect(nodeConfigFromEnv(base).config.epochCheckMs).toBe(5000);
    expect(nodeConfigFromEnv({ ...base, CHAT_EPOCH_CHECK_MS: '250' }).config.epochCheckMs).toBe(
      250,
    );
  });

  it('refuses to run without a secret in production', () => {
    expect(() => nodeConfigFromEnv({ ...base, NODE_ENV: 'production' })).toThrow(
      /CHAT_AUTH_SECRET is required/,
    );
  });

  it('reads limits and lists', () => {
    const { config } = nodeConfigFromEnv({
      ...base,
      CHAT_MAX_BODY_CHARS: '10',
      CHAT_ALLOWED_ORIGINS: 'https://a.example, https://b.example',
      CHAT_AUTH_SECRET: 's',
    });
    expect(config.limits.maxBodyChars).toBe(10);
    expect(config.allowedOrigins).toEqual(['https://a.example', 'https://b.example']);
  });

  describe('secrets when NODE_ENV=production', () => {
    const strong = randomBytes(32).toString('base64');
    const prod = { ...base, NODE_ENV: 'production', CHAT_AUTH_SECRET: strong };

    it.each([
      ['the dev secret set explicitly', DEV_SECRET, /placeholder|development or test default/],
      ['the compose placeholder', 'change-me-auth-secret', /placeholder.*change-me/],
      ['a long change-me value', 'change-me-' + 'x'.repeat(40), /change-me/],
      ['the test secret', 'test-secret', /development or test default/],
      ['a 31-byte secret', 'k'.repeat(31), /at least 32 bytes.*got 31/],
      ['a short secret', 'a-real-secret-4711', /at least 32 bytes/],
    ])('refuses CHAT_AUTH_SECRET that is %s, naming the variable', (_what, secret, why) => {
      let error: unknown;
      try {
        nodeConfigFromEnv({ ...prod, CHAT_AUTH_SECRET: secret });
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(ConfigError);
      const message = (error as Error).message;
      expect(message).toMatch(/^CHAT_AUTH_SECRET /);
      expect(message).toMatch(why);
      if (secret.length > 12) expect(message).not.toContain(secret);
    });

    it('accepts a random secret of 32 bytes or more', () => {
      expect(nodeConfigFromEnv(prod).config.authSecret).toBe(strong);
      expect(nodeConfigFromEnv(prod).usingDevSecret).toBe(false);
      const exactly32 = randomBytes(16).toString('hex');
      expect(nodeConfigFromEnv({ ...prod, CHAT_AUTH_SECRET: exactly32 }).config.authSecret).toBe(
        exactly32,
      );
    });

    it('refuses a placeholder database password, and accepts a real one', () => {
      expect(() =>
        nodeConfigFromEnv({
          ...prod,
          DATABASE_URL: 'postgres://chat:change-me-postgres@db:5432/chat',
        }),
      ).toThrow(/password in DATABASE_URL must not be a placeholder/);
      expect(
        nodeConfigFromEnv({ ...prod, DATABASE_URL: 'postgres://chat:Zq81-real@db:5432/chat' })
          .config.databaseUrl,
      ).toContain('Zq81-real');
    });

    it.each([
      ['the dev cluster secret', 'dev-cluster-secret', /development or test default/],
      ['the compose placeholder', 'change-me-cluster-secret', /change-me/],
      ['a short secret', 'cluster-s3cret', /at least 32 bytes/],
    ])('refuses CHAT_CLUSTER_SECRET that is %s', (_what, secret, why) => {
      const env = { ...prod, CHAT_ETCD_ENDPOINTS: 'http://e:2379', CHAT_CLUSTER_SECRET: secret };
      expect(() => clusterConfigFromEnv(env, '127.0.0.1')).toThrow(ConfigError);
      expect(() => clusterConfigFromEnv(env, '127.0.0.1')).toThrow(why);
      expect(() => clusterConfigFromEnv(env, '127.0.0.1')).toThrow(/^CHAT_CLUSTER_SECRET /);
    });

    it('accepts a random cluster secret', () => {
      // Plain-TCP RPC is allowed explicitly here; rpc-tls-config.unit.test.ts covers TLS.
      const env = {
        ...prod,
        CHAT_ETCD_ENDPOINTS: 'http://e:2379',
        CHAT_CLUSTER_SECRET: strong,
        CHAT_RPC_ALLOW_PLAINTEXT: '1',
      };
      expect(clusterConfigFromEnv(env, '127.0.0.1')?.config.clusterSecret).toBe(strong);
    });

    it('refuses a placeholder S3 secret key', () => {
      const s3 = {
        ...prod,
        CHAT_S3_ENDPOINT: 'http://minio:9000',
        CHAT_S3_ACCESS_KEY: 'chat-minio',
      };
      expect(() =>
        mediaConfigFromEnv({ ...s3, CHAT_S3_SECRET_KEY: 'change-me-minio-secret' }),
      ).toThrow(/CHAT_S3_SECRET_KEY must not be a placeholder/);
      expect(
        mediaConfigFromEnv({ ...s3, CHAT_S3_SECRET_KEY: 'wJalrXUtnFEMI/K7MDENG' }),
      ).toBeDefined();
    });

    it('outside production still accepts the dev secret, and says so (the warning)', () => {
      for (const env of [base, { ...base, NODE_ENV: 'development' }]) {
        const loaded = nodeConfigFromEnv(env);
        expect(loaded.config.authSecret).toBe(DEV_SECRET);
        expect(loaded.usingDevSecret).toBe(true);
      }
      expect(nodeConfigFromEnv({ ...base, CHAT_AUTH_SECRET: 'short' }).config.authSecret).toBe(
        'short',
      );
      expect(
        clusterConfigFromEnv({ CHAT_ETCD_ENDPOINTS: 'http://e:2379' }, '127.0.0.1')?.usingDevSecret,
      ).toBe(true);
    });
  });

  describe('token verification settings', () => {
    it('defaults: dev secret alone, no key ids, no aud/iss, 5 s leeway', () => {
      const { config } = nodeConfigFromEnv(base);
      expect(config.authKeys.size).toBe(0);
      expect(config.authAudience).toBeUndefined();
      expect(config.authIssuer).toBeUndefined();
      expect(config.tokenLeewaySec).toBe(5);
    });

    it('reads CHAT_AUTH_KEYS, CHAT_AUTH_AUDIENCE, CHAT_AUTH_ISSUER and CHAT_TOKEN_LEEWAY_SEC', () => {
      const { config, usingDevSecret } = nodeConfigFromEnv({
        ...base,
        CHAT_AUTH_KEYS: 'k1:first:with-colon, k2:second',
        CHAT_AUTH_AUDIENCE: 'chat',
        CHAT_AUTH_ISSUER: 'https://auth.example',
        CHAT_TOKEN_LEEWAY_SEC: '1',
      });
      expect([...config.authKeys]).toEqual([
        ['k1', 'first:with-colon'],
        ['k2', 'second'],
      ]);
      // Keys alone: no dev secret stands in for tokens without kid.
      expect(config.authSecret).toBeUndefined();
      expect(usingDevSecret).toBe(false);
      expect(config.authAudience).toBe('chat');
      expect(config.authIssuer).toBe('https://auth.example');
      expect(config.tokenLeewaySec).toBe(1);
      expect(loggableConfig(config)).toMatchObject({ authKeys: ['k1', 'k2'] });
      expect(JSON.stringify(loggableConfig(config))).not.toContain('second');
    });

    it.each([
      ['a key without secret', 'k1', /k1 has no secret/],
      ['an empty secret', 'k1:', /k1 has no secret/],
      ['a bad kid', 'bad kid:s', /kid:secret pairs/],
      ['a kid listed twice', 'k1:a,k1:b', /k1 is listed twice/],
    ])('refuses CHAT_AUTH_KEYS with %s', (_what, value, why) => {
      expect(() => nodeConfigFromEnv({ ...base, CHAT_AUTH_KEYS: value })).toThrow(why);
    });

    it('refuses placeholder and short keys in production, without quoting them', () => {
      const strong = randomBytes(32).toString('base64');
      const prod = { ...base, NODE_ENV: 'production' };
      for (const [secret, why] of [
        ['change-me-auth-key', /placeholder.*change-me/],
        ['a-real-key-4711-short', /at least 32 bytes/],
        [DEV_SECRET, /development or test default/],
      ] as const) {
        let error: unknown;
        try {
          nodeConfigFromEnv({ ...prod, CHAT_AUTH_KEYS: `new:${strong},old:${secret}` });
        } catch (err) {
          error = err;
        }
        expect(error).toBeInstanceOf(ConfigError);
        expect((error as Error).message).toMatch(/^CHAT_AUTH_KEYS \(key old\) /);
        expect((error as Error).message).toMatch(why);
        expect((error as Error).message).not.toContain(secret.slice(0, 14));
      }
      // Strong keys alone are enough in production.
      expect(
        nodeConfigFromEnv({ ...prod, CHAT_AUTH_KEYS: `k:${strong}` }).config.authKeys.size,
      ).toBe(1);
    });
  });
});
