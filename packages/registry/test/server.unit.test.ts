import { connect } from 'node:net';
import type { ClusterSnapshot } from '@chat/cluster';
import type { WebAssets } from '@chat/web';
import pino from 'pino';
import { RegistryMetrics } from '../src/metrics';
import { startRegistry } from '../src/server';
import type { RegistryOptions, RunningRegistry } from '../src/server';

const SNAPSHOT: ClusterSnapshot = {
  nodes: new Map(),
  ring: undefined,
  drains: new Map(),
  revision: 1,
};

const HTML = 'text/html; charset=utf-8';
const WEB: WebAssets = new Map([
  ['/chat/', { contentType: HTML, body: Buffer.from('<!doctype html><title>chat</title>') }],
  ['/dashboard/', { contentType: HTML, body: Buffer.from('<!doctype html><title>dash</title>') }],
  [
    '/assets/chat.js',
    { contentType: 'text/javascript; charset=utf-8', body: Buffer.from('void 0;') },
  ],
]);

const registries: RunningRegistry[] = [];
afterEach(async () => {
  await Promise.all(registries.splice(0).map((r) => r.close()));
});

/** A registry in this process on a free port, with the web pages and metrics on. */
async function start(extra: Partial<RegistryOptions> = {}): Promise<RunningRegistry> {
  const registry = await startRegistry({
    view: { snapshot: SNAPSHOT, onChange: () => () => undefined },
    host: '127.0.0.1',
    port: 0,
    log: pino({ level: 'silent' }),
    metrics: new RegistryMetrics({ defaultMetrics: false }),
    web: WEB,
    fetchJson: async () => ({}),
    ...extra,
  });
  registries.push(registry);
  return registry;
}

/** Sends `GET <target>` as written, bypassing any client-side URL parsing. */
function rawGet(port: number, target: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () =>
      socket.write(`GET ${target} HTTP/1.1\r\nHost: registry\r\nConnection: close\r\n\r\n`),
    );
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (text += chunk));
    socket.on('error', reject);
    socket.on('close', () => resolve(text));
  });
}

