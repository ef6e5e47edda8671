import { createECDH, randomBytes } from 'node:crypto';
import { runInNewContext } from 'node:vm';
import { generateVapidKeys, pushData } from '@chat/push';
import { validatePushTarget } from '@chat/protocol';
import { buildWebAssets } from '../src/assets';
import {
  base64UrlToBytes,
  browserCanPush,
  fetchVapidKey,
  notifyStatusText,
  offersNotifications,
  permissionState,
  pushTargetOf,
  sameKey,
} from '../src/chat/notify';
import { DEFAULT_TITLE, notificationFor } from '../src/chat/push-notification';

const vapid = generateVapidKeys('mailto:dev@localhost');

describe('"notify me": when the page offers it', () => {
  const chromeNavigator = { serviceWorker: {} };
  const chromeWindow = { PushManager: class {}, Notification: class {} };

  it('needs a service worker, the Push API and notifications', () => {
    expect(browserCanPush(chromeNavigator, chromeWindow)).toBe(true);
    expect(browserCanPush({}, chromeWindow)).toBe(false);
    expect(browserCanPush(chromeNavigator, { Notification: class {} })).toBe(false);
    expect(browserCanPush(chromeNavigator, { PushManager: class {} })).toBe(false);
  });

  it('shows the button only with a key from the registry', () => {
    expect(offersNotifications(chromeNavigator, chromeWindow, vapid.publicKey)).toBe(true);
    expect(offersNotifications(chromeNavigator, chromeWindow, undefined)).toBe(false);
    expect(offersNotifications({}, chromeWindow, vapid.publicKey)).toBe(false);
  });

  it('takes the key the registry serves, and nothing from a 404, a bad answer or no answer', async () => {
    const answer = (ok: boolean, body: unknown) => async (url: string) => {
      expect(url).toBe('http://127.0.0.1:8080/v1/push/vapid-public-key');
      return { ok, json: async () => body };
    };
    const origin = 'http://127.0.0.1:8080';
    expect(await fetchVapidKey(origin, answer(true, { publicKey: vapid.publicKey }))).toBe(
      vapid.publicKey,
    );
    expect(await fetchVapidKey(origin, answer(false, { error: 'NOT_FOUND' }))).toBe(undefined);
    expect(await fetchVapidKey(origin, answer(true, { publicKey: 'short' }))).toBe(undefined);
    expect(await fetchVapidKey(origin, answer(true, null))).toBe(undefined);
    const refused = async (): Promise<never> => {
      throw new TypeError('fetch failed');
    };
    expect(await fetchVapidKey(origin, refused)).toBe(undefined);
  });
});

describe('"notify me": keys and the subscription', () => {
  it('decodes the VAPID key to the 65 raw bytes of the P-256 point', () => {
    const bytes = base64UrlToBytes(vapid.publicKey);
    expect(Buffer.from(bytes)).toEqual(Buffer.from(vapid.publicKey, 'base64url'));
    expect(bytes.length).toBe(65);
    expect(bytes[0]).toBe(0x04);
    // '-' and '_' are base64url's; padding is accepted.
    expect([...base64UrlToBytes('-_8=')]).toEqual([0xfb, 0xff]);
    expect(() => base64UrlToBytes('a+b/')).toThrow('not base64url');
    expect(() => base64UrlToBytes('abcde')).toThrow('not base64url');
  });

  it('tells a subscription made for an earlier key from one made for this key', () => {
    const key = base64UrlToBytes(vapid.publicKey);
    const other = base64UrlToBytes(generateVapidKeys('mailto:dev@localhost').publicKey);
    expect(sameKey(key.slice().buffer, key)).toBe(true);
    expect(sameKey(other.buffer, key)).toBe(false);
    expect(sameKey(null, key)).toBe(false);
  });

  it('turns a browser subscription into a target the node accepts', () => {
    const ecdh = createECDH('prime256v1');
    ecdh.generateKeys();
    const json = {
      endpoint: 'https://fcm.googleapis.com/fcm/send/abc:def',
      expirationTime: null,
      keys: {
        p256dh: ecdh.getPublicKey().toString('base64url'),
        auth: randomBytes(16).toString('base64url'),
      },
    };
    const target = pushTargetOf(json);
    expect(target).toEqual({ kind: 'webpush', endpoint: json.endpoint, keys: json.keys });
    expect(validatePushTarget(target, 1)).toEqual(target);
    expect(() => pushTargetOf({ keys: json.keys })).toThrow(/without an endpoint/);
    expect(() => pushTargetOf({ endpoint: json.endpoint, keys: { auth: 'x' } })).toThrow(
      /without its p256dh and auth keys/,
    );
  });

  it('says what happened', () => {
    expect(permissionState('granted')).toBe(undefined);
    expect(permissionState('denied')).toBe('blocked');
    expect(permissionState('default')).toBe('dismissed');
    expect(notifyStatusText('on')).toBe('notifications on');
    expect(notifyStatusText('blocked')).toBe('blocked by the browser');
    expect(notifyStatusText('error', 'push service not available')).toBe(
      'notifications failed: push service not available',
    );
  });
});

