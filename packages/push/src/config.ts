import { createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
// The subpath, not the barrel: the barrel loads etcd3, which push has no use for.
import { ConfigError } from '@chat/cluster/env';
import type { ApnsProviderOptions } from './apns-provider';
import { APNS_URLS } from './apns-provider';
import type { FcmProviderOptions, FcmServiceAccount } from './fcm-provider';
import { FCM_URL, GOOGLE_TOKEN_URL } from './fcm-provider';
import type { VapidKeys, WebPushProviderOptions } from './webpush-provider';

/** Which providers are on and how to reach them; a provider left unconfigured is absent. */
export interface PushConfig {
  readonly apns?: ApnsProviderOptions;
  readonly fcm?: FcmProviderOptions;
  readonly webpush?: WebPushProviderOptions;
}

/**
 * A push setting that is missing or wrong; `variable` names the environment variable. A
 * ConfigError like every other setting's, so the node stops on it the same way (exit 2).
 */
export class PushConfigError extends ConfigError {
  override readonly name = 'PushConfigError';
  readonly code = 'PUSH_CONFIG';
  constructor(
    readonly variable: string,
    problem: string,
  ) {
    super(`${variable}: ${problem}`);
  }
}

type Env = Readonly<Record<string, string | undefined>>;
type ReadText = (path: string) => string;

const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;

/**
 * Reads the push settings from the environment. Credentials come from files (or, for the
 * VAPID private key, a variable meant to be filled from a secret); their content never appears
 * in an error message.
 *
 * @example
 * const config = parsePushConfig(process.env);
 * const providers = createPushProviders(config);
 */
export function parsePushConfig(
  env: Env,
  readText: ReadText = (p) => readFileSync(p, 'utf8'),
): PushConfig {
  const value = (name: string): string | undefined => {
    const v = env[name]?.trim();
    return v === undefined || v === '' ? undefined : v;
  };
  const required = (name: string, because: string): string => {
    const v = value(name);
    if (v === undefined) throw new PushConfigError(name, `required when ${because} is set`);
    return v;
  };
  const file = (name: string, path: string): string => {
    try {
      return readText(path);
    } catch (err) {
      throw new PushConfigError(
        name,
        `cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
      );
    }
  };
  const httpsUrl = (name: string, fallback: string): string => {
    const v = value(name) ?? fallback;
    let url: URL;
    try {
      url = new URL(v);
    } catch {
      throw new PushConfigError(name, `not a URL: ${v}`);
    }
    if (url.protocol !== 'https:')
      throw new PushConfigError(name, `must be an https: URL, got ${v}`);
    return v;
  };

  const requestTimeoutMs = positiveInt(
    value('CHAT_PUSH_REQUEST_TIMEOUT_MS'),
    'CHAT_PUSH_REQUEST_TIMEOUT_MS',
  );
  const caFile = value('CHAT_PUSH_CA_FILE');
  const ca = caFile === undefined ? undefined : file('CHAT_PUSH_CA_FILE', caFile);
  const common = { requestTimeoutMs, ...(ca === undefined ? {} : { ca }) };

  const config: {
    apns?: ApnsProviderOptions;
    fcm?: FcmProviderOptions;
    webpush?: WebPushProviderOptions;
  } = {};

  const apnsKeyFile = value('CHAT_PUSH_APNS_KEY_FILE');
  if (apnsKeyFile === undefined) {
    rejectStray(
      env,
      [
        'CHAT_PUSH_APNS_KEY_ID',
        'CHAT_PUSH_APNS_TEAM_ID',
        'CHAT_PUSH_APNS_URL',
        'CHAT_PUSH_APNS_SANDBOX_URL',
      ],
      'CHAT_PUSH_APNS_KEY_FILE',
    );
  } else {
    const signingKey = file('CHAT_PUSH_APNS_KEY_FILE', apnsKeyFile);
    requireKey(
      'CHAT_PUSH_APNS_KEY_FILE',
      signingKey,
      'ec',
      'an EC P-256 private key in PEM (the .p8 file from Apple)',
    );
    config.apns = {
      ...common,
      signingKey,
      keyId: required('CHAT_PUSH_APNS_KEY_ID', 'CHAT_PUSH_APNS_KEY_FILE'),
      teamId: required('CHAT_PUSH_APNS_TEAM_ID', 'CHAT_PUSH_APNS_KEY_FILE'),
      urls: {
        production: httpsUrl('CHAT_PUSH_APNS_URL', APNS_URLS.production),
        sandbox: httpsUrl(
          'CHAT_PUSH_APNS_SANDBOX_URL',
          value('CHAT_PUSH_APNS_URL') ?? APNS_URLS.sandbox,
        ),
      },
    };
  }

  const fcmFile = value('CHAT_PUSH_FCM_SERVICE_ACCOUNT_FILE');
  if (fcmFile === undefined) {
    rejectStray(
      env,
      ['CHAT_PUSH_FCM_URL', 'CHAT_PUSH_FCM_TOKEN_URL'],
      'CHAT_PUSH_FCM_SERVICE_ACCOUNT_FILE',
    );
  } else {
    config.fcm = {
      ...common,
      serviceAccount: serviceAccount(file('CHAT_PUSH_FCM_SERVICE_ACCOUNT_FILE', fcmFile)),
      fcmUrl: httpsUrl('CHAT_PUSH_FCM_URL', FCM_URL),
      tokenUrl: httpsUrl('CHAT_PUSH_FCM_TOKEN_URL', GOOGLE_TOKEN_URL),
    };
  }

  const vapidPublic = value('CHAT_PUSH_WEBPUSH_VAPID_PUBLIC_KEY');
  if (vapidPublic === undefined) {
    rejectStray(
      env,
      [
        'CHAT_PUSH_WEBPUSH_VAPID_PRIVATE_KEY',
        'CHAT_PUSH_WEBPUSH_VAPID_PRIVATE_KEY_FILE',
        'CHAT_PUSH_WEBPUSH_VAPID_SUBJECT',
      ],
      'CHAT_PUSH_WEBPUSH_VAPID_PUBLIC_KEY',
    );
  } else {
    config.webpush = { ...common, vapid: vapidKeys(vapidPublic) };
  }
  return config;

  function vapidKeys(publicKey: string): VapidKeys {
    if (!isBase64Url(publicKey) || !isUncompressedP256(Buffer.from(publicKey, 'base64url'))) {
      throw new PushConfigError(
        'CHAT_PUSH_WEBPUSH_VAPID_PUBLIC_KEY',
        'not an uncompressed P-256 public key in base64url (65 bytes)',
      );
    }
    const inline = value('CHAT_PUSH_WEBPUSH_VAPID_PRIVATE_KEY');
    const privateFile = value('CHAT_PUSH_WEBPUSH_VAPID_PRIVATE_KEY_FILE');
    if ((inline === undefined) === (privateFile === undefined)) {
      throw new PushConfigError(
        'CHAT_PUSH_WEBPUSH_VAPID_PRIVATE_KEY_FILE',
        'set exactly one of CHAT_PUSH_WEBPUSH_VAPID_PRIVATE_KEY_FILE and CHAT_PUSH_WEBPUSH_VAPID_PRIVATE_KEY',
      );
    }
    const privateName =
      inline === undefined
        ? 'CHAT_PUSH_WEBPUSH_VAPID_PRIVATE_KEY_FILE'
        : 'CHAT_PUSH_WEBPUSH_VAPID_PRIVATE_KEY';
    const privateKey = inline ?? file(privateName, privateFile!).trim();
    if (!isBase64Url(privateKey) || Buffer.from(privateKey, 'base64url').length !== 32) {
      throw new PushConfigError(privateName, 'not a P-256 private key in base64url (32 bytes)');
    }
    const subject = required(
      'CHAT_PUSH_WEBPUSH_VAPID_SUBJECT',
      'CHAT_PUSH_WEBPUSH_VAPID_PUBLIC_KEY',
    );
    if (!/^(mailto:|https:\/\/)/.test(subject)) {
      throw new PushConfigError(
        'CHAT_PUSH_WEBPUSH_VAPID_SUBJECT',
        `must be a mailto: or https: URL, got ${subject}`,
      );
    }
    return { publicKey, privateKey, subject };
  }
}

function positiveInt(raw: string | undefined, name: string): number {
  if (raw === undefined) return DEFAULT_REQUEST_TIMEOUT_MS;
  if (!/^\d+$/.test(raw) || Number(raw) <= 0)
    throw new PushConfigError(name, `must be a positive integer, got ${raw}`);
  return Number(raw);
}

/** A provider's settings without its credential are a mistake, not "provider off". */
function rejectStray(env: Env, names: readonly string[], credential: string): void {
  const stray = names.find((n) => (env[n]?.trim() ?? '') !== '');
  if (stray !== undefined) throw new PushConfigError(stray, `set without ${credential}`);
}

function requireKey(name: string, pem: string, type: 'ec' | 'rsa', what: string): void {
  try {
    const key = createPrivateKey(pem);
    if (key.asymmetricKeyType !== type) throw new Error('wrong type');
    if (type === 'ec' && key.asymmetricKeyDetails?.namedCurve !== 'prime256v1')
      throw new Error('wrong curve');
  } catch {
    // The parser's own message could quote the input; say only what was expected.
    throw new PushConfigError(name, `not ${what}`);
  }
}

function serviceAccount(text: string): FcmServiceAccount {
  const name = 'CHAT_PUSH_FCM_SERVICE_ACCOUNT_FILE';
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    // JSON.parse quotes the text around the error, which may be the private key.
    throw new PushConfigError(name, 'not JSON (expected a Google service-account key file)');
  }
  const field = (key: string): string => {
    const v = json[key];
    if (typeof v !== 'string' || v === '')
      throw new PushConfigError(
        name,
        `missing "${key}" (expected a Google service-account key file)`,
      );
    return v;
  };
  if (json['type'] !== 'service_account')
    throw new PushConfigError(name, '"type" is not "service_account"');
  const privateKey = field('private_key');
  requireKey(name, privateKey, 'rsa', 'an RSA private key in "private_key"');
  const privateKeyId = json['private_key_id'];
  return {
    projectId: field('project_id'),
    clientEmail: field('client_email'),
    privateKey,
    ...(typeof privateKeyId === 'string' && privateKeyId !== '' ? { privateKeyId } : {}),
  };
}

function isBase64Url(text: string): boolean {
  return /^[A-Za-z0-9_-]+$/.test(text);
}

function isUncompressedP256(key: Buffer): boolean {
  return key.length === 65 && key[0] === 0x04;
}

/** A summary safe to log: which providers are on and where they send; no key material. */
export function describePushConfig(config: PushConfig): Record<string, unknown> {
  return {
    apns: config.apns && {
      keyId: config.apns.keyId,
      teamId: config.apns.teamId,
      urls: config.apns.urls,
    },
    fcm: config.fcm && {
      projectId: config.fcm.serviceAccount.projectId,
      clientEmail: config.fcm.serviceAccount.clientEmail,
      fcmUrl: config.fcm.fcmUrl,
      tokenUrl: config.fcm.tokenUrl,
    },
    webpush: config.webpush && {
      publicKey: config.webpush.vapid.publicKey,
      subject: config.webpush.vapid.subject,
    },
  };
}
