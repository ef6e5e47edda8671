import { createHmac } from 'node:crypto';
import type { TokenClaims } from '../src';
import { signToken, verifyToken } from '../src';
import { chatErrorOf } from './helpers';

const SECRET = 'test-secret';
const NOW_MS = 1_764_250_000_000;
const EXP = NOW_MS / 1000 + 3600;
const claims: TokenClaims = { sub: 'alice', dev: 'phone-1', exp: EXP };

const b64 = (value: unknown): string =>
  Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');

/** A token built by hand, signed with HS256 over whatever header and payload it is given. */
function forge(header: unknown, payload: unknown, secret = SECRET): string {
  const input = `${b64(header)}.${b64(payload)}`;
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
}

function expectUnauthorized(token: string, secret = SECRET, nowMs = NOW_MS): void {
  const err = chatErrorOf(() => verifyToken(token, secret, nowMs));
  expect(err.code).toBe('UNAUTHORIZED');
}

/** Replaces the character at `i` with a different base64url character. */
function flipChar(s: string, i: number): string {
  const c = s[i] === 'A' ? 'B' : 'A';
  return s.slice(0, i) + c + s.slice(i + 1);
}

describe('signToken / verifyToken', () => {
  it('round-trips the claims', () => {
    const token = signToken(claims, SECRET);
    expect(token.split('.')).toHaveLength(3);
    expect(verifyToken(token, SECRET, NOW_MS)).toStrictEqual(claims);
  });

  it('produces a standard HS256 JWT', () => {
    const [header, payload, signature] = signToken(claims, SECRET).split('.') as [
      string,
      string,
      string,
    ];
    expect(JSON.parse(Buffer.from(header, 'base64url').toString())).toStrictEqual({
      alg: 'HS256',
      typ: 'JWT',
    });
    expect(JSON.parse(Buffer.from(payload, 'base64url').toString())).toStrictEqual(claims);
    const expected = createHmac('sha256', SECRET)
      .update(`${header}.${payload}`)
      .digest('base64url');
    expect(signature).toBe(expected);
  });

  it('accepts a token signed by another HS256 implementation', () => {
    const token = forge({ typ: 'JWT', alg: 'HS256' }, { exp: EXP, dev: 'd', sub: 's', iat: 1 });
    expect(verifyToken(token, SECRET, NOW_MS)).toStrictEqual({
      sub: 's',
      dev: 'd',
      exp: EXP,
      iat: 1,
    });
  });

  it('refuses to sign invalid ids', () => {
    for (const bad of [
      { ...claims, sub: '' },
      { ...claims, sub: 'a b' },
      { ...claims, dev: 'x'.repeat(65) },
    ]) {
      expect(chatErrorOf(() => signToken(bad, SECRET)).code).toBe('BAD_REQUEST');
    }
  });

  it('refuses a token signed with another secret', () => {
    expectUnauthorized(signToken(claims, 'other-secret'));
    expectUnauthorized(signToken(claims, SECRET), 'other-secret');
  });

  it('refuses a tampered payload', () => {
    const [header, , signature] = signToken(claims, SECRET).split('.') as [string, string, string];
    const evil = b64({ ...claims, sub: 'mallory' });
    expectUnauthorized(`${header}.${evil}.${signature}`);
  });

  it('refuses a tampered signature or header', () => {
    const token = signToken(claims, SECRET);
    const [header, payload, signature] = token.split('.') as [string, string, string];
    // The middle of the signature: every bit there is significant (the last char is not).
    expectUnauthorized(`${header}.${payload}.${flipChar(signature, 10)}`);
    expectUnauthorized(`${header}.${payload}.${signature.slice(0, -4)}`);
    expectUnauthorized(`${header}.${payload}.${signature}${signature}`);
    expectUnauthorized(`${b64({ alg: 'HS256', typ: 'JWT', kid: 'x' })}.${payload}.${signature}`);
  });

  it('refuses alg none, with or without a signature', () => {
    const none = `${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims)}`;
    expectUnauthorized(`${none}.`);
    expectUnauthorized(`${none}.${b64('sig')}`);
    expectUnauthorized(forge({ alg: 'none' }, claims));
    expectUnauthorized(forge({ alg: 'None' }, claims));
  });

  it.each(['HS512', 'HS384', 'RS256', 'ES256', 'hs256', '', null, undefined])(
    'refuses alg %p even with a valid HS256 signature',
    (alg) => {
      expectUnauthorized(forge({ alg, typ: 'JWT' }, claims));
      expectUnauthorized(
        `${b64({ alg, typ: 'JWT' })}.${b64(claims)}.${createHmac('sha512', SECRET).update('x').digest('base64url')}`,
      );
    },
  );

  it('refuses an expired token, and accepts it until the second it expires', () => {
    const token = signToken({ ...claims, exp: 1000 }, SECRET);
    expect(verifyToken(token, SECRET, 999_999)).toMatchObject({ exp: 1000 });
    expectUnauthorized(token, SECRET, 1_000_000);
    expectUnauthorized(token, SECRET, 2_000_000);
  });

  it.each([
    ['no exp', { sub: 'a', dev: 'd' }],
    ['string exp', { sub: 'a', dev: 'd', exp: String(EXP) }],
    ['null exp', { sub: 'a', dev: 'd', exp: null }],
    ['no sub', { dev: 'd', exp: EXP }],
    ['no dev', { sub: 'a', exp: EXP }],
    ['empty sub', { sub: '', dev: 'd', exp: EXP }],
    ['sub with a space', { sub: 'a b', dev: 'd', exp: EXP }],
    ['sub of 65 characters', { sub: 'a'.repeat(65), dev: 'd', exp: EXP }],
    ['numeric sub', { sub: 42, dev: 'd', exp: EXP }],
    ['dev with a slash', { sub: 'a', dev: 'd/1', exp: EXP }],
    ['non-ASCII dev', { sub: 'a', dev: 'télé', exp: EXP }],
    ['array payload', [claims]],
    ['string payload', 'alice'],
    ['null payload', null],
  ])('refuses a validly signed token with %s', (_label, payload) => {
    expectUnauthorized(forge({ alg: 'HS256', typ: 'JWT' }, payload));
  });

  it.each([
    ['empty', ''],
    ['one part', 'abc'],
    ['two parts', `${b64({ alg: 'HS256' })}.${b64(claims)}`],
    ['four parts', `${signToken(claims, SECRET)}.x`],
    ['empty parts', '..'],
    ['empty header', `.${b64(claims)}.sig`],
    ['bad base64 header', `!!!.${b64(claims)}.sig`],
    ['non-JSON header', `${b64('not json')}.${b64(claims)}.sig`],
    ['array header', `${b64(['HS256'])}.${b64(claims)}.sig`],
    ['spaces', 'a b.c d.e f'],
  ])('refuses a malformed token (%s)', (_label, token) => {
    expectUnauthorized(token);
  });

  it('refuses a correctly signed non-JSON payload', () => {
    const header = b64({ alg: 'HS256', typ: 'JWT' });
    const payload = b64('{"sub":"alice",');
    const sig = createHmac('sha256', SECRET).update(`${header}.${payload}`).digest('base64url');
    expectUnauthorized(`${header}.${payload}.${sig}`);
  });
});

