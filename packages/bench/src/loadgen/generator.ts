/**
 * The load generator: N users with one device each over protocol v1 (the `ws` package), paired
 * 1:1 in chats, sending open-loop at a fixed total rate. It records send→ok on the sender and
 * send→evt on the recipient (matched by a `step:k` body tag) in HDR histograms, acks events
 * cumulatively as the SDK does by default (at most `ackEveryMs` after the first unacked event,
 * at once after `ackEveryEvents` of them), and answers pings.
 *
 * It runs in its own process (see child.ts) so that it does not share an event loop with the
 * harness, and every wait in it has a deadline.
 */
import { build } from 'hdr-histogram-js';
import type { Histogram } from 'hdr-histogram-js';
import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';
import type { Codec } from '@chat/protocol';
import { jsonCodec, msgpackCodec, signToken } from '@chat/protocol';
import { OpenLoopSchedule, senderOf } from '../schedule';
import { processCpuSeconds, treeCpuSeconds } from '../procstat';
import type { LatencySummary } from '../summary';
import type {
  ConnectCommand,
  ConnectResult,
  CreateChatsCommand,
  CreateChatsResult,
  GeneratorStepResult,
  StepCommand,
} from './messages';

/** The fields of server frames the generator reads. */
interface Frame {
  t: string;
  id?: number;
  seq?: number;
  kind?: string;
  from?: string;
  body?: string | null;
  chatId?: string;
  code?: string;
  message?: string;
}

type ReplyHandler = (frame: Frame) => void;

class Conn {
  /** Highest event seq received, and the highest acked to the node. */
  seenSeq = 0;
  ackedSeq = 0;
  /** Events received since the last ack, and when the pending ack is due (0: none pending). */
  unacked = 0;
  ackDueAt = 0;
  chatId = '';
  nextRequestId = 1;
  /** Request id -> message index of the current step. */
  readonly sends = new Map<number, number>();
  /** Request id -> handler, for the few non-send requests. */
  readonly replies = new Map<number, ReplyHandler>();
  open = false;

  constructor(
    readonly index: number,
    readonly userId: string,
    readonly ws: WebSocket,
  ) {}
}

/** Per-step measurement state. */
class StepState {
  readonly schedule: OpenLoopSchedule;
  readonly firstWindowIndex: number;
  readonly windowStartAt: number;
  readonly windowEndAt: number;
  next = 0;
  readonly sentAt: Float64Array;
  readonly acked: Uint8Array;
  readonly delivered: Uint8Array;
  outstandingAcks = 0;
  outstandingDeliveries = 0;
  sentInWindow = 0;
  ackedInWindow = 0;
  /** ok replies in the whole step (warm-up and drain included): the messages stored. */
  ackedTotal = 0;
  deliveredInWindow = 0;
  errors = 0;
  readonly ackHist = newHistogram();
  readonly deliverHist = newHistogram();
  readonly lagHist = newHistogram();

  constructor(
    readonly id: number,
    readonly command: StepCommand,
    startAt: number,
  ) {
    this.schedule = new OpenLoopSchedule(
      command.rate,
      startAt,
      command.warmupMs + command.measureMs,
    );
    this.firstWindowIndex = this.schedule.firstIndexAt(command.warmupMs);
    this.windowStartAt = startAt + command.warmupMs;
    this.windowEndAt = startAt + command.warmupMs + command.measureMs;
    this.sentAt = new Float64Array(this.schedule.total);
    this.acked = new Uint8Array(this.schedule.total);
    this.delivered = new Uint8Array(this.schedule.total);
  }

  inWindow(at: number): boolean {
    return at >= this.windowStartAt && at < this.windowEndAt;
  }
}

function newHistogram(): Histogram {
  // Microseconds, 3 significant digits, up to 10 minutes (auto-resizing beyond).
  return build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 600_000_000,
    numberOfSignificantValueDigits: 3,
  });
}

function record(hist: Histogram, ms: number): void {
  hist.recordValue(Math.max(1, Math.round(ms * 1000)));
}

function summarize(hist: Histogram): LatencySummary {
  const ms = (us: number): number => Math.round(us) / 1000;
  return {
    count: hist.totalCount,
    p50Ms: ms(hist.getValueAtPercentile(50)),
    p90Ms: ms(hist.getValueAtPercentile(90)),
    p99Ms: ms(hist.getValueAtPercentile(99)),
    maxMs: ms(hist.maxValue),
  };
}

