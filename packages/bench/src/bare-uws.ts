/**
 * The bare limit for the connection and fan-out workloads: a uWebSockets.js server with a
 * minimal handler (no auth, no store, no sessions). It sends `welcome` on open, subscribes each
 * connection to the topics in its `topics` query parameter, and answers `{t:"send"}` by
 * publishing an `evt` to the chat's topic (everyone but the sender) and replying `ok`.
 * Prints `{"msg":"listening","port":N}` like the services, so startServiceProcess can run it.
 *
 * Run: node --import tsx packages/bench/src/bare-uws.ts
 */
import uWS from 'uWebSockets.js';

// Same check as the node: the package silently falls back to a JavaScript implementation.
if (typeof (uWS as unknown as Record<string, unknown>).getParts !== 'function') {
  console.error('bare uWS: the native uWebSockets.js binding did not load');
  process.exit(1);
}

interface Data {
  topics: string[];
}

const decoder = new TextDecoder();
let connections = 0;
let seq = 0;
const app = uWS.App();
app.ws<Data>('/ws', {
  idleTimeout: 0,
  maxPayloadLength: 64 * 1024,
  upgrade: (res, req, context) => {
    const topics = new URLSearchParams(req.getQuery() ?? '').get('topics');
    res.upgrade<Data>(
      { topics: topics === null || topics === '' ? [] : topics.split(',') },
      req.getHeader('sec-websocket-key'),
      req.getHeader('sec-websocket-protocol'),
      req.getHeader('sec-websocket-extensions'),
      context,
    );
  },
  open: (ws) => {
    connections++;
    for (const t of ws.getUserData().topics) ws.subscribe(t);
    ws.send(JSON.stringify({ t: 'welcome', node: 'bare', seq: 0, heartbeatMs: 0 }));
  },
  message: (ws, message) => {
    const frame = JSON.parse(decoder.decode(message)) as {
      t: string;
      id?: number;
      chatId?: string;
      body?: string;
    };
    if (frame.t !== 'send' || typeof frame.chatId !== 'string') return;
    const ts = Date.now();
    const messageId = `m${++seq}`;
    ws.publish(
      frame.chatId,
      JSON.stringify({
        t: 'evt',
        kind: 'message',
        chatId: frame.chatId,
        messageId,
        from: 'x',
        body: frame.body,
        ts,
      }),
    );
    ws.send(JSON.stringify({ t: 'ok', id: frame.id, messageId, ts }));
  },
  close: () => {
    connections--;
  },
});
app.get('/v1/stats', (res) => {
  res.end(JSON.stringify({ connections }));
});
app.listen('127.0.0.1', 0, (token) => {
  if (!token) {
    console.error('bare uWS: listen failed');
    process.exit(1);
  }
  console.log(JSON.stringify({ msg: 'listening', port: uWS.us_socket_local_port(token) }));
});
process.on('SIGTERM', () => process.exit(0));