describe('registry HTTP server', () => {
  it('answers 400 to a request target that is no URL, and keeps serving', async () => {
    const registry = await start({ devTokenSecret: 'secret' });
    for (const target of ['//[', '//[/metrics', '//[/v1/dashboard/stream', 'http://[/chat/']) {
      const reply = await rawGet(registry.port, target);
      expect(reply.split('\r\n')[0]).toBe('HTTP/1.1 400 Bad Request');
      expect(reply).toContain('"error":"BAD_REQUEST"');
    }
    const health = await fetch(`${registry.url}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ ok: true, revision: 1 });
  });

  it('serves /metrics on the internal listener only, with or without a query string', async () => {
    const registry = await start();
    expect(registry.internalUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(new URL(registry.internalUrl!).port).not.toBe(String(registry.port));
    for (const path of ['/metrics', '/metrics?x=1']) {
      expect((await fetch(`${registry.url}${path}`)).status).toBe(404);
      const res = await fetch(`${registry.internalUrl}${path}`);
      expect(res.status).toBe(200);
      expect(await res.text()).toContain('chat_registry_requests_total');
    }
    expect((await fetch(`${registry.internalUrl}/v1/ring`)).status).toBe(404);
  });

  it('sends / to the chat page when it can sign in, else to the dashboard', async () => {
    const withTokens = await start({ devTokenSecret: 'secret' });
    const withoutTokens = await start();
    const chat = await fetch(`${withTokens.url}/`, { redirect: 'manual' });
    expect([chat.status, chat.headers.get('location')]).toEqual([302, '/chat/']);
    const dashboard = await fetch(`${withoutTokens.url}/`, { redirect: 'manual' });
    expect([dashboard.status, dashboard.headers.get('location')]).toEqual([302, '/dashboard/']);
  });

  it('serves pages that may not be framed or sniffed, and scripts that may not be sniffed', async () => {
    const registry = await start();
    for (const path of ['/chat/', '/dashboard/']) {
      const page = await fetch(`${registry.url}${path}`);
      expect(page.status).toBe(200);
      expect({
        nosniff: page.headers.get('x-content-type-options'),
        csp: page.headers.get('content-security-policy'),
        frame: page.headers.get('x-frame-options'),
      }).toEqual({ nosniff: 'nosniff', csp: "frame-ancestors 'none'", frame: 'DENY' });
    }
    const script = await fetch(`${registry.url}/assets/chat.js`);
    expect(script.status).toBe(200);
    expect(script.headers.get('x-content-type-options')).toBe('nosniff');
    expect(script.headers.get('content-security-policy')).toBeNull();
  });

  it('marks the dashboard stream nosniff, and closes with a stream open', async () => {
    const registry = await start();
    const abort = new AbortController();
    const stream = await fetch(`${registry.url}/v1/dashboard/stream`, { signal: abort.signal });
    expect(stream.status).toBe(200);
    expect(stream.headers.get('content-type')).toMatch(/^text\/event-stream/);
    expect(stream.headers.get('x-content-type-options')).toBe('nosniff');
    // close() must not wait for the client to go away.
    await registries.pop()!.close();
    abort.abort();
  });
});

describe('the Web Push key for the chat page', () => {
  const KEY = `B${'A'.repeat(86)}`;

  it("serves the nodes' VAPID public key, uncached, to any origin", async () => {
    const registry = await start({ webPushPublicKey: KEY });
    const res = await fetch(`${registry.url}/v1/push/vapid-public-key`);
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    expect(await res.json()).toEqual({ publicKey: KEY });
  });

  it('answers 404 when the cluster sends no Web Push, even with an operator token', async () => {
    const registry = await start({ operatorToken: 'secret-operator-token' });
    const res = await fetch(`${registry.url}/v1/push/vapid-public-key`);
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ error: 'NOT_FOUND' });
  });
});

describe('the dashboard with an operator token', () => {
  const TOKEN = 'operator-token-for-the-dashboard-tests';

  it('answers 401 to the page and the stream without the token or with a wrong one', async () => {
    const registry = await start({ operatorToken: TOKEN });
    for (const path of ['/dashboard/', '/v1/dashboard/stream']) {
      for (const query of ['', '?token=wrong', `?token=${TOKEN}x`]) {
        const res = await fetch(`${registry.url}${path}${query}`);
        expect({ path, query, status: res.status }).toEqual({ path, query, status: 401 });
      }
      const bearer = await fetch(`${registry.url}${path}`, {
        headers: { authorization: 'Bearer wrong' },
      });
      expect(bearer.status).toBe(401);
    }
    // Routes, the chat page and the bundles stay public.
    expect((await fetch(`${registry.url}/chat/`)).status).toBe(200);
    expect((await fetch(`${registry.url}/healthz`)).status).toBe(200);
  });

  it('serves the page and the stream with the right token, in the query or as a bearer', async () => {
    const registry = await start({ operatorToken: TOKEN });
    const page = await fetch(`${registry.url}/dashboard/?token=${TOKEN}`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<title>dash</title>');
    const abort = new AbortController();
    const stream = await fetch(`${registry.url}/v1/dashboard/stream`, {
      headers: { authorization: `Bearer ${TOKEN}` },
      signal: abort.signal,
    });
    expect(stream.status).toBe(200);
    expect(stream.headers.get('content-type')).toMatch(/^text\/event-stream/);
    abort.abort();
  });

  it('refuses the stream beyond the limit of one address', async () => {
    const registry = await start({ operatorToken: TOKEN, dashboardStreamsPerAddress: 2 });
    const abort = new AbortController();
    const open = (): Promise<Response> =>
      fetch(`${registry.url}/v1/dashboard/stream?token=${TOKEN}`, { signal: abort.signal });
    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push((await open()).status);
    expect(statuses).toEqual([200, 200, 429]);
    abort.abort();
  });
});
