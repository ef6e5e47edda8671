/**
 * RawClient against an in-process `ws` server on loopback: `onFrame` hands every frame to its
 * listeners as it arrives, in order, after recording it, until the listener is removed.
 */
import type { AddressInfo } from 'node:net';
import { jsonCodec } from '@chat/protocol';
import type { ServerFrame } from '@chat/protocol';
import { WebSocketServer } from 'ws';
import type { WebSocket } from 'ws';
import { RawClient } from '../src/raw-client';
import { waitFor } from '../src/wait';

let server: WebSocketServer;
let url: string;
let accepted: Promise<WebSocket>;

beforeAll(async () => {
  server = new WebSocketServer({
    host: '127.0.0.1',
    port: 0,
    handleProtocols: () => 'chat.v1.json',
  });
  accepted = new Promise((resolve) => server.once('connection', resolve));
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}/ws`;
});
afterAll(async () => {
  for (const client of server.clients) client.terminate();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

it('hands every arriving frame to onFrame listeners until they are removed', async () => {
  const client = await RawClient.connect({ url, codec: jsonCodec, token: 'tok' });
  const ws = await accepted;
  const heard: Array<{ frame: ServerFrame; recorded: number }> = [];
  const stop = client.onFrame((frame) => heard.push({ frame, recorded: client.frames.length }));

  ws.send(JSON.stringify({ t: 'welcome', node: 'n1', seq: 0 }));
  ws.send(JSON.stringify({ t: 'ping', seq: 7 }));
  await waitFor(() => expect(heard).toHaveLength(2));
  expect(heard.map((h) => h.frame.t)).toEqual(['welcome', 'ping']);
  // Recorded before the listener hears it: `next` and `frames` agree with what it saw.
  expect(heard.map((h) => h.recorded)).toEqual([1, 2]);

  stop();
  ws.send(JSON.stringify({ t: 'ping', seq: 8 }));
  await client.next((f) => f.t === 'ping' && f.seq === 8);
  expect(heard).toHaveLength(2);
  await client.close();
});
