/**
 * Checks of the TLS parameters of a DATABASE_URL, made where the URL is configured so that a
 * mistake stops the process with a message instead of failing every connection later (or,
 * worse, connecting with a meaning nobody intended). node-postgres (pg-connection-string) reads
 * them: `sslmode=verify-full` verifies the server's certificate and name against `sslrootcert`
 * (a PEM file; without it the system's CAs), `sslcert`/`sslkey` are a client certificate.
 * Without `uselibpqcompat=true`, `prefer`, `require` and `verify-ca` verify fully too.
 */
import { accessSync, constants } from 'node:fs';

const SSL_MODES = ['disable', 'prefer', 'require', 'verify-ca', 'verify-full', 'no-verify'];
const FILE_PARAMS = ['sslrootcert', 'sslcert', 'sslkey'];

/**
 * Why `url`'s TLS parameters are unusable, or undefined when they are fine. With `production`,
 * `sslmode=no-verify` (encrypted, but any certificate is believed) is refused as well.
 *
 * @example databaseTlsProblem('postgres://db/chat?sslmode=verify-ful', false) // 'sslmode ...'
 */
export function databaseTlsProblem(url: string, production: boolean): string | undefined {
  let params: URLSearchParams;
  try {
    params = new URL(url).searchParams;
  } catch {
    return 'is not a URL';
  }
  const mode = params.get('sslmode');
  if (mode !== null && !SSL_MODES.includes(mode))
    return `sslmode=${mode} is not one of ${SSL_MODES.join(', ')}`;
  if (mode === 'no-verify' && production)
    return 'sslmode=no-verify believes any server certificate; use verify-full with sslrootcert';
  for (const name of FILE_PARAMS) {
    const file = params.get(name);
    if (file === null) continue;
    try {
      accessSync(file, constants.R_OK);
    } catch {
      return `${name}=${file} cannot be read`;
    }
  }
  return undefined;
}
