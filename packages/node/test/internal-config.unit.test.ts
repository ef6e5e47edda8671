import { ConfigError } from '@chat/cluster';
import { internalListenerFromEnv, internalUrlOf } from '../src/internal-config';

describe('the internal listener settings', () => {
  it('bind to loopback on a free port by default, and publish what they bound', () => {
    const config = internalListenerFromEnv({});
    expect(config).toEqual({ host: '127.0.0.1', port: 0, advertiseUrl: undefined });
    expect(internalUrlOf(config, 9101)).toBe('http://127.0.0.1:9101');
    expect(internalUrlOf(internalListenerFromEnv({ CHAT_INTERNAL_HOST: '::1' }), 9)).toBe(
      'http://[::1]:9',
    );
  });

  it('publish CHAT_INTERNAL_URL when set', () => {
    const config = internalListenerFromEnv({
      CHAT_INTERNAL_HOST: '0.0.0.0',
      CHAT_INTERNAL_PORT: '9101',
      CHAT_INTERNAL_URL: 'http://node-1:9101/',
    });
    expect(internalUrlOf(config, 9101)).toBe('http://node-1:9101');
  });

  it.each([
    ['CHAT_INTERNAL_PORT', '70000'],
    ['CHAT_INTERNAL_URL', 'ws://node-1:9101'],
    ['CHAT_INTERNAL_URL', 'javascript:alert(1)'],
    ['CHAT_INTERNAL_URL', 'http://user:pw@node-1:9101'],
  ])('refuse %s=%s', (name, value) => {
    expect(() => internalListenerFromEnv({ [name]: value })).toThrow(ConfigError);
    expect(() => internalListenerFromEnv({ [name]: value })).toThrow(name);
  });
});
