import { registryConfigFromEnv } from '../src/config';

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
