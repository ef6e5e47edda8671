/**
 * Who this tab is signed in as, and its device token. Local runs mint tokens at the registry's
 * dev endpoint (`GET /v1/dev/token`, on only with CHAT_DEV_TOKENS=1); a real deployment gives
 * the page a token from its own login instead.
 */
import { isValidId } from '@chat/protocol';

export interface Identity {
  readonly user: string;
  readonly device: string;
}

const TAB_KEY = 'chat.identity';
const DEVICE_KEY = 'chat.device';

/** `?user=&device=` in the address, else the identity this tab signed in with before. */
export function rememberedIdentity(
  search: string,
  tab: Storage,
  browser: Storage,
): Identity | undefined {
  const params = new URLSearchParams(search);
  const user = params.get('user');
  if (user !== null) {
    return { user, device: params.get('device') ?? defaultDevice(browser, user) };
  }
  const raw = tab.getItem(TAB_KEY);
  if (raw === null) return undefined;
  try {
    const parsed = JSON.parse(raw) as Partial<Identity>;
    return isValidId(parsed.user) && isValidId(parsed.device)
      ? { user: parsed.user, device: parsed.device }
      : undefined;
  } catch {
    return undefined;
  }
}

export function saveIdentity(identity: Identity, tab: Storage): void {
  tab.setItem(TAB_KEY, JSON.stringify(identity));
}

export function forgetIdentity(tab: Storage): void {
  tab.removeItem(TAB_KEY);
}

/**
 * This browser's device id for `user`, kept in localStorage: the browser is one device, so
 * closing the tab and coming back resumes where it left off (the saved chats belong to it).
 */
export function defaultDevice(browser: Storage, user: string): string {
  const key = `${DEVICE_KEY}.${user}`;
  let device = browser.getItem(key);
  if (device === null) {
    device = `web-${Math.random().toString(36).slice(2, 8)}`;
    browser.setItem(key, device);
  }
  return device;
}

/** What is wrong with a user or device id, or undefined when it is valid. */
export function invalidIdReason(what: string, value: string): string | undefined {
  return isValidId(value) ? undefined : `${what} must be 1-64 characters of A-Z a-z 0-9 . _ -`;
}

/** Asks the registry for a device token; the error says what to do when tokens are off. */
export async function fetchDevToken(registryUrl: string, identity: Identity): Promise<string> {
  const url = new URL('/v1/dev/token', registryUrl);
  url.searchParams.set('user', identity.user);
  url.searchParams.set('device', identity.device);
  const res = await fetch(url);
  const body = (await res.json().catch(() => ({}))) as { token?: string; message?: string };
  if (res.status === 404) {
    throw new Error('this registry mints no dev tokens (start it with CHAT_DEV_TOKENS=1)');
  }
  if (!res.ok || typeof body.token !== 'string') {
    throw new Error(body.message ?? `the registry answered ${res.status}`);
  }
  return body.token;
}
