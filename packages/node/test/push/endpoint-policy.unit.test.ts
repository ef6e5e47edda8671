import { isPrivateEndpoint } from '../../src/push/endpoint-policy';

describe('isPrivateEndpoint', () => {
  it.each([
    'https://localhost:8443/push/1',
    'https://a.localhost/x',
    'https://127.0.0.1/x',
    'https://10.1.2.3/x',
    'https://172.20.0.1/x',
    'https://192.168.1.1/x',
    'https://169.254.169.254/latest',
    'https://100.64.0.1/x',
    'https://0.0.0.0/x',
    'https://[::1]/x',
    'https://[fd00::1]/x',
    'https://[fe80::1]/x',
    'https://[::ffff:127.0.0.1]/x',
    'https://push.corp.internal/x',
  ])('refuses %s', (url) => {
    expect(isPrivateEndpoint(url)).toBe(true);
  });

  it.each([
    'https://fcm.googleapis.com/fcm/send/abc',
    'https://updates.push.services.mozilla.com/wpush/v2/abc',
    'https://web.push.apple.com/abc',
    'https://8.8.8.8/x',
    'https://172.32.0.1/x',
    'https://[2001:db8::1]/x',
  ])('accepts %s', (url) => {
    expect(isPrivateEndpoint(url)).toBe(false);
  });
});
