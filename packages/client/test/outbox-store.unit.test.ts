/**
 * The persistent outbox: sends pending when an app stops go out again from the next run's
 * client, with the same clientMsgId (the node dedupes by it); against the fake node.
 */
import WebSocket from 'ws';
import { ChatClient, ConnectionError, MemoryOutboxStore } from '../src';
import type { ChatClientEvents, ChatClientOptions, OutboxStore, PendingSend } from '../src';
import { FakeNode, waitFor } from './fake-node';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

async function startNode(): Promise<FakeNode> {
  const node = await FakeNode.start('node-1');
  cleanups.push(() => node.stop());
  return node;
}

function makeClient(url: string, outboxStore: OutboxStore): ChatClient {
  const options: ChatClientOptions = { url, token: 't', WebSocket, outboxStore };
  const client = new ChatClient(options);
  cleanups.push(() => client.close());
  return client;
}

const idsOf = (sends: readonly PendingSend[]) => sends.map((s) => s.clientMsgId).sort();

it('a new client on the same store resends exactly the sends left pending, with their ids', async () => {
  const node = await startNode();
  // The node answers one send of the first run and never the two others.
  node.hooks.onFrame = (_conn, frame) => frame.t === 'send' && frame.clientMsgId !== 'acked';
  const store = new MemoryOutboxStore();
  const first = makeClient(node.url, store);
  await first.connect();
  await first.send('chat-1', 'delivered', { clientMsgId: 'acked' });
  const pending = [
    first.send('chat-1', 'one', { clientMsgId: 'left-1' }),
    first.send('chat-2', 'two', { clientMsgId: 'left-2', attachments: [] }),
  ];
  await waitFor(() => expect(node.receivedOf('send')).toHaveLength(3));
  await first.close();
  for (const p of pending) await expect(p).rejects.toBeInstanceOf(ConnectionError);
  await waitFor(() => expect(idsOf(store.load())).toEqual(['left-1', 'left-2']));

  // The app starts again: a new client with the same store; the node answers now.
  node.hooks.onFrame = undefined;
  const second = makeClient(node.url, store);
  const restored: ChatClientEvents['restoredSend'][] = [];
  second.on('restoredSend', (r) => restored.push(r));
  await second.connect();
  await waitFor(() => expect(restored).toHaveLength(2));
  const resent = node.connections[1]!.received.filter((f) => f.t === 'send');
  expect(resent.map((f) => [f.chatId, f.clientMsgId, f.body, f.attachments])).toEqual([
    ['chat-1', 'left-1', 'one', undefined],
    ['chat-2', 'left-2', 'two', []],
  ]);
  expect(restored.map((r) => [r.send.clientMsgId, r.error])).toEqual([
    ['left-1', undefined],
    ['left-2', undefined],
  ]);
  expect(restored.every((r) => typeof r.result?.messageId === 'string')).toBe(true);
  await waitFor(() => expect(store.load()).toEqual([]));
});

it('restored sends go out before sends of the new run', async () => {
  const node = await startNode();
  const store = new MemoryOutboxStore();
  store.save({ chatId: 'chat-1', clientMsgId: 'old' });
  const client = makeClient(node.url, store);
  const fresh = client.send('chat-1', 'new', { clientMsgId: 'new' });
  await client.connect();
  await fresh;
  expect(node.receivedOf('send').map((f) => f.clientMsgId)).toEqual(['old', 'new']);
});

it('a failing store does not stop sends', async () => {
  const node = await startNode();
  const failing: OutboxStore = {
    load: () => Promise.reject(new Error('disk gone')),
    save: () => {
      throw new Error('disk full');
    },
    remove: () => Promise.reject(new Error('disk gone')),
  };
  const warnings: string[] = [];
  const noop = () => undefined;
  const client = new ChatClient({
    url: node.url,
    token: 't',
    WebSocket,
    outboxStore: failing,
    logger: { debug: noop, info: noop, error: noop, warn: (_obj, msg) => warnings.push(`${msg}`) },
  });
  cleanups.push(() => client.close());
  await client.connect();
  await expect(client.send('chat-1', 'hi')).resolves.toMatchObject({ messageId: 'msg-1' });
  await waitFor(() => expect(warnings).toHaveLength(3));
});
