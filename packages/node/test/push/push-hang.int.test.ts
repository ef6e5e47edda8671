/**
 * Issue 18: a push service that hangs does not slow chat traffic. Recipients here have a
 * connected device and an away device with a Web Push target, so every message also queues a
 * notification; the p99 of send -> deliver is measured with a healthy push service and with
 * one that never answers (the worker's requests pile up to CHAT_PUSH_CONCURRENCY), and printed
 * as PUSH_HANG_P99_MS=<healthy>,<hanging>.
 */
import type { ChatClient } from '@chat/client';
import type { SingleNode, WebPushReceiver } from '@chat/testkit';
import { waitFor } from '@chat/testkit';
import type { WebPushNode } from './web-push-kit';
import { startWebPushNode } from './web-push-kit';

const PAIRS = 10;
const MESSAGES_PER_PHASE = 200;
const RATE_PER_SEC = 50;

let rig: WebPushNode;
let h: SingleNode;
let receiver: WebPushReceiver;
let vapidPublicKey: string;

beforeAll(async () => {
  rig = await startWebPushNode('push-hang', {
    // Every message notifies: no coalescing window.
    CHAT_PUSH_WINDOW_MS: '0',
    CHAT_PUSH_POLL_MS: '50',
    CHAT_PUSH_REQUEST_TIMEOUT_MS: '60000',
  });
  h = rig.h;
  ({ receiver, vapidPublicKey } = rig.webPush);
});
afterAll(async () => {
  await rig?.close();
});

function connect(user: string, device = 'd1'): Promise<ChatClient> {
  return rig.connect(user, device);
}

function p99(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))]!;
}

test('a hanging push service leaves the p99 of send -> deliver where a healthy one has it', async () => {
  const pairs: { sender: ChatClient; chatId: string }[] = [];
  const arrived = new Map<string, number>();
  for (let i = 0; i < PAIRS; i++) {
    const recipient = `ph-r${i}`;
    const phone = await connect(recipient, 'phone');
    await phone.registerPush({ kind: 'webpush', ...receiver.subscribe(vapidPublicKey) });
    await phone.close();
    const online = await connect(recipient, 'd1');
    online.on('event', (e) => {
      if (e.kind === 'message' && e.body !== null) arrived.set(e.body, Date.now());
    });
    const sender = await connect(`ph-s${i}`);
    const { chatId } = await sender.createChat([recipient]);
    pairs.push({ sender, chatId });
  }

  async function phase(tag: string): Promise<number> {
    const sentAt = new Map<string, number>();
    const started = Date.now();
    const sends: Promise<unknown>[] = [];
    for (let n = 0; n < MESSAGES_PER_PHASE; n++) {
      const due = started + (n * 1000) / RATE_PER_SEC;
      const wait = due - Date.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      const pair = pairs[n % PAIRS]!;
      const body = `${tag}-${n}`;
      sentAt.set(body, Date.now());
      sends.push(pair.sender.send(pair.chatId, body));
    }
    await Promise.all(sends);
    await waitFor(
      () => expect([...sentAt.keys()].filter((b) => !arrived.has(b))).toEqual([]),
      20_000,
    );
    return p99([...sentAt].map(([body, at]) => arrived.get(body)! - at));
  }

  await phase('warmup');
  const healthy = await phase('healthy');
  await waitFor(
    () => expect(receiver.delivered.length).toBeGreaterThanOrEqual(MESSAGES_PER_PHASE / 2),
    20_000,
  );
  receiver.faults.failNext(100_000, { kind: 'hang' });
  const delivered = receiver.delivered.length;
  const hanging = await phase('hanging');
  // The push service did hang: the worker's requests are stuck, nothing more was delivered.
  const stats = (await (await fetch(`${h.node.internalUrl}/v1/stats`)).json()) as {
    push: { inflight: number };
  };
  expect(stats.push.inflight).toBeGreaterThan(0);
  expect(receiver.delivered.length).toBe(delivered);
  console.log(`PUSH_HANG_P99_MS=${healthy},${hanging}`);
  // Shared 2-core machines are noisy: "unchanged" within a generous bound.
  expect(hanging).toBeLessThanOrEqual(Math.max(3 * healthy, healthy + 100));
});
