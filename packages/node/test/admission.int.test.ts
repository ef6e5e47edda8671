/**
 * Per-user and per-address admission (issue 16, item 8): one token, or one host, reconnecting in
 * a tight loop is refused with 429 + Retry-After on its own, while another user still connects
 * promptly. The node's own bucket is kept small here (50 connects, 50/s), so that without the
 * per-user and per-address buckets the flood would use it up and the other user would get 503.
 *
 * Clients are bare HTTP upgrades over node:net (each admitted one is closed at once: a
 * reconnect loop), from 127.0.0.1 or, for the flooding host, 127.0.0.2.
 */
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import type { SingleNode } from '@chat/testkit';
import { startSingleNode, testToken, waitFor } from '@chat/testkit';

const NODE_ADMIT = { CHAT_ADMIT_RATE: '50', CHAT_ADMIT_BURST: '50' };
const FLOOD_MAX_ATTEMPTS = 400;
const FLOOD_MAX_MS = 4000;
const FLOOD_CONCURRENCY = 8;
/** The other user's connect must take less than this while the flood runs. */
const PROMPT_MS = 500;

interface Upgrade {
  readonly status: number;
  readonly retryAfter: string | undefined;
  readonly ms: number;
}

/** One upgrade request: the status line and Retry-After; the socket is closed right after. */
function upgrade(
  wsUrl: string,
  token: string,
  localAddress = '127.0.0.1',
  forwardedFor?: string,
): Promise<Upgrade> {
  const url = new URL(wsUrl);
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const socket = connect({ host: url.hostname, port: Number(url.port), localAddress });
    let head = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error('no upgrade answer within 5 s'));
    }, 5000);
    socket.setEncoding('latin1');
    socket.on('connect', () => {
      socket.write(
        `GET ${url.pathname}?token=${token} HTTP/1.1\r\nHost: ${url.host}\r\n` +
          `Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n` +
          `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\n` +
          `Sec-WebSocket-Protocol: chat.v1.json\r\n` +
          (forwardedFor === undefined ? '' : `X-Forwarded-For: ${forwardedFor}\r\n`) +
          `\r\n`,
      );
    });
    socket.on('data', (chunk: string) => {
      head += chunk;
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      clearTimeout(timer);
      socket.destroy();
      const lines = head.slice(0, end).split('\r\n');
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(lines[0] ?? '')?.[1]);
      const retryAfter = lines
        .find((l) => /^retry-after:/i.test(l))
        ?.split(':')[1]
        ?.trim();
      resolve({ status, retryAfter, ms: performance.now() - started });
    });
    socket.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

interface Flood {
  readonly statuses: Map<number, number>;
  readonly attempts: number;
  readonly retryAfters: Set<string>;
}

/** Upgrades in a tight loop while `whileRunning` runs, within the attempt and time bounds. */
async function flood(
  next: () => { url: string; token: string; localAddress: string },
  whileRunning: (answered: () => number) => Promise<void>,
): Promise<Flood> {
  const statuses = new Map<number, number>();
  const retryAfters = new Set<string>();
  let attempts = 0;
  let answered = 0;
  let stopped = false;
  const deadline = Date.now() + FLOOD_MAX_MS;
  const worker = async (): Promise<void> => {
    while (!stopped && attempts < FLOOD_MAX_ATTEMPTS && Date.now() < deadline) {
      attempts++;
      const { url, token, localAddress } = next();
      const result = await upgrade(url, token, localAddress);
      answered++;
      statuses.set(result.status, (statuses.get(result.status) ?? 0) + 1);
      if (result.retryAfter !== undefined) retryAfters.add(result.retryAfter);
    }
  };
  const workers = Array.from({ length: FLOOD_CONCURRENCY }, () => worker());
  try {
    await whileRunning(() => answered);
  } finally {
    stopped = true;
    await Promise.all(workers);
  }
  return { statuses, attempts, retryAfters };
}

/** The other user connects `times` times during the flood; every connect must be prompt. */
async function otherUserConnects(
  url: string,
  times: number,
  floodAnswered: () => number,
): Promise<Upgrade[]> {
  const results: Upgrade[] = [];
  // The flood goes first: past 60 answers it would have used up the node's bucket (50) alone.
  await waitFor(() => expect(floodAnswered()).toBeGreaterThan(60), FLOOD_MAX_MS / 2, 5);
  for (let i = 0; i < times; i++)
    results.push(await upgrade(url, testToken('bob', `d${i % 3}`), '127.0.0.1'));
  return results;
}

let harness: SingleNode | undefined;
afterEach(async () => {
  await harness?.close();
  harness = undefined;
});

