/**
 * The cluster dashboard in a real headless Chromium, watching a real scale-out: a 3-node cluster
 * with a few hundred connected users (some of them chatting), node-4 started, then
 * `chatctl scale-out node-4 --rate R --wait`. The page must show node-4 appear (live, then
 * member, with its own arc on the ring), one progress bar per draining node that moves and
 * reaches 100 %, messages per second, and node-4's users once they reconnected, all without
 * reloading; when the registry restarts, "reconnecting" then "live" again; then a scale-in of
 * node-4 with its own bar. A screenshot (`dashboard.png`) is saved near the end of the
 * scale-out's drain.
 *
 * Two chat pages stay open through the scale-out: one user whose owner moves to node-4 and one
 * who stays. The staying user keeps writing through the drain; the moved page must show that it
 * was moved and reconnected to node-4, and must have every message, in order, once.
 */
import { jsonCodec } from '@chat/protocol';
import { buildRing } from '@chat/ring';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import {
  RawClient,
  TestCluster,
  chatctl,
  launchBrowser,
  saveScreenshot,
  startServiceProcess,
  waitFor,
} from '@chat/testkit';
import { ChatPageDriver } from './chat-page';

/** Connected users; about a quarter of them belong to node-4 after the scale-out. */
const USERS = 240;
/** Drain rate per node: ~20 movers per old node take ~2.5 s, long enough to watch. */
const RATE = 8;
/** Users who send messages all through the drain (owners that do not change). */
const SENDERS = 6;

const OLD = ['node-1', 'node-2', 'node-3'];
const NEW = [...OLD, 'node-4'];

let cluster: TestCluster;
let browser: Browser;
let page: Page;
const chatContexts: BrowserContext[] = [];
const clients = new Map<string, RawClient>();
let stopped = false;

function ringOf(ids: readonly string[]) {
  return buildRing(ids.map((id) => ({ id, weight: 1 })));
}

/** Runs the real chatctl against the cluster; its output in one piece, shown if it fails. */
async function chatctlOnCluster(
  args: readonly string[],
): Promise<{ code: number | null; out: string }> {
  const { code, stdout, stderr } = await chatctl(args, {
    CHAT_ETCD_ENDPOINTS: cluster.etcd.endpoint,
    CHAT_ETCD_PREFIX: cluster.prefix,
  });
  return { code, out: stdout + stderr };
}

/** Connections one raw user may open in the whole test: two moves plus a few drops. */
const MAX_CONNECTS = 8;

/**
 * Keeps one user connected like a client would, until the test stops: on `moved` + close 4001
 * it connects to the URL it was given; on any other close (ack timeout, rate limit, a socket
 * dropped under load) or a failed connect it asks the registry for the user's node again.
 * Bounded, so a node that keeps dropping users shows up as a wrong count. Acks everything,
 * answers pings.
 */
async function follow(user: string, url: string): Promise<void> {
  let target: string | undefined = url;
  let failures = 0;
  for (let attempt = 0; attempt < MAX_CONNECTS && !stopped; attempt++) {
    try {
      target ??= (await cluster.route(user)).url;
      const client = await RawClient.ready({ url: target, codec: jsonCodec, user, autoAck: true });
      if (stopped) {
        await client.close();
        return;
      }
      clients.set(user, client);
      const { code } = await client.closed;
      const moved = client.frames.find((f) => f.t === 'moved');
      target = code === 4001 && moved?.t === 'moved' ? moved.url : undefined;
      failures = 0;
    } catch {
      // Not reachable (the registry restarting, a node not serving yet): back off as a client
      // would, then look the node up again.
      target = undefined;
      failures++;
      await new Promise((resolve) => setTimeout(resolve, Math.min(2_000, 250 * 2 ** failures)));
    }
  }
}

/** What the page shows, read from its DOM. */
interface PageView {
  connection: string | null;
  rows: Record<
    string,
    { live: string | null; member: string | null; users: string; messages: string }
  >;
  arcs: string[];
  previousArcs: string[];
  drains: Record<string, { percent: number; done: string | null }>;
  marker: unknown;
}

