import { generateKeyPairSync } from 'node:crypto';
import webPush from 'web-push';
import { describePushConfig, parsePushConfig, PushConfigError } from '../src/config';

const ecPem = generateKeyPairSync('ec', { namedCurve: 'prime256v1' })
  .privateKey.export({ type: 'pkcs8', format: 'pem' })
  .toString();
const rsaPem = generateKeyPairSync('rsa', { modulusLength: 2048 })
  .privateKey.export({ type: 'pkcs8', format: 'pem' })
  .toString();
const vapid = webPush.generateVAPIDKeys();
const serviceAccount = JSON.stringify({
  type: 'service_account',
  project_id: 'chat-prod',
  client_email: 'push@chat-prod.iam.gserviceaccount.com',
  private_key: rsaPem,
  private_key_id: 'k1',
});

/** Files by path, in memory: the parser's only I/O is the injected reader. */
function reader(files: Record<string, string>): (path: string) => string {
  return (path) => {
    const text = files[path];
    if (text === undefined) throw Object.assign(new Error(`ENOENT ${path}`), { code: 'ENOENT' });
    return text;
  };
}

const files = reader({
  '/s/apns.p8': ecPem,
  '/s/fcm.json': serviceAccount,
  '/s/vapid.key': `${vapid.privateKey}\n`,
  '/s/ca.pem': 'CA PEM',
  '/s/rsa-as-apns.p8': rsaPem,
  '/s/broken.json': `{"private_key": "${vapid.privateKey}`,
});

const full = {
  CHAT_PUSH_APNS_KEY_FILE: '/s/apns.p8',
  CHAT_PUSH_APNS_KEY_ID: 'ABC123DEFG',
  CHAT_PUSH_APNS_TEAM_ID: 'TEAM123456',
  CHAT_PUSH_FCM_SERVICE_ACCOUNT_FILE: '/s/fcm.json',
  CHAT_PUSH_WEBPUSH_VAPID_PUBLIC_KEY: vapid.publicKey,
  CHAT_PUSH_WEBPUSH_VAPID_PRIVATE_KEY_FILE: '/s/vapid.key',
  CHAT_PUSH_WEBPUSH_VAPID_SUBJECT: 'mailto:ops@example.com',
};

function errorOf(run: () => unknown): PushConfigError {
  try {
    run();
  } catch (err) {
    if (err instanceof PushConfigError) return err;
    throw err;
  }
  throw new Error('expected a PushConfigError');
}