describe('connection admission', () => {
  it('refuses one user reconnecting in a tight loop (429) while another connects promptly', async () => {
    harness = await startSingleNode({
      nodeId: 'admit-user',
      env: { ...NODE_ADMIT, CHAT_ADMIT_PER_USER_RATE: '5', CHAT_ADMIT_PER_USER_BURST: '20' },
    });
    const url = harness.node.url;
    const mallory = testToken('mallory', 'phone');
    let other: Upgrade[] = [];
    const result = await flood(
      () => ({ url, token: mallory, localAddress: '127.0.0.1' }),
      async (answered) => {
        other = await otherUserConnects(url, 10, answered);
      },
    );
    const ms = other.map((o) => Math.round(o.ms));
    console.log(
      `ADMIT_PER_USER flood attempts=${result.attempts} statuses=${JSON.stringify(Object.fromEntries(result.statuses))} ` +
        `retryAfter=${[...result.retryAfters].join(',')} other_user_connect_ms=${JSON.stringify(ms)} max=${Math.max(...ms)}`,
    );
    expect(other.map((o) => o.status)).toEqual(other.map(() => 101));
    expect(Math.max(...ms)).toBeLessThan(PROMPT_MS);
    // The flooding user got its burst, then 429 with Retry-After; never the node's 503.
    expect(result.statuses.get(429) ?? 0).toBeGreaterThan(50);
    expect(result.statuses.get(101) ?? 0).toBeLessThanOrEqual(20 + 5 * (FLOOD_MAX_MS / 1000));
    expect(result.statuses.get(503)).toBeUndefined();
    expect([...result.retryAfters].every((v) => Number(v) >= 1)).toBe(true);
  });

  it('refuses one address connecting in a tight loop (429) while another address connects promptly', async () => {
    harness = await startSingleNode({
      nodeId: 'admit-address',
      env: {
        ...NODE_ADMIT,
        CHAT_ADMIT_PER_ADDRESS_RATE: '5',
        CHAT_ADMIT_PER_ADDRESS_BURST: '20',
      },
    });
    const url = harness.node.url;
    // Many users from one host: the per-user limit never applies, the per-address one does.
    let n = 0;
    let other: Upgrade[] = [];
    const result = await flood(
      () => ({ url, token: testToken(`bot-${n++}`, 'd'), localAddress: '127.0.0.2' }),
      async (answered) => {
        other = await otherUserConnects(url, 10, answered);
      },
    );
    const ms = other.map((o) => Math.round(o.ms));
    console.log(
      `ADMIT_PER_ADDRESS flood attempts=${result.attempts} statuses=${JSON.stringify(Object.fromEntries(result.statuses))} ` +
        `other_user_connect_ms=${JSON.stringify(ms)} max=${Math.max(...ms)}`,
    );
    expect(other.map((o) => o.status)).toEqual(other.map(() => 101));
    expect(Math.max(...ms)).toBeLessThan(PROMPT_MS);
    expect(result.statuses.get(429) ?? 0).toBeGreaterThan(50);
    expect(result.statuses.get(503)).toBeUndefined();
  });

  describe('behind a TLS edge (all clients arrive from the edge, 127.0.0.3)', () => {
    const PER_ADDRESS = { CHAT_ADMIT_PER_ADDRESS_RATE: '1', CHAT_ADMIT_PER_ADDRESS_BURST: '3' };

    /** Five connects of one client through the edge, then one of another client. */
    async function throughEdge(env: Record<string, string>): Promise<number[]> {
      harness = await startSingleNode({ nodeId: 'admit-edge', env: { ...PER_ADDRESS, ...env } });
      const url = harness.node.url;
      const statuses: number[] = [];
      for (let i = 0; i < 5; i++) {
        const token = testToken(`user-${i}`, 'd');
        statuses.push((await upgrade(url, token, '127.0.0.3', '198.51.100.7')).status);
      }
      const other = testToken('other', 'd');
      // The client wrote an address of its own in front: the edge appended the real one.
      statuses.push((await upgrade(url, other, '127.0.0.3', '198.51.100.7, 198.51.100.8')).status);
      return statuses;
    }

    it('limits each client by the address the trusted edge forwards', async () => {
      const statuses = await throughEdge({ CHAT_TRUSTED_PROXIES: '127.0.0.3' });
      expect(statuses).toEqual([101, 101, 101, 429, 429, 101]);
    });

    it('ignores X-Forwarded-For from peers it does not trust', async () => {
      const statuses = await throughEdge({ CHAT_TRUSTED_PROXIES: '10.0.0.0/8' });
      expect(statuses).toEqual([101, 101, 101, 429, 429, 429]);
    });
  });
});
