import { ConfigError } from '../src/env';
import { DEV_SECRET, nodeConfigFromEnv } from '../src/config';

const base = { DATABASE_URL: 'postgres://x@127.0.0.1/db' };

describe('nodeConfigFromEnv', () => {
  it('applies defaults and says when the dev secret is in use', () => {
    const { config, usingDevSecret } = nodeConfigFromEnv(base);
    expect(config.authSecret).toBe(DEV_SECRET);
    expect(usingDevSecret).toBe(true);
    expect(config.limits.maxBodyChars).toBe(4096);
    expect(Object.isFrozen(config)).toBe(true);
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
});