describe('parsePushConfig', () => {
  it('turns nothing on when nothing is set', () => {
    expect(parsePushConfig({}, files)).toEqual({});
  });

  it('reads every provider with defaults for URLs and timeout, credentials from files', () => {
    const config = parsePushConfig(full, files);
    expect(config.apns).toMatchObject({
      signingKey: ecPem,
      keyId: 'ABC123DEFG',
      teamId: 'TEAM123456',
      urls: {
        production: 'https://api.push.apple.com',
        sandbox: 'https://api.sandbox.push.apple.com',
      },
      requestTimeoutMs: 10_000,
    });
    expect(config.fcm).toMatchObject({
      serviceAccount: {
        projectId: 'chat-prod',
        clientEmail: 'push@chat-prod.iam.gserviceaccount.com',
        privateKey: rsaPem,
        privateKeyId: 'k1',
      },
      fcmUrl: 'https://fcm.googleapis.com',
      tokenUrl: 'https://oauth2.googleapis.com/token',
    });
    expect(config.webpush?.vapid).toEqual({ ...vapid, subject: 'mailto:ops@example.com' });
  });

  it('points every provider at configured endpoints with an extra CA (tests, sandboxes)', () => {
    const config = parsePushConfig(
      {
        ...full,
        CHAT_PUSH_APNS_URL: 'https://localhost:8443',
        CHAT_PUSH_FCM_URL: 'https://localhost:9443',
        CHAT_PUSH_FCM_TOKEN_URL: 'https://localhost:9443/token',
        CHAT_PUSH_CA_FILE: '/s/ca.pem',
        CHAT_PUSH_REQUEST_TIMEOUT_MS: '2500',
      },
      files,
    );
    expect(config.apns?.urls).toEqual({
      production: 'https://localhost:8443',
      sandbox: 'https://localhost:8443',
    });
    expect(config.fcm).toMatchObject({
      fcmUrl: 'https://localhost:9443',
      tokenUrl: 'https://localhost:9443/token',
      ca: 'CA PEM',
    });
    expect(config.webpush).toMatchObject({ ca: 'CA PEM', requestTimeoutMs: 2500 });
  });

  it.each([
    [{ CHAT_PUSH_APNS_KEY_ID: 'X' }, 'CHAT_PUSH_APNS_KEY_ID', /without CHAT_PUSH_APNS_KEY_FILE/],
    [{ ...full, CHAT_PUSH_APNS_TEAM_ID: '' }, 'CHAT_PUSH_APNS_TEAM_ID', /required/],
    [
      { ...full, CHAT_PUSH_APNS_KEY_FILE: '/s/missing.p8' },
      'CHAT_PUSH_APNS_KEY_FILE',
      /cannot read \/s\/missing.p8 \(ENOENT\)/,
    ],
    [
      { ...full, CHAT_PUSH_APNS_KEY_FILE: '/s/rsa-as-apns.p8' },
      'CHAT_PUSH_APNS_KEY_FILE',
      /EC P-256/,
    ],
    [{ ...full, CHAT_PUSH_APNS_URL: 'http://localhost:1' }, 'CHAT_PUSH_APNS_URL', /https:/],
    [{ ...full, CHAT_PUSH_FCM_TOKEN_URL: 'not a url' }, 'CHAT_PUSH_FCM_TOKEN_URL', /not a URL/],
    [
      { CHAT_PUSH_FCM_URL: 'https://x' },
      'CHAT_PUSH_FCM_URL',
      /without CHAT_PUSH_FCM_SERVICE_ACCOUNT_FILE/,
    ],
    [
      { ...full, CHAT_PUSH_WEBPUSH_VAPID_PUBLIC_KEY: 'abc' },
      'CHAT_PUSH_WEBPUSH_VAPID_PUBLIC_KEY',
      /65 bytes/,
    ],
    [
      { ...full, CHAT_PUSH_WEBPUSH_VAPID_PRIVATE_KEY: vapid.privateKey },
      'CHAT_PUSH_WEBPUSH_VAPID_PRIVATE_KEY_FILE',
      /exactly one/,
    ],
    [
      { ...full, CHAT_PUSH_WEBPUSH_VAPID_SUBJECT: 'ops@example.com' },
      'CHAT_PUSH_WEBPUSH_VAPID_SUBJECT',
      /mailto: or https:/,
    ],
    [
      { CHAT_PUSH_WEBPUSH_VAPID_SUBJECT: 'mailto:a@b' },
      'CHAT_PUSH_WEBPUSH_VAPID_SUBJECT',
      /without CHAT_PUSH_WEBPUSH_VAPID_PUBLIC_KEY/,
    ],
    [{ CHAT_PUSH_REQUEST_TIMEOUT_MS: '0' }, 'CHAT_PUSH_REQUEST_TIMEOUT_MS', /positive integer/],
  ])('names the variable in its error: %#', (env, variable, message) => {
    const err = errorOf(() => parsePushConfig(env, files));
    expect(err.variable).toBe(variable);
    expect(err.message.startsWith(`${variable}: `)).toBe(true);
    expect(err.message).toMatch(message);
  });

  it('never puts key material in an error or in the loggable summary', () => {
    const secrets = [ecPem, rsaPem, vapid.privateKey].map((s) =>
      s.replace(/-----[A-Z ]+-----|\s/g, '').slice(-60, -4),
    );
    const messages = [
      errorOf(() =>
        parsePushConfig({ ...full, CHAT_PUSH_FCM_SERVICE_ACCOUNT_FILE: '/s/broken.json' }, files),
      ).message,
      errorOf(() =>
        parsePushConfig({ ...full, CHAT_PUSH_APNS_KEY_FILE: '/s/rsa-as-apns.p8' }, files),
      ).message,
      errorOf(() =>
        parsePushConfig({ ...full, CHAT_PUSH_WEBPUSH_VAPID_PRIVATE_KEY_FILE: '/s/apns.p8' }, files),
      ).message,
      JSON.stringify(describePushConfig(parsePushConfig(full, files))),
    ];
    expect(messages[0]).toMatch(/^CHAT_PUSH_FCM_SERVICE_ACCOUNT_FILE: not JSON/);
    for (const text of messages) {
      for (const secret of secrets) expect(text).not.toContain(secret);
    }
    expect(JSON.parse(messages[3]!)).toEqual({
      apns: {
        keyId: 'ABC123DEFG',
        teamId: 'TEAM123456',
        urls: {
          production: 'https://api.push.apple.com',
          sandbox: 'https://api.sandbox.push.apple.com',
        },
      },
      fcm: {
        projectId: 'chat-prod',
        clientEmail: 'push@chat-prod.iam.gserviceaccount.com',
        fcmUrl: 'https://fcm.googleapis.com',
        tokenUrl: 'https://oauth2.googleapis.com/token',
      },
      webpush: { publicKey: vapid.publicKey, subject: 'mailto:ops@example.com' },
    });
  });
});
