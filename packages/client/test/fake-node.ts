/**
 * A small in-process stand-in for a chat node speaking protocol v1 over `ws`, for the client's
 * tests: one user's inbox, sync paging, idempotent send, and hooks to misbehave on purpose.
 * It is not the node: it does no auth and keeps no real state beyond one inbox.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import type WebSocket from 'ws';
import { codecFor } from '@chat/protocol';
import type { Codec, EventFrame } from '@chat/protocol';

export type Frame = Record<string, unknown> & { t: string };

export interface FakeConnection {
  readonly index: number;
  readonly token: string;
  readonly protocol: string;
  readonly received: Frame[];
  send(frame: object): void;
  close(code: number, reason?: string): void;
  readonly closed: boolean;
}

export type Refusal = { status: number; headers?: Record<string, string> };

export interface FakeNodeHooks {
  /** Refuse an upgrade with an HTTP answer instead of accepting it. */
  refuse?: (token: string, index: number) => Refusal | undefined;
  /** Return true when the frame was fully handled by the test. */
  onFrame?: (conn: FakeConnection, frame: Frame) => boolean;
  /** Called after the welcome of each connection; the test may send or close. */
  onOpen?: (conn: FakeConnection) => void;
}

export class FakeNode {
  readonly connections: FakeConnection[] = [];
  readonly upgrades: { token: string; at: number; refused: boolean }[] = [];
  readonly inbox: EventFrame[] = [];
  hooks: FakeNodeHooks = {};
  heartbeatMs = 30_000;
  /** Welcome with `reset: true` (a device retention had removed). */
  resetDevice = false;
  /** Default sync page size when the client sends no limit. */
  pageSize = 100;
  /** `welcome.storeEpoch`; absent when undefined (a node from before store epochs). */
  storeEpoch: string | undefined;
  /** Message ids are `${messageIdPrefix}${seq}`: a restore test changes it for new messages. */
  messageIdPrefix = 'm';
  private readonly messages = new Map<string, { messageId: string; ts: number }>();
  private readonly http = createServer();
  private readonly wss = new WebSocketServer({
    noServer: true,
    handleProtocols: (protocols) => [...protocols].find((p) => codecFor(p) !== undefined) ?? false,
  });
  private port = 0;

  private constructor(readonly nodeId: string) {}

  static async start(nodeId: string): Promise<FakeNode> {
    const node = new FakeNode(nodeId);
    node.http.on('upgrade', (req, socket: Duplex, head) =>
      node.onUpgrade(req.url ?? '', req, socket, head),
    );
    await new Promise<void>((resolve) => node.http.listen(0, '127.0.0.1', resolve));
    node.port = (node.http.address() as AddressInfo).port;
    return node;
  }

  get url(): string {
    return `ws://127.0.0.1:${this.port}/ws`;
  }

  get latestSeq(): number {
    return this.inbox.length === 0 ? 0 : (this.inbox[this.inbox.length - 1] as EventFrame).seq;
  }

  /** Frames of a type received on every connection, in order. */
  receivedOf(t: string): Frame[] {
    return this.connections.flatMap((c) => c.received.filter((f) => f.t === t));
  }

  /** Appends an event to the inbox; pushes it to open connections unless `push` is false. */
  addEvent(body: string, push = true): EventFrame {
    const seq = this.latestSeq + 1;
    const evt: EventFrame = {
      t: 'evt',
      seq,
      kind: 'message',
      chatId: 'chat-1',
      messageId: `${this.messageIdPrefix}${seq}`,
      from: 'bob',
      body,
      attachments: [],
      ts: 1_000_000 + seq,
    };
    this.inbox.push(evt);
    if (push) for (const c of this.connections) if (!c.closed) c.send(evt);
    return evt;
  }

  async stop(): Promise<void> {
    for (const client of this.wss.clients) client.terminate();
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
    this.http.closeAllConnections();
    await new Promise<void>((resolve) => this.http.close(() => resolve()));
  }

  private onUpgrade(
    path: string,
    req: Parameters<WebSocketServer['handleUpgrade']>[0],
    socket: Duplex,
    head: Buffer,
  ): void {
    const token = new URL(path, 'http://x').searchParams.get('token') ?? '';
    const refusal = this.hooks.refuse?.(token, this.upgrades.length);
    this.upgrades.push({ token, at: Date.now(), refused: refusal !== undefined });
    if (refusal !== undefined) {
      const headers = Object.entries(refusal.headers ?? {})
        .map(([k, v]) => `${k}: ${v}\r\n`)
        .join('');
      socket.end(
        `HTTP/1.1 ${refusal.status} Refused\r\n${headers}Content-Length: 0\r\nConnection: close\r\n\r\n`,
      );
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => this.onConnection(ws, token));
  }

  private onConnection(ws: WebSocket, token: string): void {
    const codec = codecFor(ws.protocol) as Codec;
    let closed = false;
    const conn: FakeConnection = {
      index: this.connections.length,
      token,
      protocol: ws.protocol,
      received: [],
      send: (frame) => {
        if (!closed) ws.send(codec.encode(frame));
      },
      close: (code, reason) => {
        closed = true;
        ws.close(code, reason);
      },
      get closed() {
        return closed;
      },
    };
    this.connections.push(conn);
    ws.on('close', () => (closed = true));
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      const frame = codec.decode(isBinary ? new Uint8Array(data) : data.toString()) as Frame;
      conn.received.push(frame);
      if (this.hooks.onFrame?.(conn, frame) === true) return;
      this.handle(conn, frame);
    });
    conn.send({
      t: 'welcome',
      user: 'alice',
      device: 'phone',
      node: this.nodeId,
      epoch: 1,
      seq: this.latestSeq,
      heartbeatMs: this.heartbeatMs,
      ...(this.resetDevice ? { reset: true } : {}),
      ...(this.storeEpoch === undefined ? {} : { storeEpoch: this.storeEpoch }),
    });
    this.hooks.onOpen?.(conn);
  }

  private handle(conn: FakeConnection, f: Frame): void {
    const id = f.id as number;
    switch (f.t) {
      case 'sync': {
        const limit = typeof f.limit === 'number' ? f.limit : this.pageSize;
        const after = f.after as number;
        const rest = this.inbox.filter((e) => e.seq > after);
        for (const e of rest.slice(0, limit)) conn.send(e);
        conn.send({ t: 'ok', id, seq: this.latestSeq, more: rest.length > limit });
        return;
      }
      case 'send': {
        const key = f.clientMsgId as string;
        const known = this.messages.get(key);
        if (known !== undefined) {
          conn.send({ t: 'ok', id, ...known, dup: true });
          return;
        }
        const evt = this.addEvent(f.body as string, false);
        const stored = { messageId: `msg-${evt.seq}`, ts: evt.ts };
        this.messages.set(key, stored);
        conn.send({ t: 'ok', id, ...stored });
        for (const c of this.connections) if (!c.closed) c.send(evt);
        return;
      }
      case 'createChat':
        conn.send({ t: 'ok', id, chatId: 'chat-9' });
        return;
      case 'listChats':
        conn.send({ t: 'ok', id, chats: [{ chatId: 'chat-1', name: null, members: ['alice'] }] });
        return;
      case 'read':
        conn.send({ t: 'err', id, code: 'NOT_MEMBER', message: 'not a member of this chat' });
        return;
      default:
        return;
    }
  }
}

/** Polls `check` until it stops throwing or the deadline passes (then rethrows its error). */
export async function waitFor<T>(check: () => T, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return check();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }
}