function readPage(): Promise<PageView> {
  return page.evaluate(() => {
    const rows: PageView['rows'] = {};
    for (const tr of Array.from(document.querySelectorAll('#nodes tr[data-node]'))) {
      rows[tr.getAttribute('data-node') ?? '?'] = {
        live: tr.getAttribute('data-live'),
        member: tr.getAttribute('data-member'),
        users: tr.querySelector('[data-col="users"]')?.textContent ?? '',
        messages: tr.querySelector('[data-col="messages"]')?.textContent ?? '',
      };
    }
    const drains: PageView['drains'] = {};
    for (const el of Array.from(document.querySelectorAll('[data-drain]'))) {
      drains[el.getAttribute('data-drain') ?? '?'] = {
        percent: Number(el.getAttribute('data-percent')),
        done: el.getAttribute('data-done'),
      };
    }
    const arcsOf = (id: string): string[] =>
      Array.from(document.querySelectorAll(`#${id} path[data-arc]`))
        .filter((p) => (p.getAttribute('d') ?? '').length > 0)
        .map((p) => p.getAttribute('data-arc') ?? '?');
    return {
      connection: document.getElementById('connection')?.getAttribute('data-state') ?? null,
      rows,
      arcs: arcsOf('ring-current'),
      previousArcs: arcsOf('ring-previous'),
      drains,
      marker: (window as unknown as { __marker?: unknown }).__marker,
    };
  });
}

const OPERATOR_TOKEN = 'dashboard-test-operator-token';

beforeAll(async () => {
  cluster = await TestCluster.start({
    nodes: 3,
    web: true,
    devTokens: true,
    operatorToken: OPERATOR_TOKEN,
  });
  browser = await launchBrowser();
  page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
}, 120_000);

afterAll(async () => {
  stopped = true;
  await Promise.allSettled([...clients.values()].map((c) => c.close()));
  await Promise.allSettled(chatContexts.map((c) => c.close()));
  await browser?.close();
  await cluster?.close();
});

/**
 * Every step at its own deadline, so a slow one fails with its own assertion rather than jest's
 * timeout: page loads 130 s (dashboard 30, two chat pages 2 x 50), waitFor deadlines 215 s, chat
 * page steps 10 x 20 s, node and registry starts and the registry stop 65 s, chatctl 120 s
 * (scale-out past its waitFor, scale-in), one request 10 s: ~740 s. A passing run takes ~17 s.
 */
const TEST_TIMEOUT_MS = 780_000;

