/**
 * The web chat page end to end, in headless Chromium against a real 3-node cluster (etcd,
 * Postgres, s3rver, registry serving the page): two users whose owners are different nodes chat,
 * see typing and presence, one closes the page and catches up when it comes back, ticks turn to
 * read, and an image sent by one is shown by the other. Saves screenshots of both pages.
 */
import type { Browser, BrowserContext } from 'playwright-core';
import { TestCluster, launchBrowser, saveScreenshot, waitFor } from '@chat/testkit';
import { ChatPageDriver } from './chat-page';

let cluster: TestCluster;
let browser: Browser;

beforeAll(async () => {
  cluster = await TestCluster.start({ nodes: 3, devTokens: true, web: true, s3: true });
  browser = await launchBrowser();
});

afterAll(async () => {
  await browser?.close();
  await cluster?.close();
});

/** Two users owned by different nodes, found through the registry. */
async function usersOnTwoNodes(): Promise<[string, string]> {
  const alice = await cluster.route('alice');
  for (const name of ['bob', 'carol', 'dave', 'erin', 'frank', 'grace', 'heidi', 'ivan']) {
    if ((await cluster.route(name)).node !== alice.node) return ['alice', name];
  }
  throw new Error('every candidate user is on the node of alice');
}

/** A picture worth sending: drawn by the browser, taken as a PNG. */
async function drawPicture(context: BrowserContext): Promise<Buffer> {
  const page = await context.newPage();
  await page.setViewportSize({ width: 160, height: 100 });
  await page.setContent(
    `<body style="margin:0"><div style="width:160px;height:100px;display:flex;align-items:center;
      justify-content:center;font:bold 18px sans-serif;color:#fff;
      background:linear-gradient(135deg,#1a73e8,#34b7f1)">hello from the browser</div></body>`,
  );
  const png = await page.screenshot({ clip: { x: 0, y: 0, width: 160, height: 100 } });
  await page.close();
  return png;
}

test('two users on different nodes chat, catch up after being away, see read ticks and an image', async () => {
  const [a, b] = await usersOnTwoNodes();
  const nodeA = (await cluster.route(a)).node;
  const nodeB = (await cluster.route(b)).node;
  const contextA = await browser.newContext();
  const contextB = await browser.newContext();

  const alice = await ChatPageDriver.open(contextA, cluster.registryUrl, a, 'laptop');
  let bob = await ChatPageDriver.open(contextB, cluster.registryUrl, b, 'phone');
  // Each page names the node that owns its user: the chat crosses nodes.
  expect(await alice.waitConnected(nodeA)).toBe(nodeA);
  expect(await bob.waitConnected(nodeB)).toBe(nodeB);
  expect(nodeA).not.toBe(nodeB);

  const chatId = await alice.createChat([b]);
  const greeting = `hi ${b}`;
  const reply = `hi ${a}, does typing show?`;
  await alice.send(greeting);
  await bob.waitForChat(chatId);
  await bob.openChat(chatId);
  await bob.waitForBodies([greeting]);
  // bob has the chat open and the page visible: alice's message is read.
  await alice.waitForTicks([greeting], 'read');

  await bob.send(reply);
  await alice.waitForBodies([reply]);
  await Promise.all([bob.typeSlowly('yes it does, look at this'), alice.waitForTyping(b)]);
  await alice.waitForPresence(/^online$/);

  // bob goes away (closes the page); alice writes while he is gone.
  await bob.close();
  const away = ['while you were away 1', 'while you were away 2', 'while you were away 3'];
  for (const text of away) await alice.send(text);
  await alice.waitForTicks(away, 'sent');
  expect(await alice.waitForPresence(/^last seen/)).toMatch(/^last seen \d/);

  // He comes back on the same browser and device: the old messages come from the page's own
  // copy, the new ones from the server, and alice's ticks go to delivered and then read.
  bob = await ChatPageDriver.open(contextB, cluster.registryUrl, b, 'phone');
  await bob.waitForChat(chatId);
  await waitFor(async () => expect(await bob.unread(chatId)).toBe(String(away.length)));
  await bob.openChat(chatId);
  await bob.waitForBodies([greeting, reply, ...away]);
  expect(await bob.bodies()).toEqual([greeting, reply, ...away]);
  await alice.waitForTicks(away, 'read');
  await alice.waitForPresence(/^online$/);

  // bob's tab crashes right after a message arrived (no unload handler runs): the node may
  // have had the ack and deleted the event already, so the page's own copy must have it.
  await alice.send('right before a crash');
  await bob.waitForBodies(['right before a crash']);
  const cdp = await contextB.newCDPSession(bob.page);
  const crashed = bob.page.waitForEvent('crash', { timeout: 20_000 });
  // Not awaited: the call never answers, its renderer is gone.
  cdp.send('Page.crash').catch(() => undefined);
  await crashed;
  bob = await ChatPageDriver.open(contextB, cluster.registryUrl, b, 'phone');
  await bob.openChat(chatId);
  await bob.waitForBodies(['right before a crash']);
  const shownAfterReload = [greeting, reply, ...away, 'right before a crash'];
  expect(await bob.bodies()).toEqual(shownAfterReload);

  // An image from alice is uploaded to object storage and shown on bob's page.
  const picture = await drawPicture(contextA);
  await alice.sendImage('hello.png', picture);
  const shown = await bob.waitForImage();
  expect(shown).toMatchObject({ width: 160, height: 100 });
  expect(new URL(shown.src).pathname).toContain('/chat-media/');
  await alice.waitForImage();
  await alice.send('did you get the picture?');
  await bob.waitForBodies(['did you get the picture?']);
  await alice.waitForTicks(['did you get the picture?'], 'read');

  // Nothing was shown twice.
  expect(await bob.bodies()).toEqual([...shownAfterReload, 'did you get the picture?']);
  const aliceShots = await saveScreenshot(alice.page, 'chat-alice');
  await saveScreenshot(bob.page, 'chat-bob');
  console.log(`screenshots saved next to ${aliceShots}`);
  await contextA.close();
  await contextB.close();
});

