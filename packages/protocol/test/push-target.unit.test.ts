import type { ClientFrame } from '../src';
import { defaultLimits, MAX_PUSH_ENDPOINT_CHARS, validateClientFrame } from '../src';
import { chatErrorOf } from './helpers';

/** base64url of `bytes` bytes, the first one `first`. */
function b64url(bytes: number, first = 1): string {
  const buf = Buffer.alloc(bytes, 7);
  buf[0] = first;
  return buf.toString('base64url');
}

const p256dh = b64url(65, 0x04);
const auth = b64url(16);
const webpush = {
  kind: 'webpush',
  endpoint: 'https://push.example.com/wpush/v2/abc',
  keys: { p256dh, auth },
};
const apns = {
  kind: 'apns',
  token: 'ab'.repeat(32),
  topic: 'com.example.chat',
  environment: 'sandbox',
};

const register = (target: unknown): ClientFrame =>
  validateClientFrame({ t: 'pushRegister', id: 9, target }, defaultLimits);

const refusal = (target: unknown): string => {
  const err = chatErrorOf(() => register(target));
  expect(err.code).toBe('BAD_REQUEST');
  expect(err.context).toEqual({ id: 9 });
  return err.message;
};

describe('pushRegister targets', () => {
  it('accepts each kind, keeping only the known fields', () => {
    expect(register({ ...webpush, expirationTime: null, extra: 1 })).toEqual({
      t: 'pushRegister',
      id: 9,
      target: webpush,
    });
    expect(register({ ...apns, junk: true })).toEqual({ t: 'pushRegister', id: 9, target: apns });
    expect(register({ kind: 'fcm', token: 'd1:APA91b_x-y.z' })).toEqual({
      t: 'pushRegister',
      id: 9,
      target: { kind: 'fcm', token: 'd1:APA91b_x-y.z' },
    });
  });

  it('accepts padded base64url keys', () => {
    const padded = { p256dh: `${p256dh}=`, auth: `${auth}==` };
    expect(register({ ...webpush, keys: padded })).toMatchObject({ target: { keys: padded } });
  });

  it('refuses unknown kinds and non-objects', () => {
    expect(refusal({ kind: 'sms', token: 'x' })).toMatch(/target.kind/);
    expect(refusal(undefined)).toMatch(/target must be an object/);
    expect(refusal(['webpush'])).toMatch(/target must be an object/);
  });

  it('refuses Web Push endpoints that are not https, too long or carry credentials', () => {
    expect(refusal({ ...webpush, endpoint: 'http://push.example.com/x' })).toMatch(/https/);
    expect(refusal({ ...webpush, endpoint: 'file:///etc/passwd' })).toMatch(/https/);
    expect(refusal({ ...webpush, endpoint: 'not a url' })).toMatch(/absolute URL/);
    expect(refusal({ ...webpush, endpoint: 'https://u:p@push.example.com/x' })).toMatch(
      /credentials/,
    );
    const long = `https://push.example.com/${'a'.repeat(MAX_PUSH_ENDPOINT_CHARS)}`;
    expect(refusal({ ...webpush, endpoint: long })).toMatch(/at most 2048/);
  });

  it('refuses Web Push keys of the wrong length, alphabet or point form', () => {
    expect(refusal({ ...webpush, keys: { p256dh: b64url(64, 4), auth } })).toMatch(
      /p256dh must be 65 bytes/,
    );
    expect(refusal({ ...webpush, keys: { p256dh: b64url(65, 2), auth } })).toMatch(
      /uncompressed P-256/,
    );
    expect(refusal({ ...webpush, keys: { p256dh: `${p256dh.slice(1)}+`, auth } })).toMatch(
      /p256dh/,
    );
    expect(refusal({ ...webpush, keys: { p256dh, auth: b64url(17) } })).toMatch(
      /auth must be 16 bytes/,
    );
    expect(refusal({ ...webpush, keys: null })).toMatch(/target.keys must be an object/);
  });

  it('refuses APNs tokens, topics and environments outside their forms', () => {
    expect(refusal({ ...apns, token: 'zz'.repeat(32) })).toMatch(/target.token/);
    expect(refusal({ ...apns, token: 'ab'.repeat(101) })).toMatch(/target.token/);
    expect(refusal({ ...apns, topic: 'com example' })).toMatch(/target.topic/);
    expect(refusal({ ...apns, environment: 'staging' })).toMatch(/sandbox or production/);
  });

  it('refuses FCM tokens that are empty, too long or hold other characters', () => {
    expect(refusal({ kind: 'fcm', token: '' })).toMatch(/target.token/);
    expect(refusal({ kind: 'fcm', token: 'a'.repeat(4097) })).toMatch(/target.token/);
    expect(refusal({ kind: 'fcm', token: 'a/b' })).toMatch(/target.token/);
  });
});

describe('pushSettings', () => {
  it('takes previews as a boolean only', () => {
    const frame = (previews: unknown): ClientFrame =>
      validateClientFrame({ t: 'pushSettings', id: 3, previews }, defaultLimits);
    expect(frame(false)).toEqual({ t: 'pushSettings', id: 3, previews: false });
    expect(frame(null)).toEqual({ t: 'pushSettings', id: 3 });
    expect(chatErrorOf(() => frame('yes')).message).toMatch(/previews must be true or false/);
  });
});
