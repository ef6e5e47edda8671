#!/usr/bin/env node
/**
 * A terminal chat on @chat/client: every line you type goes to the chat with --to, every
 * message of your inbox is printed. At the end of input (Ctrl-D, or a pipe that ends) it waits
 * for the node's ack of what you sent, then exits.
 *
 *   node chat.mjs --registry http://127.0.0.1:46151 --user alice --to bob   (against `npm start`)
 *   node chat.mjs --url ws://127.0.0.1:4001/ws --token <token> --to bob      (one node, own token)
 *
 * --outbox <file> keeps unacknowledged lines across runs (default .cli-chat-outbox-<user>.json).
 */
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import WebSocket from 'ws';
import { ChatClient, ChatError, ConnectionError } from '@chat/client';
import { FileOutboxStore } from './file-outbox.mjs';

const { values: args } = parseArgs({
  options: {
    registry: { type: 'string' },
    url: { type: 'string' },
    token: { type: 'string' },
    user: { type: 'string', default: 'alice' },
    device: { type: 'string', default: 'cli' },
    to: { type: 'string' },
    outbox: { type: 'string' },
  },
});
if ((args.registry === undefined) === (args.url === undefined) || args.to === undefined) {
  console.error(
    'usage: chat.mjs (--registry <url> | --url <ws url> --token <token>) [--user alice] --to <user>',
  );
  process.exit(2);
}

/** Local runs only: the registry of `npm start` mints development tokens. */
async function devToken() {
  const query = new URLSearchParams({ user: args.user, device: args.device });
  const res = await fetch(new URL(`/v1/dev/token?${query}`, args.registry));
  if (!res.ok)
    throw new Error(`dev token: HTTP ${res.status} (is this the registry of npm start?)`);
  return (await res.json()).token;
}

const client = new ChatClient({
  ...(args.registry !== undefined
    ? { registryUrl: args.registry, user: args.user, token: devToken }
    : { url: args.url, token: args.token }),
  // Node 20 has no global WebSocket; browsers and Node >= 22 do not need this line.
  WebSocket,
  // Lines sent but not acknowledged when the program stopped go out again on the next run.
  outboxStore: new FileOutboxStore(args.outbox ?? `.cli-chat-outbox-${args.user}.json`),
});
client.on('state', ({ status, node }) => console.error(`[${status}${node ? ` on ${node}` : ''}]`));
client.on('error', (err) => console.error(`error: ${err.message}`));
client.on('restoredSend', ({ send, result, error }) =>
  console.error(`resent "${send.body}": ${result ? `sent ${result.messageId}` : error.message}`),
);
client.on('event', (evt) => {
  if (evt.kind === 'message') console.log(`${evt.from}: ${evt.body ?? '(attachment)'}`);
  // A real app persists client.lastSeq and client.storeEpoch here and passes them back.
});

/** The one-to-one chat with `other`, created when there is none yet. */
async function chatWith(other) {
  const mine = [args.user, other].sort().join();
  const found = (await client.listChats()).find(
    (c) => c.name === null && [...c.members].sort().join() === mine,
  );
  return found?.chatId ?? (await client.createChat([other])).chatId;
}

try {
  await client.connect();
  const chatId = await chatWith(args.to);
  console.error(`chat ${chatId} with ${args.to}: type a line to send it, Ctrl-D to quit`);
  const sends = [];
  for await (const line of createInterface({ input: process.stdin })) {
    if (line.trim() === '') continue;
    const sent = client
      .send(chatId, line)
      .then(({ messageId }) => console.error(`sent ${messageId}`));
    sends.push(sent);
  }
  await Promise.all(sends);
} catch (err) {
  const why = err instanceof ChatError ? `${err.code}: ${err.message}` : err.message;
  console.error(err instanceof ConnectionError ? `connection: ${why}` : why);
  process.exitCode = 1;
} finally {
  await client.close();
}
