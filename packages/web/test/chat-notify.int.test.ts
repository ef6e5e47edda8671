/**
 * The chat page's "notify me" in headless Chromium (issue 18, item 5), against registries in
 * this process (the button depends on the registry only: no nodes needed). The button shows
 * when the registry serves a VAPID key and stays hidden when it answers 404. A real
 * subscription cannot be made here: headless Chromium refuses `pushManager.subscribe`
 * ("Registration failed - permission denied", even with notifications allowed), and a
 * browser's push service is on the internet anyway. So the click is followed up to the
 * subscription, whose refusal the page shows; delivery to a subscription is covered by the
 * node's Web Push tests against a local push service.
 */
import type { Browser } from 'playwright-core';
import type { ClusterSnapshot } from '@chat/cluster';
import { generateVapidKeys } from '@chat/push';
import type { RunningRegistry } from '@chat/registry';
import { startRegistry } from '@chat/registry';
import { launchBrowser } from '@chat/testkit';
import type { WebAssets } from '../src/assets';
import { buildWebAssets } from '../src/assets';
import pino from 'pino';

const NO_NODES: ClusterSnapshot = {
  nodes: new Map(),
  ring: undefined,
  drains: new Map(),
  revision: 1,
};
const WAIT_MS = 20_000;

let browser: Browser;
let web: WebAssets;
const registries: RunningRegistry[] = [];

beforeAll(async () => {
  web = await buildWebAssets();
  browser = await launchBrowser();
});

afterAll(async () => {
  await browser?.close();
  await Promise.all(registries.map((r) => r.close()));
});

async function pageRegistry(webPushPublicKey?: string): Promise<RunningRegistry> {
  const registry = await startRegistry({
    view: { snapshot: NO_NODES, onChange: () => () => undefined },
    host: '127.0.0.1',
    port: 0,
    log: pino({ level: 'silent' }),
    web,
    devTokenSecret: 'notify-test-secret',
    ...(webPushPublicKey === undefined ? {} : { webPushPublicKey }),
  });
  registries.push(registry);
  return registry;
}

test('"notify me" shows only with a VAPID key; the click registers the worker and shows why no subscription was made', async () => {
  const vapid = generateVapidKeys('mailto:dev@localhost');
  const [withPush, withoutPush] = await Promise.all([
    pageRegistry(vapid.publicKey),
    pageRegistry(),
  ]);

  const context = await browser.newContext({ permissions: ['notifications'] });
  const page = await context.newPage();
  await page.goto(`${withoutPush.url}/chat/?user=alice&device=laptop`);
  await page.waitForSelector('#notify[data-offered="false"]', {
    state: 'attached',
    timeout: WAIT_MS,
  });
  expect(await page.isHidden('#notify-button')).toBe(true);

  const offered = await context.newPage();
  await offered.goto(`${withPush.url}/chat/?user=alice&device=laptop`);
  await offered.waitForSelector('#notify-button', { state: 'visible', timeout: WAIT_MS });
  await offered.click('#notify-button');
  await offered.waitForSelector('#notify-status[data-state="error"]', { timeout: WAIT_MS });
  expect(await offered.textContent('#notify-status')).toMatch(
    // The permission was given and the worker registered: it is the subscription that failed.
    /^notifications failed: Registration failed/,
  );
  const worker = await offered.evaluate(
    async () => (await navigator.serviceWorker.getRegistration('/chat/'))?.active?.scriptURL,
  );
  expect(worker).toBe(`${withPush.url}/chat/sw.js`);
  await context.close();

  // Notifications blocked for the site: the page says so and subscribes nothing.
  const blocked = await browser.newContext();
  const blockedPage = await blocked.newPage();
  await blockedPage.goto(`${withPush.url}/chat/?user=bob&device=laptop`);
  await blockedPage.waitForSelector('#notify-button', { state: 'visible', timeout: WAIT_MS });
  await blockedPage.click('#notify-button');
  await blockedPage.waitForSelector('#notify-status[data-state="blocked"]', { timeout: WAIT_MS });
  expect(await blockedPage.textContent('#notify-status')).toBe('blocked by the browser');
  await blocked.close();
});
