/**
 * Media settings (CHAT_S3_*, CHAT_MEDIA_*), read apart from the rest of the node's config
 * because media is optional: without CHAT_S3_ENDPOINT the node serves text chat and answers
 * media requests with a clear error.
 */
import { DEFAULT_ALLOWED_TYPES, DEFAULT_MAX_BYTES, isTypePattern } from '@chat/media';
import type { Env } from '@chat/cluster';
import { ConfigError, EnvReader, checkProductionCredential } from '@chat/cluster';

export interface MediaConfig {
  /** `http(s)://host[:port]` of the S3 API (MinIO, S3 or any compatible store). */
  readonly endpoint: string;
  /** Where clients reach the S3 API, when not at `endpoint`: presigned URLs are signed for it. */
  readonly publicEndpoint: string;
  readonly accessKey: string;
  readonly secretKey: string;
  readonly bucket: string;
  readonly region: string;
  /** Lifetime of presigned upload and download URLs, seconds. */
  readonly urlTtlSec: number;
  /** Largest attachment, bytes. */
  readonly maxBytes: number;
  /** Allowed MIME types, exact or `type/*`. */
  readonly allowedTypes: readonly string[];
  /** Deadline of one storage request, ms. */
  readonly requestTimeoutMs: number;
}

export const defaultMediaConfig = Object.freeze({
  bucket: 'chat-media',
  region: 'us-east-1',
  urlTtlSec: 900,
  maxBytes: DEFAULT_MAX_BYTES,
  allowedTypes: DEFAULT_ALLOWED_TYPES,
  requestTimeoutMs: 5000,
});

/** The media settings, or undefined when CHAT_S3_ENDPOINT is unset; throws ConfigError. */
export function mediaConfigFromEnv(env: Env): MediaConfig | undefined {
  const r = new EnvReader(env);
  const d = defaultMediaConfig;
  const endpoint = r.optionalString('CHAT_S3_ENDPOINT');
  if (endpoint === undefined) return undefined;
  const origin = endpointFrom('CHAT_S3_ENDPOINT', endpoint);
  const publicEndpoint = endpointFrom(
    'CHAT_S3_PUBLIC_ENDPOINT',
    r.string('CHAT_S3_PUBLIC_ENDPOINT', endpoint),
  );
  const bucket = r.string('CHAT_S3_BUCKET', d.bucket);
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) {
    throw new ConfigError(
      `CHAT_S3_BUCKET must be a valid S3 bucket name, got ${JSON.stringify(bucket)}`,
    );
  }
  const types = r.list('CHAT_MEDIA_TYPES');
  const bad = types.find((t) => !isTypePattern(t));
  if (bad !== undefined) {
    throw new ConfigError(
      `CHAT_MEDIA_TYPES must list MIME types (type/subtype or type/*), got ${JSON.stringify(bad)}`,
    );
  }
  return Object.freeze({
    endpoint: origin,
    publicEndpoint,
    accessKey: r.requiredString('CHAT_S3_ACCESS_KEY', 'the access key of the object storage'),
    secretKey: productionChecked(
      r,
      r.requiredString('CHAT_S3_SECRET_KEY', 'the secret key of the object storage'),
    ),
    bucket,
    region: r.string('CHAT_S3_REGION', d.region),
    urlTtlSec: r.int('CHAT_MEDIA_URL_TTL_SEC', d.urlTtlSec, 10, 7 * 24 * 3600),
    maxBytes: r.int('CHAT_MEDIA_MAX_BYTES', d.maxBytes, 1, 5 * 1024 * 1024 * 1024),
    allowedTypes: Object.freeze(
      types.length > 0 ? types.map((t) => t.toLowerCase()) : [...d.allowedTypes],
    ),
    requestTimeoutMs: r.int('CHAT_S3_TIMEOUT_MS', d.requestTimeoutMs, 100, 120_000),
  });
}

/** The origin of an http(s) URL without a path; ConfigError naming `name` otherwise. */
function endpointFrom(name: string, raw: string): string {
  let url: URL | undefined;
  try {
    url = new URL(raw);
  } catch {
    url = undefined;
  }
  if (
    url === undefined ||
    (url.protocol !== 'http:' && url.protocol !== 'https:') ||
    (url.pathname !== '/' && url.pathname !== '') ||
    url.search !== '' ||
    url.username !== ''
  ) {
    throw new ConfigError(
      `${name} must be an http(s) URL without a path, got ${JSON.stringify(raw)}`,
    );
  }
  return url.origin;
}

function productionChecked(r: EnvReader, secretKey: string): string {
  if (r.string('NODE_ENV', 'development') === 'production')
    checkProductionCredential('CHAT_S3_SECRET_KEY', secretKey);
  return secretKey;
}
