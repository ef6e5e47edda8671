/**
 * The web chat over TLS, in headless Chromium: the page is loaded from the nginx edge over https
 * and connects over wss through the edge to each user's owner node; two users on different nodes
 * chat. The browser accepts the edge's certificate only (pinned), nothing else unknown.
 */
import { readFileSync } from 'node:fs';
import type { Browser } from 'playwright-core';
import type { LocalTls } from '@chat/testkit';
import { TestCluster, createLocalTls, launchBrowser } from '@chat/testkit';
import { ChatPageDriver } from './chat-page';

let tls: LocalTls;
let cluster: TestCluster;
let browser: Browser;

beforeAll(async () => {
  tls = await createLocalTls();
  cluster = await TestCluster.start({ nodes: 2, tls, edge: true, devTokens: true, web: true });
  browser = await launchBrowser({
    trustCertificates: [readFileSync(cluster.edge!.certFile, 'utf8')],
  });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await cluster?.close();
  await tls?.close();
});

async function userOn(nodeId: string, prefix: string): Promise<string> {
  for (let i = 0; i < 200; i++) {
    if ((await cluster.route(`${prefix}-${i}`)).node === nodeId) return `${prefix}-${i}`;
  }
  throw new Error(`no user of ${nodeId} among 200`);
}

test('two users on two nodes chat in the page served over https, over wss', async () => {
  const [a, b] = [await userOn('node-1', 'alice'), await userOn('node-2', 'bob')];
  const alicePage = await ChatPageDriver.open(
    await browser.newContext(),
    cluster.publicUrl,
    a,
    'laptop',
  );
  const bobPage = await ChatPageDriver.open(
    await browser.newContext(),
    cluster.publicUrl,
    b,
    'phone',
  );
  expect(alicePage.page.url()).toMatch(/^https:\/\/127\.0\.0\.1:\d+\/chat\//);
  expect(await alicePage.waitConnected('node-1')).toBe('node-1');
  expect(await bobPage.waitConnected('node-2')).toBe('node-2');

  const chatId = await alicePage.createChat([b]);
  await alicePage.send('hello over wss');
  await bobPage.waitForChat(chatId);
  await bobPage.openChat(chatId);
  await bobPage.waitForBodies(['hello over wss']);
});

test('a certificate the browser was not told about is refused', async () => {
  const strict = await launchBrowser();
  try {
    const page = await (await strict.newContext()).newPage();
    await expect(page.goto(`${cluster.publicUrl}/chat/`)).rejects.toThrow(
      /ERR_CERT_AUTHORITY_INVALID/,
    );
  } finally {
    await strict.close();
  }
});