test(
  'the dashboard shows a scale-out live: node-4 appears, drains reach 100 %',
  async () => {
    const t0 = Date.now();
    // The page passes the token it was opened with on to its event stream.
    await page.goto(`${cluster.registryUrl}/dashboard/?token=${OPERATOR_TOKEN}`);
    // Set once: a reload of the page would lose it.
    await page.evaluate(() => ((window as unknown as { __marker: number }).__marker = 1));
    await waitFor(
      async () => {
        const v = await readPage();
        expect(v.connection).toBe('live');
        expect(Object.keys(v.rows)).toEqual(OLD);
        expect(v.arcs.sort()).toEqual(OLD);
        expect(v.previousArcs).toEqual([]);
      },
      20_000,
      100,
    );

    // Users connected to their owners; the movers are the ring diff.
    const before = ringOf(OLD);
    const after = ringOf(NEW);
    const users = Array.from({ length: USERS }, (_, i) => `dash-${i}`);
    const movers = users.filter((u) => before.owner(u) !== after.owner(u));
    expect(movers.length).toBeGreaterThan(USERS / 8);
    for (const u of users)
      void follow(u, cluster.node(before.owner(u)!).url).catch(() => undefined);
    await waitFor(() => expect(clients.size).toBe(USERS), 30_000, 50);
    await waitFor(
      async () => {
        const v = await readPage();
        const connected = OLD.reduce((sum, id) => sum + Number(v.rows[id]?.users ?? 0), 0);
        expect(connected).toBe(USERS);
      },
      15_000,
      100,
    );

    // A few users who stay where they are chat all through the drain: messages per second.
    const stayers = users.filter((u) => !movers.includes(u)).slice(0, SENDERS);
    const chat = (await clients.get(stayers[0]!)!.ok({ t: 'createChat', members: stayers }))
      .chatId as string;
    let sent = 0;
    let refused = 0;
    let chatting = true;
    // Four rounds a second: each sender then sends 4 frames and acks 4 x SENDERS events a second,
    // well under the per-connection frame limit.
    const chatter = (async () => {
      for (let round = 0; round < 400 && chatting && !stopped; round++) {
        await Promise.all(
          stayers.map((u) =>
            clients
              .get(u)!
              .ok({ t: 'send', chatId: chat, clientMsgId: `m-${round}`, body: `round ${round}` })
              .then(
                () => sent++,
                () => refused++,
              ),
          ),
        );
        await new Promise((resolve) => setTimeout(resolve, 250)); // pacing of the load, not a wait
      }
    })();

    await cluster.startNode('node-4');
    await waitFor(
      async () => {
        const v = await readPage();
        expect(v.rows['node-4']).toMatchObject({ live: 'true', member: 'false' });
        expect(Number(v.rows['node-1']?.messages)).toBeGreaterThan(0);
      },
      20_000,
      100,
    );

    // Watch the bars from inside the page: every value a bar shows, in order.
    await page.evaluate(() => {
      const seen: Array<[string, number]> = [];
      (window as unknown as { __percents: typeof seen }).__percents = seen;
      const record = (): void => {
        for (const el of Array.from(document.querySelectorAll('[data-drain]')))
          seen.push([
            el.getAttribute('data-drain') ?? '?',
            Number(el.getAttribute('data-percent')),
          ]);
      };
      new MutationObserver(record).observe(document.getElementById('drains')!, {
        subtree: true,
        childList: true,
        attributes: true,
        attributeFilter: ['data-percent'],
      });
    });

    // The chat pages: a user the scale-out moves to node-4, and one who stays on an old node.
    const pageUsers = Array.from({ length: 200 }, (_, i) => `web-${i}`);
    const movingUser = pageUsers.find((u) => after.owner(u) === 'node-4')!;
    const stayingUser = pageUsers.find(
      (u) => after.owner(u) === before.owner(u) && before.owner(u) !== before.owner(movingUser),
    )!;
    // Pictures of a move without a gap: node-4's frames to the moving page are held once it
    // connects there, so the page stays on its old node, "moving" to node-4 (and that node's row
    // counts it as moving out), long enough to be photographed; then they flow again. Held for
    // under CHAT_MOVE_OVERLAP_MS (3 s), so the old node never closes the connection meanwhile.
    const node4Port = new URL(cluster.node('node-4').url).port;
    let releaseNode4: () => void = () => undefined;
    const node4Held = new Promise<void>((resolve) => (releaseNode4 = resolve));
    const holdNode4 = (context: BrowserContext): Promise<void> =>
      context.routeWebSocket(
        (url) => url.port === node4Port,
        (ws) => {
          const server = ws.connectToServer();
          server.onMessage((message) => void node4Held.then(() => ws.send(message)));
        },
      );
    const openChatPage = async (
      user: string,
      setup?: (context: BrowserContext) => Promise<void>,
    ): Promise<ChatPageDriver> => {
      const context = await browser.newContext();
      chatContexts.push(context);
      await setup?.(context);
      return ChatPageDriver.open(context, cluster.registryUrl, user, 'browser');
    };
    const moving = await openChatPage(movingUser, holdNode4);
    const staying = await openChatPage(stayingUser);
    expect(await moving.waitConnected(before.owner(movingUser))).toBe(before.owner(movingUser));
    // Every text the connection indicator shows, to see the move without a gap on the page.
    await moving.page.evaluate(() => {
      const conn = document.getElementById('conn')!;
      const seen: string[] = [];
      (window as unknown as { __connTexts: string[] }).__connTexts = seen;
      new MutationObserver(() => seen.push(conn.textContent ?? '')).observe(conn, {
        childList: true,
        characterData: true,
        subtree: true,
      });
    });
    const pageChat = await staying.createChat([movingUser]);
    await staying.send('before the scale-out');
    await moving.waitForChat(pageChat);
    await moving.openChat(pageChat);
    await moving.waitForBodies(['before the scale-out']);
    const sentByPage = ['before the scale-out'];

    const movingConnections = `#nodes tr[data-node="${before.owner(movingUser)}"] [data-col="connections"]`;
    const overlapPictures = (async () => {
      try {
        await moving.page.waitForSelector('#conn[data-moving-to="node-4"]', {
          state: 'attached',
          timeout: 60_000,
        });
        await saveScreenshot(moving.page, 'chat-moving');
        await waitFor(
          async () => expect(await page.textContent(movingConnections)).toMatch(/moving out/),
          2_000,
          50,
        );
        await saveScreenshot(page, 'dashboard-moving');
        // Both pictures show the overlap: the page is still moving, on its old node.
        expect(await moving.page.getAttribute('#conn', 'data-moving-to')).toBe('node-4');
      } finally {
        releaseNode4();
      }
    })();

    const scaleOutAt = Date.now();
    const scaleOut = chatctlOnCluster([
      'scale-out',
      'node-4',
      '--rate',
      String(RATE),
      '--wait',
      '--timeout',
      '60',
    ]);
    let screenshot: string | undefined;
    let exited: { code: number | null; out: string } | undefined;
    void scaleOut.then((r) => (exited = r));
    // The staying user writes through the whole drain (typing into the page, as a person would).
    const pageWriter = (async () => {
      for (let i = 1; i <= 60 && exited === undefined && !stopped; i++) {
        const text = `during the drain ${i}`;
        await staying.send(text);
        sentByPage.push(text);
        await new Promise((resolve) => setTimeout(resolve, 200)); // pacing of the writer, not a wait
      }
    })();
    // During the drain: node-4 a member with an arc, the previous ring inside, bars moving.
    await waitFor(
      async () => {
        const v = await readPage();
        expect(v.rows['node-4']).toMatchObject({ live: 'true', member: 'true' });
        expect(v.arcs).toContain('node-4');
        expect(Object.keys(v.drains).sort()).toEqual(OLD);
        // The picture for the README: the bars well on their way (or done, on a slow run).
        const percents = Object.values(v.drains).map((d) => d.percent);
        if (screenshot === undefined && (Math.min(...percents) >= 60 || exited !== undefined))
          screenshot = await saveScreenshot(page, 'dashboard');
        expect(screenshot).toBeDefined();
      },
      60_000,
      100,
    );
    const result = await scaleOut;
    await overlapPictures;
    const drainMs = Date.now() - scaleOutAt;
    expect({ code: result.code, out: result.out }).toEqual({ code: 0, out: result.out });

    await waitFor(
      async () => {
        const v = await readPage();
        for (const id of OLD) expect(v.drains[id]).toEqual({ percent: 100, done: 'true' });
        // Movers (and the moved chat page's user) reconnected to node-4; the page counts them there.
        expect(Number(v.rows['node-4']?.users)).toBe(movers.length + 1);
      },
      20_000,
      100,
    );
    // The moved page says it was moved and reconnected to node-4, and lost nothing: every message
    // the staying user wrote during the drain is there, in order, once.
    await pageWriter;
    expect(sentByPage.length).toBeGreaterThan(2);
    await moving.waitConnected('node-4');
    expect((await moving.connection()).moves).toBeGreaterThanOrEqual(1);
    expect((await moving.connectionLog()).join('\n')).toMatch(/moved: node-\d → node-4/);
    // It moved without a gap (issue 17): connected to the old node while it joined node-4.
    const connTexts = await moving.page.evaluate(
      () => (window as unknown as { __connTexts: string[] }).__connTexts,
    );
    expect(connTexts).toContain(`moving: ${before.owner(movingUser)} → node-4`);
    expect(connTexts.filter((t) => t.startsWith('reconnecting'))).toEqual([]);
    await moving.waitForBodies(sentByPage);
    expect(await moving.bodies()).toEqual(sentByPage);
    await staying.waitForTicks(sentByPage.slice(-1), 'read');
    // And it is usable on its new node: a reply gets across and is read.
    await moving.send('still here after the move');
    await staying.waitForBodies(['still here after the move']);
    await moving.waitForTicks(['still here after the move'], 'read');
    await saveScreenshot(moving.page, 'chat-moved');
    // The pages are done: from here on the counts are the raw clients' again.
    await Promise.all(chatContexts.map((c) => c.close()));

    const percents = await page.evaluate(
      () => (window as unknown as { __percents: Array<[string, number]> }).__percents,
    );
    // Live progress: some bar showed a value between 0 and 100 before reaching 100.
    const partial = percents.filter(([, p]) => p > 0 && p < 100);
    expect(partial.length).toBeGreaterThan(0);
    chatting = false;
    await chatter;
    expect(refused).toBe(0);

    // The registry goes away and comes back on the same port: the page says so, reconnects by
    // itself and carries on without a reload.
    const port = cluster.registry.port;
    const stopAt = Date.now();
    await cluster.registry.stop();
    const stopMs = Date.now() - stopAt;
    // 0, not SIGKILL: the open event stream did not keep the registry from shutting down.
    expect(await cluster.registry.exited).toBe(0);
    await waitFor(
      async () => expect((await readPage()).connection).toBe('reconnecting'),
      10_000,
      50,
    );
    cluster.registry = await startServiceProcess({
      name: 'registry',
      script: 'packages/registry/src/main.ts',
      env: {
        CHAT_ETCD_ENDPOINTS: cluster.etcd.endpoint,
        CHAT_ETCD_PREFIX: cluster.prefix,
        CHAT_REGISTRY_HOST: '127.0.0.1',
        CHAT_REGISTRY_PORT: String(port),
        CHAT_REGISTRY_WEB: '1',
      },
    });
    await waitFor(
      async () => {
        const again = await readPage();
        expect(again.connection).toBe('live');
        expect(again.marker).toBe(1);
        expect(again.rows['node-4']).toMatchObject({ live: 'true', member: 'true' });
        expect(again.arcs.sort()).toEqual(NEW);
      },
      20_000,
      100,
    );
    // Scale-in: node-4's own bar fills as its users move back, and it leaves the ring.
    const scaleInAt = Date.now();
    const scaleIn = await chatctlOnCluster([
      'scale-in',
      'node-4',
      '--rate',
      '40',
      '--wait',
      '--timeout',
      '60',
    ]);
    const scaleInMs = Date.now() - scaleInAt;
    expect({ code: scaleIn.code, out: scaleIn.out }).toEqual({ code: 0, out: scaleIn.out });
    await waitFor(
      async () => {
        const v = await readPage();
        expect(v.rows['node-4']).toMatchObject({ live: 'true', member: 'false' });
        expect(v.arcs.sort()).toEqual(OLD);
        expect(v.drains['node-4']).toEqual({ percent: 100, done: 'true' });
        expect(Number(v.rows['node-4']?.users)).toBe(0);
        const connected = OLD.reduce((sum, id) => sum + Number(v.rows[id]?.users ?? 0), 0);
        expect(connected).toBe(USERS);
      },
      20_000,
      100,
    );

    console.log(
      `DASHBOARD_SCALE_OUT: ${movers.length} of ${USERS} users moved at ${RATE}/s per node in ` +
        `${drainMs} ms (chatctl --wait); registry stopped in ${stopMs} ms with the page open; the page showed ${new Set(percents.map(([n, p]) => `${n}:${p}`)).size} ` +
        `distinct bar values (${partial.length} partial); ${sent} messages sent; screenshot ${screenshot}; ` +
        `scale-in at 40/s took ${scaleInMs} ms; the chat pages exchanged ${sentByPage.length} messages ` +
        `during the scale-out; test ${Date.now() - t0} ms`,
    );
  },
  TEST_TIMEOUT_MS,
);
