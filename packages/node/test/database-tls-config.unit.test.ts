/**
 * DATABASE_URL's TLS parameters are checked at startup: a typo in sslmode or an unreadable CA
 * file stops the node with a message naming the variable, instead of failing every connection
 * later; production refuses sslmode=no-verify (any certificate believed).
 */
import { nodeConfigFromEnv } from '../src/config';

const url = (params: string): string => `postgres://chat@127.0.0.1:5432/chat?${params}`;
// Any readable file will do as far as the configuration is concerned.
const readable = __filename;

it('accepts sslmode=verify-full with a readable sslrootcert', () => {
  const env = { DATABASE_URL: url(`sslmode=verify-full&sslrootcert=${readable}`) };
  expect(nodeConfigFromEnv(env).config.databaseUrl).toBe(env.DATABASE_URL);
});

it.each([
  [
    'sslmode=verify-full&sslrootcert=/nonexistent/ca.crt',
    'sslrootcert=/nonexistent/ca.crt cannot be read',
  ],
  ['sslmode=verify-full&sslcert=/nonexistent/c.crt', 'sslcert=/nonexistent/c.crt cannot be read'],
  ['sslmode=verify_full', 'sslmode=verify_full is not one of disable, prefer, require'],
])('refuses %s', (params, message) => {
  expect(() => nodeConfigFromEnv({ DATABASE_URL: url(params) })).toThrow(
    `DATABASE_URL: ${message}`,
  );
});

it('refuses sslmode=no-verify in production only', () => {
  const env = { DATABASE_URL: url('sslmode=no-verify') };
  expect(nodeConfigFromEnv(env).config.databaseUrl).toBe(env.DATABASE_URL);
  expect(() =>
    nodeConfigFromEnv({
      ...env,
      NODE_ENV: 'production',
      CHAT_AUTH_SECRET: 'Zq81-a-real-secret-of-32-bytes-or-more!!',
    }),
  ).toThrow('DATABASE_URL: sslmode=no-verify believes any server certificate');
});