function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what}: no result within ${ms} ms`)), ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}

export interface LoadGeneratorOptions {
  /** Send timer period (ms). */
  readonly tickMs: number;
}

export class LoadGenerator {
  private conns: Conn[] = [];
  private codec: Codec = jsonCodec;
  private readonly dirty = new Set<Conn>();
  private step: StepState | null = null;
  private stepCount = 0;
  /** Connections the node closed (not us), since the last step started. */
  private disconnects = 0;
  private readonly closeCodes = new Map<number, number>();
  private closing = false;
  private ackTimer: NodeJS.Timeout | undefined;
  private ackEveryMs = 20;
  private ackEveryEvents = 50;

  constructor(private readonly options: LoadGeneratorOptions) {}

  /** Opens `users` connections at a bounded rate and waits for every `welcome`. */
  async connect(command: ConnectCommand): Promise<ConnectResult> {
    if (this.conns.length > 0) throw new Error('already connected; disconnect first');
    this.codec = command.codec === 'msgpack' ? msgpackCodec : jsonCodec;
    clearInterval(this.ackTimer);
    this.ackEveryMs = command.ackEveryMs;
    this.ackEveryEvents = command.ackEveryEvents ?? 50;
    this.ackTimer = setInterval(
      () => this.flushAcks(),
      Math.max(1, Math.min(command.ackEveryMs / 4, 5)),
    );
    const started = performance.now();
    const deadline = started + command.timeoutMs;
    const expSec = Math.floor(Date.now() / 1000) + 3600;
    const intervalMs = 1000 / command.connectRatePerSec;
    let pending = 0;
    const conns: Conn[] = [];
    const welcomes: Promise<void>[] = [];
    let wake: (() => void) | null = null;
    for (let i = 0; i < command.users; i++) {
      // Bounded rate: connection i starts no earlier than i * interval; bounded concurrency.
      for (;;) {
        const now = performance.now();
        if (now > deadline) throw new Error(`connect: ${i}/${command.users} started by deadline`);
        const wait = Math.max(started + i * intervalMs - now, 0);
        if (wait === 0 && pending < command.maxPending) break;
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, wait > 0 ? wait : 50);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        wake = null;
      }
      const userId = `${command.prefix}${String(i).padStart(4, '0')}`;
      const token = signToken({ sub: userId, dev: 'd1', exp: expSec }, command.secret);
      pending++;
      const { conn, welcome } = this.open(i, userId, command.urls?.[i] ?? command.url, token);
      conns.push(conn);
      welcomes.push(
        welcome.finally(() => {
          pending--;
          (wake as (() => void) | null)?.();
        }),
      );
    }
    this.conns = conns;
    const left = Math.max(deadline - performance.now(), 1);
    await withDeadline(Promise.all(welcomes), left, 'connect');
    return { connected: conns.length, seconds: (performance.now() - started) / 1000 };
  }

  /** Closes every connection and waits (bounded) for the close handshakes. */
  async disconnect(timeoutMs: number): Promise<void> {
    const conns = this.conns;
    this.conns = [];
    this.dirty.clear();
    this.closing = true;
    const closed = conns.map(
      (c) =>
        new Promise<void>((resolve) => {
          if (c.ws.readyState === WebSocket.CLOSED) return resolve();
          c.ws.once('close', () => resolve());
          c.ws.close(1000);
        }),
    );
    try {
      await withDeadline(Promise.all(closed), timeoutMs, 'disconnect');
    } catch {
      for (const c of conns) c.ws.terminate();
    } finally {
      this.closing = false;
    }
  }

  /** The even user of each pair creates the chat with the odd one. */
  async createChats(command: CreateChatsCommand): Promise<CreateChatsResult> {
    const started = performance.now();
    const pairs = Math.floor(this.conns.length / 2);
    let nextPair = 0;
    const worker = async (): Promise<void> => {
      while (nextPair < pairs) {
        const pair = nextPair++;
        const a = this.conns[2 * pair]!;
        const b = this.conns[2 * pair + 1]!;
        const reply = await this.request(
          a,
          { t: 'createChat', members: [b.userId] },
          command.timeoutMs,
        );
        if (reply.t !== 'ok' || typeof reply.chatId !== 'string') {
          throw new Error(`createChat failed: ${JSON.stringify(reply)}`);
        }
        a.chatId = reply.chatId;
        b.chatId = reply.chatId;
      }
    };
    const workers = Array.from({ length: Math.max(1, command.concurrency) }, () => worker());
    await withDeadline(Promise.all(workers), command.timeoutMs, 'createChats');
    return { chats: pairs, seconds: (performance.now() - started) / 1000 };
  }

  /** Runs one open-loop step and returns what it measured. */
  async runStep(command: StepCommand): Promise<GeneratorStepResult> {
    if (this.conns.length < 2) throw new Error('connect users first');
    for (const c of this.conns) c.sends.clear();
    this.disconnects = 0;
    this.closeCodes.clear();
    const state = new StepState(++this.stepCount, command, performance.now() + 5);
    this.step = state;
    const cpuAt = (): { node: number; postgres: number; generator: number } => {
      const own = process.cpuUsage();
      return {
        node: [command.nodePid, ...(command.otherNodePids ?? [])].reduce(
          (sum, pid) => sum + processCpuSeconds(pid),
          0,
        ),
        postgres: treeCpuSeconds(command.postmasterPid),
        generator: (own.user + own.system) / 1e6,
      };
    };
    let cpuStart: ReturnType<typeof cpuAt> | null = null;
    let cpuEnd: ReturnType<typeof cpuAt> | null = null;
    let windowStart = 0;
    let windowEnd = 0;
    const drainDeadline = state.windowEndAt + command.drainTimeoutMs;

    await new Promise<void>((resolve) => {
      const timer = setInterval(() => {
        const now = performance.now();
        if (cpuStart === null && now >= state.windowStartAt) {
          cpuStart = cpuAt();
          windowStart = now;
        }
        this.sendDue(state, now);
        if (cpuEnd === null && now >= state.windowEndAt) {
          cpuEnd = cpuAt();
          windowEnd = now;
        }
        const done =
          state.next >= state.schedule.total &&
          state.outstandingAcks === 0 &&
          state.outstandingDeliveries === 0;
        if ((cpuEnd !== null && done) || now >= drainDeadline) {
          clearInterval(timer);
          resolve();
        }
      }, this.options.tickMs);
    });
    const finishedAt = performance.now();
    this.step = null;

    // Window messages still missing count as undelivered, with the time waited as latency.
    let undelivered = 0;
    for (let k = state.firstWindowIndex; k < state.schedule.total; k++) {
      const waited = finishedAt - state.schedule.scheduledAt(k);
      let missing = false;
      if (!state.acked[k]) {
        record(state.ackHist, waited);
        missing = true;
      }
      if (!state.delivered[k]) {
        record(state.deliverHist, waited);
        missing = true;
      }
      if (missing) undelivered++;
    }
    const start = cpuStart ?? cpuAt();
    const end = cpuEnd ?? cpuAt();
    const windowSec = Math.max((windowEnd || finishedAt) - (windowStart || finishedAt), 1) / 1000;
    return {
      offeredRate: command.rate,
      windowSec,
      sentRate: state.sentInWindow / windowSec,
      ackedRate: state.ackedInWindow / windowSec,
      acked: state.ackedTotal,
      achievedRate: state.deliveredInWindow / windowSec,
      ack: summarize(state.ackHist),
      deliver: summarize(state.deliverHist),
      lag: summarize(state.lagHist),
      errors: state.errors,
      undelivered,
      disconnects: this.disconnects,
      closeCodes: Object.fromEntries(this.closeCodes),
      cpu: {
        node: end.node - start.node,
        postgres: end.postgres - start.postgres,
        generator: end.generator - start.generator,
      },
      drainMs: Math.max(0, finishedAt - state.windowEndAt),
    };
  }

  async close(): Promise<void> {
    clearInterval(this.ackTimer);
    await this.disconnect(5_000);
  }

  private sendDue(state: StepState, now: number): void {
    const due = state.schedule.dueBy(now);
    const users = this.conns.length - (this.conns.length % 2);
    while (state.next < due) {
      const k = state.next++;
      const conn = this.conns[senderOf(k, users)]!;
      if (!conn.open) {
        // Closed by the node (this generator does not reconnect): counted as an error.
        state.errors++;
        state.acked[k] = 1;
        state.delivered[k] = 1;
        continue;
      }
      const id = conn.nextRequestId++;
      conn.sends.set(id, k);
      conn.ws.send(
        this.codec.encode({
          t: 'send',
          id,
          chatId: conn.chatId,
          clientMsgId: `s${state.id}-${k}`,
          body: `${state.id}:${k}`,
        }),
      );
      const at = performance.now();
      state.sentAt[k] = at;
      state.outstandingAcks++;
      state.outstandingDeliveries++;
      if (k >= state.firstWindowIndex) record(state.lagHist, at - state.schedule.scheduledAt(k));
      if (state.inWindow(at)) state.sentInWindow++;
    }
  }

  private open(
    index: number,
    userId: string,
    url: string,
    token: string,
  ): { conn: Conn; welcome: Promise<void> } {
    // The SDK's features: no echo of own sends, receipts as watermark frames.
    const query = `token=${encodeURIComponent(token)}&features=no-echo,receipt-marks`;
    const ws = new WebSocket(`${url}?${query}`, this.codec.subprotocol, {
      perMessageDeflate: false,
    });
    if (this.codec.binary) ws.binaryType = 'nodebuffer';
    const conn = new Conn(index, userId, ws);
    const welcome = new Promise<void>((resolve, reject) => {
      ws.on('message', (data: Buffer, isBinary: boolean) => {
        const frame = this.codec.decode(isBinary ? data : data.toString('utf8')) as Frame;
        if (frame.t === 'welcome') {
          conn.open = true;
          conn.seenSeq = frame.seq ?? 0;
          conn.ackedSeq = conn.seenSeq;
          resolve();
          return;
        }
        this.onFrame(conn, frame);
      });
      ws.once('unexpected-response', (_req, res) =>
        reject(new Error(`${userId}: upgrade refused with HTTP ${res.statusCode}`)),
      );
      ws.on('error', (err) => reject(new Error(`${userId}: ${err.message}`)));
      ws.once('close', (code) => {
        if (conn.open && !this.closing) {
          this.disconnects++;
          this.closeCodes.set(code, (this.closeCodes.get(code) ?? 0) + 1);
        }
        conn.open = false;
        reject(new Error(`${userId}: closed with ${code} before welcome`));
      });
    });
    return { conn, welcome };
  }

  private onFrame(conn: Conn, frame: Frame): void {
    switch (frame.t) {
      case 'evt':
        this.onEvent(conn, frame);
        return;
      case 'ok':
      case 'err':
        this.onReply(conn, frame);
        return;
      case 'ping':
        if (conn.open) conn.ws.send(this.codec.encode({ t: 'pong', seq: frame.seq ?? 0 }));
        return;
      default:
        return;
    }
  }

  private onReply(conn: Conn, frame: Frame): void {
    const id = frame.id ?? -1;
    const k = conn.sends.get(id);
    if (k === undefined) {
      const handler = conn.replies.get(id);
      conn.replies.delete(id);
      handler?.(frame);
      return;
    }
    conn.sends.delete(id);
    const state = this.step;
    if (state === null || state.acked[k]) return;
    const now = performance.now();
    state.acked[k] = 1;
    state.outstandingAcks--;
    if (frame.t === 'err') {
      state.errors++;
      // An error reply means no delivery will come.
      if (!state.delivered[k]) {
        state.delivered[k] = 1;
        state.outstandingDeliveries--;
      }
      return;
    }
    state.ackedTotal++;
    if (k >= state.firstWindowIndex) record(state.ackHist, now - state.schedule.scheduledAt(k));
    if (state.inWindow(now)) state.ackedInWindow++;
  }

  private onEvent(conn: Conn, frame: Frame): void {
    const seq = frame.seq ?? 0;
    if (seq > conn.seenSeq) {
      conn.seenSeq = seq;
      this.noteUnacked(conn);
    }
    // The sender's own copy of its message is acked but not measured.
    if (frame.kind !== 'message' || frame.from === conn.userId) return;
    const state = this.step;
    const body = frame.body;
    if (state === null || typeof body !== 'string') return;
    const colon = body.indexOf(':');
    if (colon < 0 || Number(body.slice(0, colon)) !== state.id) return;
    const k = Number(body.slice(colon + 1));
    if (!(k >= 0 && k < state.schedule.total) || state.delivered[k]) return;
    const now = performance.now();
    state.delivered[k] = 1;
    state.outstandingDeliveries--;
    if (k >= state.firstWindowIndex) {
      record(state.deliverHist, now - state.schedule.scheduledAt(k));
    }
    if (state.inWindow(now)) state.deliveredInWindow++;
  }

  /** The SDK's AckCoalescer: an ack at most ackEveryMs after the first unacked event, or at once after ackEveryEvents. */
  private noteUnacked(conn: Conn): void {
    conn.unacked++;
    if (conn.unacked >= this.ackEveryEvents) {
      this.sendAck(conn);
    } else if (conn.ackDueAt === 0) {
      conn.ackDueAt = performance.now() + this.ackEveryMs;
      this.dirty.add(conn);
    }
  }

  private sendAck(conn: Conn): void {
    conn.unacked = 0;
    conn.ackDueAt = 0;
    this.dirty.delete(conn);
    if (!conn.open || conn.seenSeq <= conn.ackedSeq) return;
    conn.ackedSeq = conn.seenSeq;
    conn.ws.send(this.codec.encode({ t: 'ack', seq: conn.ackedSeq }));
  }

  private flushAcks(): void {
    const now = performance.now();
    for (const conn of this.dirty) if (now >= conn.ackDueAt) this.sendAck(conn);
  }

  private request(conn: Conn, frame: object, timeoutMs: number): Promise<Frame> {
    const id = conn.nextRequestId++;
    const reply = new Promise<Frame>((resolve) => conn.replies.set(id, resolve));
    conn.ws.send(this.codec.encode({ ...frame, id }));
    return withDeadline(reply, timeoutMs, `request ${JSON.stringify(frame)}`).finally(() =>
      conn.replies.delete(id),
    );
  }
}
