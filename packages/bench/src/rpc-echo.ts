/**
 * The limit beside `cross-node`: echo between two processes over loopback, raw msgpack-over-TCP
 * (length-prefixed frames, no auth, no request ids) and the same payload through the product's
 * RpcServer/PeerClient: WINDOW calls outstanding, writes corked per tick; calls per CPU-second of client + server (process.cpuUsage).
 *
 * This file is also the server process (`serve raw|rpc`), forked by echoBench().
 */
import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { connect, createServer } from 'node:net';
import type { AddressInfo, Socket } from 'node:net';
import { Packr } from 'msgpackr';
import { PeerClient, RpcServer, defineMethod } from '@chat/rpc';
import type { RpcLogger } from '@chat/rpc';
import { REPO_ROOT } from '@chat/testkit';

let RUNS = 3;
let RUN_MS = 1000;
let WINDOW = 64;
const SECRET = 'bench-secret';

/** About the size of one forwarded delivery. */
const payload = {
  userId: 'user-12345',
  event: {
    seq: 123456,
    kind: 'message',
    chatId: 'c_0123456789abcdef',
    messageId: 'm_0123456789abcdef',
    from: 'user-67890',
    body: 'hello there, this is a typical short chat message body.',
    attachments: [],
    ts: 1_700_000_000_000,
  },
};
type Payload = typeof payload;
const Echo = defineMethod<Payload, Payload>('echo');

const silent: RpcLogger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
  child: () => silent,
};

/** Raw framing, written out here so the baseline carries none of the package's code. */
function rawEndpoint(socket: Socket, onValue: (v: unknown) => void): (v: unknown) => void {
  const packr = new Packr({ useRecords: false });
  let pending: Buffer = Buffer.alloc(0);
  let corked = false;
  socket.setNoDelay(true);
  socket.on('data', (chunk: Buffer) => {
    const buf = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    let off = 0;
    while (buf.length - off >= 4) {
      const len = buf.readUInt32BE(off);
      if (buf.length - off - 4 < len) break;
      onValue(packr.unpack(buf.subarray(off + 4, off + 4 + len)));
      off += 4 + len;
    }
    pending = buf.subarray(off);
  });
  return (v) => {
    const body = packr.pack(v);
    const frame = Buffer.allocUnsafe(4 + body.length);
    frame.writeUInt32BE(body.length, 0);
    body.copy(frame, 4);
    if (!corked) {
      corked = true;
      socket.cork();
      process.nextTick(() => {
        corked = false;
        socket.uncork();
      });
    }
    socket.write(frame);
  };
}

async function serve(mode: string): Promise<void> {
  let port: number;
  if (mode === 'raw') {
    const server = createServer((socket) => {
      const send = rawEndpoint(socket, (v) => send(v));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  } else {
    const server = new RpcServer({ nodeId: 'bench-server', secret: SECRET, logger: silent });
    server.handle(Echo, (req) => req);
    await server.listen({ host: '127.0.0.1', port: 0 });
    port = server.port;
  }
  process.on('message', (m) => {
    if (m === 'cpu') process.send?.({ cpu: process.cpuUsage() });
    if (m === 'exit') process.exit(0);
  });
  process.send?.({ port });
}

function ask<T>(child: ChildProcess, msg: string): Promise<T> {
  return new Promise((resolve) => {
    child.once('message', (m) => resolve(m as T));
    child.send(msg);
  });
}

const cpuSeconds = (u: NodeJS.CpuUsage): number => (u.user + u.system) / 1e6;

export interface RunResult {
  callsPerSec: number;
  callsPerCpuSec: number;
  cpuPerSec: number;
}

/** Keeps WINDOW calls outstanding for RUN_MS; every answer sends the next call. */
async function drive(call: () => Promise<unknown>): Promise<number> {
  let done = 0;
  let stop = false;
  const deadline = Date.now() + RUN_MS;
  const timer = setTimeout(() => (stop = true), RUN_MS);
  await Promise.all(
    Array.from({ length: WINDOW }, async () => {
      while (!stop && Date.now() < deadline) {
        await call();
        done++;
      }
    }),
  );
  clearTimeout(timer);
  return done;
}

async function measure(mode: 'raw' | 'rpc'): Promise<RunResult[]> {
  const child = fork(__filename, ['serve', mode], {
    execArgv: ['--import', 'tsx'],
    cwd: REPO_ROOT,
  });
  const { port } = await new Promise<{ port: number }>((r) =>
    child.once('message', (m) => r(m as { port: number })),
  );
  let call: () => Promise<unknown>;
  let close: () => Promise<void>;
  if (mode === 'raw') {
    const socket = connect({ host: '127.0.0.1', port });
    await new Promise<void>((r) => socket.once('connect', () => r()));
    const waiting: ((v: unknown) => void)[] = [];
    let head = 0;
    // Answers come back in order on one connection, so a FIFO of resolvers is enough.
    const send = rawEndpoint(socket, (v) => {
      const resolve = waiting[head++];
      if (head > 1024) {
        waiting.splice(0, head);
        head = 0;
      }
      resolve?.(v);
    });
    call = () =>
      new Promise((resolve) => {
        waiting.push(resolve);
        send(payload);
      });
    close = async () => {
      socket.destroy();
    };
  } else {
    const client = new PeerClient({
      nodeId: 'bench-client',
      secret: SECRET,
      host: '127.0.0.1',
      port,
      logger: silent,
    });
    call = () => client.call(Echo, payload);
    close = () => client.close();
  }
  await drive(call); // warm-up run, not counted
  const results: RunResult[] = [];
  for (let run = 0; run < RUNS; run++) {
    const serverBefore = (await ask<{ cpu: NodeJS.CpuUsage }>(child, 'cpu')).cpu;
    const clientBefore = process.cpuUsage();
    const start = process.hrtime.bigint();
    const calls = await drive(call);
    const wall = Number(process.hrtime.bigint() - start) / 1e9;
    const clientCpu = cpuSeconds(process.cpuUsage(clientBefore));
    const serverAfter = (await ask<{ cpu: NodeJS.CpuUsage }>(child, 'cpu')).cpu;
    const serverCpu = cpuSeconds(serverAfter) - cpuSeconds(serverBefore);
    results.push({
      callsPerSec: calls / wall,
      callsPerCpuSec: calls / (clientCpu + serverCpu),
      cpuPerSec: (clientCpu + serverCpu) / wall,
    });
  }
  await close();
  child.send('exit');
  await new Promise<void>((r) => child.once('exit', () => r()));
  return results;
}

export interface EchoResult {
  readonly raw: readonly RunResult[];
  readonly rpc: readonly RunResult[];
}

/** Runs the raw and the RpcServer echo, `runs` times `runMs` each (after a warm-up run). */
export async function echoBench(runs = 3, runMs = 1000, window = 64): Promise<EchoResult> {
  RUNS = runs;
  RUN_MS = runMs;
  WINDOW = window;
  return { raw: await measure('raw'), rpc: await measure('rpc') };
}

if (process.argv[2] === 'serve') void serve(process.argv[3] ?? 'raw');