describe('what the service worker shows', () => {
  const base = { chatId: 'c1', collapseId: 'c1:w42', badge: 3, ttlSeconds: 60 };

  it('is content-free unless the payload carries the title previews allow', () => {
    const plain = notificationFor(JSON.stringify(pushData(base)));
    expect(plain).toEqual({
      title: DEFAULT_TITLE,
      options: { body: '3 unread', tag: 'c1:w42', data: { chatId: 'c1' } },
    });
    const preview = notificationFor(
      JSON.stringify(pushData({ ...base, title: 'New message from alice' })),
    );
    expect(preview.title).toBe('New message from alice');
  });

  it('still shows the default for an empty, foreign or broken payload', () => {
    for (const payload of [null, '', 'not json', '[1,2]', '{"title":7,"badge":"x"}']) {
      expect(notificationFor(payload)).toEqual({ title: DEFAULT_TITLE, options: { data: {} } });
    }
  });
});

describe('the service worker bundle at /chat/sw.js', () => {
  /** Runs the bundle against a fake worker scope and returns its listeners and what it did. */
  async function loadWorker(openPages: { url: string }[]) {
    const web = await buildWebAssets();
    const asset = web.get('/chat/sw.js');
    expect(asset?.contentType).toBe('text/javascript; charset=utf-8');
    const listeners = new Map<string, (e: unknown) => void>();
    const shown: { title: string; options: unknown }[] = [];
    const focused: string[] = [];
    const opened: string[] = [];
    const scope = 'http://127.0.0.1:8080/chat/';
    const self = {
      registration: {
        scope,
        showNotification: async (title: string, options: unknown) => {
          shown.push({ title, options });
        },
      },
      clients: {
        matchAll: async () =>
          openPages.map((p) => ({ url: p.url, focus: async () => focused.push(p.url) })),
        openWindow: async (url: string) => opened.push(url),
        claim: async () => undefined,
      },
      skipWaiting: async () => undefined,
      addEventListener: (type: string, listener: (e: unknown) => void) =>
        listeners.set(type, listener),
    };
    runInNewContext(asset!.body.toString('utf8'), { self });
    /** Dispatches an event and waits for what it handed to waitUntil. */
    const dispatch = async (type: string, event: object): Promise<void> => {
      const work: Promise<unknown>[] = [];
      listeners.get(type)!({ ...event, waitUntil: (p: Promise<unknown>) => work.push(p) });
      await Promise.all(work);
    };
    return { listeners, shown, focused, opened, dispatch, scope };
  }

  it('shows a notification for a push and brings the chat page forward on a click', async () => {
    const worker = await loadWorker([
      { url: 'http://127.0.0.1:8080/dashboard/' },
      { url: 'http://127.0.0.1:8080/chat/?user=alice' },
    ]);
    expect([...worker.listeners.keys()].sort()).toEqual([
      'activate',
      'install',
      'notificationclick',
      'push',
    ]);
    const payload = JSON.stringify(
      pushData({ chatId: 'c9', collapseId: 'c9', badge: 1, ttlSeconds: 60 }),
    );
    await worker.dispatch('push', { data: { text: () => payload } });
    await worker.dispatch('push', { data: null });
    expect(worker.shown).toEqual([
      { title: DEFAULT_TITLE, options: { body: '1 unread', tag: 'c9', data: { chatId: 'c9' } } },
      { title: DEFAULT_TITLE, options: { data: {} } },
    ]);
    let closed = 0;
    await worker.dispatch('notificationclick', { notification: { close: () => closed++ } });
    expect(closed).toBe(1);
    expect(worker.focused).toEqual(['http://127.0.0.1:8080/chat/?user=alice']);
    expect(worker.opened).toEqual([]);
  });

  it('opens the chat page when none is open', async () => {
    const worker = await loadWorker([]);
    await worker.dispatch('notificationclick', { notification: { close: () => undefined } });
    expect(worker.opened).toEqual([worker.scope]);
  });
});