test('the sign-in form refuses invalid ids and says so', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${cluster.registryUrl}/chat/`);
  await page.fill('#signin-form input[name="user"]', 'not a valid id!');
  await page.fill('#signin-form input[name="device"]', 'laptop');
  await page.click('#signin-form button[type="submit"]');
  await page.waitForFunction(
    () => (document.querySelector('#signin-error')?.textContent ?? '') !== '',
  );
  expect(await page.textContent('#signin-error')).toMatch(/user must be 1-64 characters/);
  expect(await page.isHidden('#app')).toBe(true);
  await context.close();
});

test('a saved copy from another server (a fresh local database) is dropped, not trusted', async () => {
  const context = await browser.newContext();
  const setup = await context.newPage();
  await setup.goto(`${cluster.registryUrl}/chat/`);
  // What a previous `npm start` left in this browser: a copy far ahead of this server's inbox.
  await setup.evaluate(() => {
    const key = 'chat.state.stale-erin.laptop';
    const chat = { chatId: 'old', name: 'from last time', members: ['stale-erin', 'x'] };
    const state = {
      version: 1,
      lastSeq: 5000,
      chats: [{ ...chat, lastMessageAt: 1, unread: 0, left: false }],
      messages: {},
      receipts: {},
    };
    localStorage.setItem(key, JSON.stringify(state));
    localStorage.setItem(`${key}.seq`, '5000');
  });
  await setup.close();
  const erin = await ChatPageDriver.open(context, cluster.registryUrl, 'stale-erin', 'laptop');
  const peerContext = await browser.newContext();
  const peer = await ChatPageDriver.open(peerContext, cluster.registryUrl, 'stale-frank', 'web');
  const chatId = await peer.createChat(['stale-erin']);
  await peer.send('new server, new history');
  // Seq 1 and 2 of this server are below the old copy's 5000: shown only because it was dropped.
  await erin.waitForChat(chatId);
  await erin.openChat(chatId);
  await erin.waitForBodies(['new server, new history']);
  expect(await erin.page.$('.chat-item[data-chat-id="old"]')).toBeNull();
  expect((await erin.connectionLog()).join('\n')).toMatch(/another server; starting fresh/);
  await context.close();
  await peerContext.close();
});
