/**
 * Reading settings from environment variables with validation that names the variable, so an
 * operator sees `CHAT_PORT must be an integer from 0 to 65535, got "http"` and not a stack trace.
 * Shared by every process that reads CHAT_* settings (node, registry), so that one variable is
 * checked by one rule everywhere.
 */
export class ConfigError extends Error {
  override readonly name: string = 'ConfigError';
}

export type Env = Readonly<Record<string, string | undefined>>;

/** pino's levels, the values CHAT_LOG_LEVEL takes on every process. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export class EnvReader {
  constructor(private readonly env: Env) {}

  string(name: string, fallback: string): string {
    const raw = this.env[name];
    return raw === undefined || raw === '' ? fallback : raw;
  }

  optionalString(name: string): string | undefined {
    const raw = this.env[name];
    return raw === undefined || raw === '' ? undefined : raw;
  }

  requiredString(name: string, hint: string): string {
    const raw = this.optionalString(name);
    if (raw === undefined) throw new ConfigError(`${name} is required: ${hint}`);
    return raw;
  }

  int(name: string, fallback: number, min: number, max: number): number {
    const raw = this.env[name];
    if (raw === undefined || raw === '') return fallback;
    const value = Number(raw);
    if (!Number.isSafeInteger(value) || value < min || value > max) {
      throw new ConfigError(
        `${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(raw)}`,
      );
    }
    return value;
  }

  list(name: string): string[] {
    const raw = this.optionalString(name);
    if (raw === undefined) return [];
    return raw
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s.length > 0);
  }

  /**
   * A comma-separated list of URLs whose scheme is one of `protocols` (e.g. `['http:', 'https:']`),
   * such as etcd endpoints; a bad item is quoted in the error.
   */
  urlList(name: string, protocols: readonly string[]): string[] {
    const items = this.list(name);
    const what = `comma-separated ${protocols.map((p) => `${p}//`).join(' or ')} URLs`;
    for (const item of items) checkUrl(name, item, protocols, what, true);
    return items;
  }

  /** An optional URL with one of `protocols`; the value is not echoed (it may carry a password). */
  optionalUrl(name: string, protocols: readonly string[]): string | undefined {
    const raw = this.optionalString(name);
    if (raw !== undefined)
      checkUrl(name, raw, protocols, `a ${protocols.map((p) => `${p}//`).join(' or ')} URL`, false);
    return raw;
  }

  /** An on/off switch: `1`/`true` or `0`/`false`; anything else is refused, not read as off. */
  flag(name: string, fallback: boolean): boolean {
    const raw = this.optionalString(name);
    if (raw === undefined) return fallback;
    if (raw === '1' || raw === 'true') return true;
    if (raw === '0' || raw === 'false') return false;
    throw new ConfigError(`${name} must be one of 1, true, 0, false, got ${JSON.stringify(raw)}`);
  }

  /** CHAT_LOG_LEVEL: one of pino's levels, checked here so that pino never throws at start. */
  logLevel(fallback: LogLevel = 'info'): LogLevel {
    return this.oneOf('CHAT_LOG_LEVEL', fallback, LOG_LEVELS);
  }

  /** CHAT_ETCD_PREFIX: the key prefix every cluster member shares; `/chat` by default. */
  etcdPrefix(): string {
    const prefix = this.string('CHAT_ETCD_PREFIX', '/chat');
    if (!prefix.startsWith('/') || prefix.replace(/\/+$/, '') === '') {
      throw new ConfigError(
        `CHAT_ETCD_PREFIX must start with / and name something, got ${JSON.stringify(prefix)}`,
      );
    }
    return prefix;
  }

  oneOf<T extends string>(name: string, fallback: T, allowed: readonly T[]): T {
    const raw = this.optionalString(name);
    if (raw === undefined) return fallback;
    if (!(allowed as readonly string[]).includes(raw)) {
      throw new ConfigError(
        `${name} must be one of ${allowed.join(', ')}, got ${JSON.stringify(raw)}`,
      );
    }
    return raw as T;
  }
}

/** Throws a ConfigError naming the variable; `echo` quotes the value (never for secrets). */
function checkUrl(
  name: string,
  raw: string,
  protocols: readonly string[],
  what: string,
  echo: boolean,
): void {
  const got = echo ? `, got ${JSON.stringify(raw)}` : '';
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError(`${name} must be ${what}${got || ', got something that is not a URL'}`);
  }
  if (!protocols.includes(url.protocol) || url.hostname === '') {
    throw new ConfigError(`${name} must be ${what}${got || `, got a ${url.protocol}// URL`}`);
  }
}

/** Shortest secret accepted when NODE_ENV=production: 32 bytes, as a random 256-bit key. */
export const MIN_SECRET_BYTES = 32;

/**
 * Values that ship in this repository (development defaults, test harness secrets, the
 * deployment examples) and must never protect a production deployment.
 */
const KNOWN_PLACEHOLDERS: readonly string[] = [
  'dev-secret',
  'dev-cluster-secret',
  'test-secret',
  'test-cluster-secret',
  'S3RVER',
  'secret',
  'password',
  'changeme',
];

/** Why `value` is a placeholder, or undefined when it is not a known one. */
export function placeholderReason(value: string): string | undefined {
  const lower = value.toLowerCase();
  if (lower.startsWith('change-me') || lower.startsWith('changeme'))
    return 'it is a placeholder from the deployment examples (change-me...)';
  if (KNOWN_PLACEHOLDERS.some((p) => p.toLowerCase() === lower))
    return 'it is a development or test default shipped in this repository';
  return undefined;
}

/**
 * Refuses a signing secret that is a known placeholder or shorter than MIN_SECRET_BYTES; the
 * value itself is never quoted.
 *
 * @example if (production) checkProductionSecret('CHAT_AUTH_SECRET', secret);
 */
export function checkProductionSecret(name: string, value: string): void {
  const reason = placeholderReason(value);
  if (reason !== undefined)
    throw new ConfigError(
      `${name} must be a random secret when NODE_ENV=production, but ${reason}; generate one with \`openssl rand -base64 48\``,
    );
  const bytes = Buffer.byteLength(value, 'utf8');
  if (bytes < MIN_SECRET_BYTES)
    throw new ConfigError(
      `${name} must be at least ${MIN_SECRET_BYTES} bytes when NODE_ENV=production, got ${bytes}; generate one with \`openssl rand -base64 48\``,
    );
}

/**
 * Refuses a credential issued elsewhere (an S3 secret key, a database password) that is a known
 * placeholder. No length rule: its issuer decides its form.
 */
export function checkProductionCredential(name: string, value: string): void {
  const reason = placeholderReason(value);
  if (reason !== undefined)
    throw new ConfigError(`${name} must not be a placeholder when NODE_ENV=production: ${reason}`);
}