describe('verifyToken: iat, aud, iss, leeway and key ids', () => {
  const nowSec = NOW_MS / 1000;

  it('honours exp for leewaySec more seconds, and no longer', () => {
    const token = signToken({ ...claims, exp: nowSec - 5 }, SECRET);
    expectUnauthorized(token);
    expect(verifyToken(token, SECRET, NOW_MS, { leewaySec: 6 })).toMatchObject({ sub: 'alice' });
    expect(chatErrorOf(() => verifyToken(token, SECRET, NOW_MS, { leewaySec: 5 })).code).toBe(
      'UNAUTHORIZED',
    );
  });

  it('returns iat, and refuses an iat in the future beyond the leeway or not a number', () => {
    const ok = signToken({ ...claims, iat: nowSec - 10 }, SECRET);
    expect(verifyToken(ok, SECRET, NOW_MS)).toStrictEqual({ ...claims, iat: nowSec - 10 });
    const ahead = signToken({ ...claims, iat: nowSec + 20 }, SECRET);
    expectUnauthorized(ahead);
    expect(verifyToken(ahead, SECRET, NOW_MS, { leewaySec: 30 }).iat).toBe(nowSec + 20);
    expectUnauthorized(forge({ alg: 'HS256' }, { ...claims, iat: 'yesterday' }));
  });

  it('checks aud when an audience is configured, and refuses tokens without it', () => {
    const opts = { audience: 'chat' };
    expect(
      verifyToken(signToken({ ...claims, aud: 'chat' }, SECRET), SECRET, NOW_MS, opts),
    ).toMatchObject({ aud: 'chat' });
    expect(
      verifyToken(signToken({ ...claims, aud: ['other', 'chat'] }, SECRET), SECRET, NOW_MS, opts),
    ).toMatchObject({ sub: 'alice' });
    for (const token of [
      signToken(claims, SECRET),
      signToken({ ...claims, aud: 'other' }, SECRET),
      signToken({ ...claims, aud: [] }, SECRET),
      forge({ alg: 'HS256' }, { ...claims, aud: 7 }),
    ]) {
      expect(chatErrorOf(() => verifyToken(token, SECRET, NOW_MS, opts)).code).toBe('UNAUTHORIZED');
    }
    // Not configured: any aud is accepted as it is.
    expect(verifyToken(signToken({ ...claims, aud: 'x' }, SECRET), SECRET, NOW_MS).aud).toBe('x');
  });

  it('checks iss when an issuer is configured, and refuses tokens without it', () => {
    const opts = { issuer: 'https://auth.example' };
    const good = signToken({ ...claims, iss: 'https://auth.example' }, SECRET);
    expect(verifyToken(good, SECRET, NOW_MS, opts).iss).toBe('https://auth.example');
    for (const token of [
      signToken(claims, SECRET),
      signToken({ ...claims, iss: 'https://evil.example' }, SECRET),
      forge({ alg: 'HS256' }, { ...claims, iss: ['https://auth.example'] }),
    ]) {
      expect(chatErrorOf(() => verifyToken(token, SECRET, NOW_MS, opts)).code).toBe('UNAUTHORIZED');
    }
  });

  describe('key rotation', () => {
    const keys = new Map([
      ['2026-11', 'old-key'],
      ['2026-12', 'new-key'],
    ]);

    it('verifies each token with the key its kid names', () => {
      for (const [kid, key] of keys) {
        const token = signToken(claims, key, { kid });
        expect(verifyToken(token, SECRET, NOW_MS, { keys })).toStrictEqual(claims);
      }
      // Tokens without kid still use the default secret.
      expect(verifyToken(signToken(claims, SECRET), SECRET, NOW_MS, { keys })).toStrictEqual(
        claims,
      );
    });

    it('refuses an unknown kid, a kid signed with another key, and a non-string kid', () => {
      const expectRefused = (token: string): void => {
        expect(chatErrorOf(() => verifyToken(token, SECRET, NOW_MS, { keys })).code).toBe(
          'UNAUTHORIZED',
        );
      };
      expectRefused(signToken(claims, 'retired-key', { kid: '2026-10' }));
      // An unknown kid is refused even when signed with the default secret.
      expectRefused(signToken(claims, SECRET, { kid: '2026-10' }));
      expectRefused(signToken(claims, 'old-key', { kid: '2026-12' }));
      expectRefused(forge({ alg: 'HS256', kid: 1 }, claims));
    });

    it('refuses a token without kid when there is no default secret', () => {
      const token = signToken(claims, SECRET);
      expect(chatErrorOf(() => verifyToken(token, undefined, NOW_MS, { keys })).code).toBe(
        'UNAUTHORIZED',
      );
    });
  });
});
