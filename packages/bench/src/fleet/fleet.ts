/**
 * A fleet of lean devices (one per user) for the cluster workloads: connects at a bounded rate
 * from several source addresses, follows `moved` (overlapping the old connection with the new
 * one when the node allows, as the SDK does), reconnects after drops like the SDK (jitter,
 * Retry-After, the registry's route), syncs after every welcome and on gaps, acks cumulatively,
 * and sends open-loop traffic whose deliveries it matches by a `run:k` body tag. Whatever is
 * acked must arrive: what did not by the end of the drain is counted as lost.
 */
import { performance } from 'node:perf_hooks';
import { signToken } from '@chat/protocol';
import { LeanSocket } from '@chat/testkit/lean-socket';
import type { LeanHandlers } from '@chat/testkit/lean-socket';
import { FLEET_FEATURES } from './fleet-features';
import type {
  FleetChurnCommand,
  FleetConnectCommand,
  FleetConnectResult,
  FleetCreateChatsCommand,
  FleetStatus,
  FleetTrafficCommand,
  FleetTrafficResult,
  WelcomeRecord,
} from './messages';

type Frame = Record<string, unknown>;

/** How often the traffic timer sends what is due. */
const SEND_TICK_MS = 2;

/** State of the traffic being sent. */
class Traffic {
  readonly total: number;
  readonly startAt: number;
  readonly startedAtWall: number;
  next = 0;
  stopAt: number;
  sent = 0;
  skipped = 0;
  acked = 0;
  errors = 0;
  deliveries = 0;
  readonly sentAt: Float64Array;
  readonly ackState: Uint8Array; // 0 none, 1 acked, 2 error/skipped
  readonly got: Uint16Array;
  readonly deliverMs: number[][] = [];
  /** Beside each `deliverMs` entry: the recipient's device index in this fleet. */
  readonly deliverTo: number[][] = [];
  readonly ackMs: number[][] = [];
  /**
   * Per second of the schedule: the longest this process's event loop kept the 2 ms send timer
   * waiting (ms). A late timer delays the deliveries it records as well: what of a latency
   * figure is the load generator's own delay rather than the cluster's.
   */
  readonly loopLagMs: number[] = [];
  private lastTickAt = 0;
  stopped = false;

  constructor(
    readonly id: number,
    readonly command: FleetTrafficCommand,
  ) {
    this.total = Math.floor((command.rate * command.durationMs) / 1000);
    this.startAt = performance.now() + 5;
    this.startedAtWall = Date.now() + 5;
    this.stopAt = this.startAt + command.durationMs;
    this.sentAt = new Float64Array(this.total);
    this.ackState = new Uint8Array(this.total);
    this.got = new Uint16Array(this.total);
  }

  scheduledAt(k: number): number {
    return this.startAt + (k * 1000) / this.command.rate;
  }

  /** Called by the send timer: records how late this tick came. */
  tick(now: number): void {
    if (this.lastTickAt > 0) {
      const s = Math.max(0, Math.floor((now - this.startAt) / 1000));
      const lag = Math.max(0, now - this.lastTickAt - SEND_TICK_MS);
      this.loopLagMs[s] = Math.max(this.loopLagMs[s] ?? 0, Math.round(lag * 10) / 10);
    }
    this.lastTickAt = now;
  }

  bucket(arr: number[][], k: number): number[] {
    const s = Math.floor(k / this.command.rate);
    let b = arr[s];
    if (b === undefined) {
      for (let i = arr.length; i <= s; i++) arr[i] = [];
      b = arr[s]!;
    }
    return b;
  }
}

class Device {
  socket: LeanSocket;
  /** `welcome` came on `socket`. */
  welcomed = false;
  /**
   * The previous connection while a move overlaps (`moved` with `closeInMs`): it still delivers,
   * and carries the sends (`leavingServes`) until the new one has synced.
   */
  leaving: LeanSocket | undefined;
  leavingServes = false;
  /** Request ids put on `leaving` and not answered yet: it closes once they are. */
  readonly leavingIds = new Set<number>();
  node = '';
  /** Every event seq up to this one was seen; events after it wait in `ahead`. */
  contig = 0;
  readonly ahead = new Set<number>();
  ackedSeq = 0;
  nextAckAt = 0;
  syncing = false;
  gapSince = 0;
  nextId = 1;
  /** Request id -> traffic message index. */
  readonly sends = new Map<number, number>();
  readonly replies = new Map<number, (f: Frame) => void>();
  attempt = 0;
  /** performance.now() until which the device stays offline (churn): no reconnect before. */
  offlineUntil = 0;
  timer: NodeJS.Timeout | undefined;
  stopped = false;
  welcomeWaiter: ((ok: boolean) => void) | undefined;

  constructor(
    readonly index: number,
    readonly user: string,
    public url: string,
    readonly token: string,
    readonly localAddress: string | undefined,
    newSocket: (d: Device) => LeanSocket,
  ) {
    this.socket = newSocket(this);
  }

  /** Whether sends can go out now, and on which connection. */
  get wire(): LeanSocket | undefined {
    if (this.leavingServes) return this.leaving;
    return this.welcomed ? this.socket : undefined;
  }
}

export class Fleet {
  private devices: Device[] = [];
  private chatIds: string[] = [];
  private options: FleetConnectCommand | undefined;
  private traffic: Traffic | null = null;
  private trafficCount = 0;
  private welcomes: WelcomeRecord[] = [];
  private closeCodes = new Map<string, number>();
  private closes: [number, string, number, number][] = [];
  private refusals = 0;
  private readonly dirty = new Set<Device>();
  private readonly gapped = new Set<Device>();
  private ackTimer: NodeJS.Timeout | undefined;
  private pending = 0;

  async connect(command: FleetConnectCommand): Promise<FleetConnectResult> {
    if (this.devices.length > 0) throw new Error('already connected');
    this.options = command;
    const expSec = Math.floor(Date.now() / 1000) + 4 * 3600;
    const addrs = command.localAddresses;
    this.devices = command.users.map(
      (user, i) =>
        new Device(
          i,
          user,
          command.urls[i]!,
          signToken({ sub: user, dev: 'd1', exp: expSec }, command.secret),
          addrs.length === 0 ? undefined : addrs[i % addrs.length],
          (d) => this.newSocket(d),
        ),
    );
    clearInterval(this.ackTimer);
    this.ackTimer = setInterval(() => this.tick(), Math.min(20, command.ackEveryMs));
    const started = performance.now();
    const deadline = started + command.timeoutMs;
    const interval = 1000 / command.connectRatePerSec;
    const welcomed: Promise<boolean>[] = [];
    for (let i = 0; i < this.devices.length; i++) {
      for (;;) {
        const now = performance.now();
        if (now > deadline)
          throw new Error(`connect: ${i}/${this.devices.length} started by deadline`);
        const wait = Math.max(started + i * interval - now, 0);
        if (wait === 0 && this.pending < command.maxPending) break;
        await new Promise((r) => setTimeout(r, wait > 0 ? Math.max(1, wait) : 2));
      }
      const d = this.devices[i]!;
      welcomed.push(
        new Promise<boolean>((resolve) => {
          d.welcomeWaiter = resolve;
        }),
      );
      this.pending++;
      d.socket.connect(d.url, d.token, d.localAddress);
    }
    const left = Math.max(1, deadline - performance.now());
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all(welcomed),
      new Promise((r) => {
        timer = setTimeout(r, left);
      }),
    ]);
    clearTimeout(timer);
    const connected = this.devices.filter((d) => d.welcomed).length;
    if (connected < this.devices.length) {
      throw new Error(`connect: ${connected}/${this.devices.length} welcomed by the deadline`);
    }
    return {
      connected,
      seconds: (performance.now() - started) / 1000,
      refusals: this.refusals,
    };
  }

  status(): FleetStatus {
    return {
      connected: this.devices.filter((d) => d.welcomed).length,
      total: this.devices.length,
      welcomes: this.welcomes.length,
    };
  }

  async createChats(command: FleetCreateChatsCommand): Promise<{ chats: number; seconds: number }> {
    const started = performance.now();
    const ids: string[] = new Array<string>(command.chats.length);
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < command.chats.length) {
        const i = next++;
        const chat = command.chats[i]!;
        const d = this.devices[chat.creator]!;
        const reply = await this.request(
          d,
          { t: 'createChat', members: chat.members },
          command.timeoutMs,
        );
        if (reply.t !== 'ok' || typeof reply.chatId !== 'string') {
          throw new Error(`createChat failed: ${JSON.stringify(reply)}`);
        }
        ids[i] = reply.chatId;
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, command.concurrency) }, () => worker()));
    this.chatIds = ids;
    return { chats: ids.length, seconds: (performance.now() - started) / 1000 };
  }

  /** Chat ids without creating them (the bare server's topics). */
  setChats(chatIds: readonly string[]): void {
    this.chatIds = [...chatIds];
  }

  /**
   * Devices that are connected (and not in the middle of a move) go offline: a clean close, and
   * a reconnect after `offlineMs` and up to 1 s of jitter, which syncs what they missed.
   */
  churn(command: FleetChurnCommand): { closed: number } {
    let closed = 0;
    for (const i of command.devices) {
      const d = this.devices[i];
      if (d === undefined || !d.welcomed || d.leaving !== undefined) continue;
      d.offlineUntil = performance.now() + command.offlineMs + Math.random() * 1000;
      d.socket.close(1000);
      closed++;
    }
    return { closed };
  }

  stopTraffic(): void {
    const t = this.traffic;
    if (t !== null && !t.stopped) {
      t.stopped = true;
      t.stopAt = Math.min(t.stopAt, performance.now());
    }
  }

  async runTraffic(command: FleetTrafficCommand): Promise<FleetTrafficResult> {
    const t = new Traffic(++this.trafficCount, command);
    this.welcomes = [];
    this.closeCodes = new Map();
    this.closes = [];
    this.traffic = t;
    const cpu0 = process.cpuUsage();
    let drainStart = 0;
    let outstanding = (): boolean => true;
    let lastCheck = 0;
    await new Promise<void>((resolve) => {
      const timer = setInterval(() => {
        const now = performance.now();
        t.tick(now);
        if (now < t.stopAt) {
          this.sendDue(t, now);
          return;
        }
        if (drainStart === 0) {
          drainStart = now;
          outstanding = () => {
            for (let k = 0; k < t.next; k++) {
              if (t.ackState[k] === 0) return true;
              if (
                t.ackState[k] === 1 &&
                t.got[k]! < command.fanout[t.command.senders[k % t.command.senders.length]!.chat]!
              ) {
                return true;
              }
            }
            return false;
          };
        }
        if (now - lastCheck < 100) return;
        lastCheck = now;
        if (!outstanding() || now - drainStart >= command.drainTimeoutMs) {
          clearInterval(timer);
          resolve();
        }
      }, SEND_TICK_MS);
    });
    const end = performance.now();
    this.traffic = null;
    let lost = 0;
    let lostDeliveries = 0;
    for (let k = 0; k < t.next; k++) {
      if (t.ackState[k] !== 1) continue;
      const want = command.fanout[command.senders[k % command.senders.length]!.chat]!;
      if (t.got[k]! < want) {
        lost++;
        lostDeliveries += want - t.got[k]!;
      }
    }
    const cpu = process.cpuUsage(cpu0);
    return {
      startedAt: t.startedAtWall,
      seconds: (Math.min(t.stopAt, drainStart || end) - t.startAt) / 1000,
      scheduled: t.next,
      sent: t.sent,
      skipped: t.skipped,
      acked: t.acked,
      errors: t.errors,
      deliveries: t.deliveries,
      lost,
      lostDeliveries,
      deliverMs: t.deliverMs,
      deliverTo: t.deliverTo,
      ackMs: t.ackMs,
      loopLagMs: Array.from(t.loopLagMs, (x) => x ?? 0),
      welcomes: this.welcomes,
      closes: this.closes,
      closeCodes: Object.fromEntries(this.closeCodes),
      drainMs: drainStart === 0 ? 0 : end - drainStart,
      cpuSec: (cpu.user + cpu.system) / 1e6,
    };
  }

  async disconnect(): Promise<void> {
    clearInterval(this.ackTimer);
    for (const d of this.devices) {
      d.stopped = true;
      clearTimeout(d.timer);
      d.socket.destroy();
      d.leaving?.destroy();
    }
    this.devices = [];
    this.dirty.clear();
    await new Promise((r) => setTimeout(r, 200));
  }

  private sendDue(t: Traffic, now: number): void {
    const due = Math.min(t.total, Math.floor(((now - t.startAt) * t.command.rate) / 1000) + 1);
    const senders = t.command.senders;
    while (t.next < due) {
      const k = t.next++;
      const s = senders[k % senders.length]!;
      const d = this.devices[s.device]!;
      const wire = d.wire;
      if (wire === undefined) {
        t.skipped++;
        t.ackState[k] = 2;
        continue;
      }
      const id = d.nextId++;
      d.sends.set(id, k);
      if (wire === d.leaving) d.leavingIds.add(id);
      wire.send({
        t: 'send',
        id,
        chatId: this.chatIds[s.chat],
        clientMsgId: `f${t.id}-${k}`,
        body: `${t.id}:${k}`,
      });
      t.sentAt[k] = now;
      t.sent++;
    }
  }

  /** A connection of the device; its events are told apart from those of the one it replaces. */
  private newSocket(d: Device): LeanSocket {
    const socket: LeanSocket = new LeanSocket(
      this.handlers(d, () => socket),
      {
        features: FLEET_FEATURES,
      },
    );
    return socket;
  }

  private handlers(d: Device, own: () => LeanSocket): LeanHandlers {
    const leaving = (): boolean => d.leaving !== undefined && own() === d.leaving;
    return {
      onRefused: (status, retryAfterSec) => {
        this.refusals++;
        this.retry(
          d,
          retryAfterSec !== undefined ? retryAfterSec * 1000 + Math.random() * 1000 : undefined,
          status,
        );
      },
      onOpen: () => undefined,
      onFrame: (f) => (leaving() ? this.onLeavingFrame(d, f) : this.onFrame(d, f)),
      onClose: (code) => {
        if (leaving()) return this.dropLeaving(d);
        if (own() !== d.socket) return;
        const wasWelcomed = d.welcomed;
        d.welcomed = false;
        d.syncing = false;
        d.sends.clear();
        if (wasWelcomed && this.traffic !== null) {
          const key = String(code ?? 'none');
          this.closeCodes.set(key, (this.closeCodes.get(key) ?? 0) + 1);
          this.closes.push([d.index, d.node, code ?? 0, Date.now()]);
        }
        if (d.stopped) return;
        if (code === 4001) {
          this.schedule(d, Math.random() * 50); // moved: the url was already updated
        } else {
          this.retry(d, undefined, code ?? 0);
        }
      },
    };
  }

  /** Reconnect after a failure: backoff with full jitter; ask the registry where to go. */
  private retry(d: Device, delayMs: number | undefined, _why: number): void {
    const opts = this.options;
    if (d.stopped || opts === undefined) return;
    if (!opts.reconnect) {
      d.welcomeWaiter?.(false);
      return;
    }
    const backoff = delayMs ?? Math.random() * Math.min(2000, 100 * 2 ** d.attempt++);
    const delay = Math.max(backoff, d.offlineUntil - performance.now());
    clearTimeout(d.timer);
    d.timer = setTimeout(() => {
      if (d.stopped) return;
      if (opts.registryUrl === undefined) return d.socket.connect(d.url, d.token, d.localAddress);
      fetch(`${opts.registryUrl}/v1/route?user=${encodeURIComponent(d.user)}`, {
        signal: AbortSignal.timeout(3000),
      })
        .then(async (res) => {
          if (res.status === 200) d.url = ((await res.json()) as { url: string }).url;
        })
        .catch(() => undefined)
        .finally(() => {
          if (!d.stopped) d.socket.connect(d.url, d.token, d.localAddress);
        });
    }, delay);
  }

  private schedule(d: Device, delayMs: number): void {
    clearTimeout(d.timer);
    d.timer = setTimeout(() => {
      if (!d.stopped) d.socket.connect(d.url, d.token, d.localAddress);
    }, delayMs);
  }

  private onFrame(d: Device, f: Frame): void {
    switch (f.t) {
      case 'evt':
        this.onEvent(d, f);
        return;
      case 'ok':
      case 'err':
        this.onReply(d, f);
        return;
      case 'ping': {
        d.socket.send({ t: 'pong', seq: f.seq ?? 0 });
        const seq = typeof f.seq === 'number' ? f.seq : 0;
        if (seq > d.contig && d.welcomed) this.sync(d);
        return;
      }
      case 'welcome': {
        const first = d.welcomeWaiter !== undefined;
        d.welcomed = true;
        d.node = String(f.node);
        d.attempt = 0;
        if (first) {
          this.pending--;
          d.contig = typeof f.seq === 'number' ? f.seq : 0;
          d.ackedSeq = d.contig;
          d.nextAckAt = performance.now() + Math.random() * 50;
          d.welcomeWaiter!(true);
          d.welcomeWaiter = undefined;
        } else if (d.leavingServes && d.ahead.size === 0 && d.contig >= Number(f.seq ?? 0)) {
          // An overlapping move, caught up on the old connection: nothing to sync (as the SDK).
          this.finishOverlap(d);
        } else {
          this.sync(d);
        }
        if (this.traffic !== null) this.welcomes.push([d.index, String(f.node), Date.now()]);
        return;
      }
      case 'moved':
        if (typeof f.url === 'string') d.url = f.url;
        if (typeof f.closeInMs === 'number' && d.welcomed && this.options?.reconnect === true)
          this.beginOverlap(d);
        return;
      default:
        return;
    }
  }

  /**
   * `moved` with `closeInMs`: the connection stays, delivering and carrying sends, while a new
   * one connects to the new owner; `finishOverlap` closes it once that one has synced. Recorded
   * as a 4001 close (the moment the node moved the device), as a move without the overlap is.
   */
  private beginOverlap(d: Device): void {
    if (d.leaving !== undefined) this.closeLeaving(d);
    d.leaving = d.socket;
    d.leavingServes = true;
    for (const id of d.sends.keys()) d.leavingIds.add(id);
    if (this.traffic !== null) {
      this.closeCodes.set('4001', (this.closeCodes.get('4001') ?? 0) + 1);
      this.closes.push([d.index, d.node, 4001, Date.now()]);
    }
    d.socket = this.newSocket(d);
    d.welcomed = false;
    d.syncing = false;
    this.schedule(d, Math.random() * 50);
  }

  /** The new connection has synced: sends go there, the old one closes once it answered. */
  private finishOverlap(d: Device): void {
    if (!d.leavingServes) return;
    d.leavingServes = false;
    if (d.leavingIds.size === 0) this.closeLeaving(d);
  }

  private closeLeaving(d: Device): void {
    const socket = d.leaving;
    this.dropLeaving(d);
    socket?.close(1000);
  }

  /** Forgets the old connection; its unanswered sends are lost like those of any dropped one. */
  private dropLeaving(d: Device): void {
    for (const id of d.leavingIds) d.sends.delete(id);
    d.leavingIds.clear();
    d.leaving = undefined;
    d.leavingServes = false;
  }

  /** A frame on the connection being left: events, pings and replies still count. */
  private onLeavingFrame(d: Device, f: Frame): void {
    switch (f.t) {
      case 'evt':
        this.onEvent(d, f);
        return;
      case 'ping':
        d.leaving?.send({ t: 'pong', seq: f.seq ?? 0 });
        return;
      case 'ok':
      case 'err': {
        this.onReply(d, f);
        const id = typeof f.id === 'number' ? f.id : -1;
        if (d.leavingIds.delete(id) && !d.leavingServes && d.leavingIds.size === 0)
          this.closeLeaving(d);
        return;
      }
      default:
        return;
    }
  }

  private sync(d: Device): void {
    if (d.syncing) return;
    d.syncing = true;
    const id = d.nextId++;
    const via = d.socket;
    d.replies.set(id, (reply) => {
      d.syncing = false;
      if (reply.t === 'ok' && reply.more === true) this.sync(d);
      // Synced on the new connection of a move: the old one can go.
      else if (reply.t === 'ok' && via === d.socket && d.welcomed) this.finishOverlap(d);
      this.markDirty(d);
    });
    d.socket.send({ t: 'sync', id, after: d.contig });
  }

  private onReply(d: Device, f: Frame): void {
    const id = typeof f.id === 'number' ? f.id : -1;
    const k = d.sends.get(id);
    if (k === undefined) {
      const handler = d.replies.get(id);
      d.replies.delete(id);
      handler?.(f);
      return;
    }
    d.sends.delete(id);
    const t = this.traffic;
    if (t === null || t.ackState[k] !== 0) return;
    if (f.t === 'err') {
      t.ackState[k] = 2;
      t.errors++;
      return;
    }
    t.ackState[k] = 1;
    t.acked++;
    t.bucket(t.ackMs, k).push(Math.round((performance.now() - t.scheduledAt(k)) * 10) / 10);
  }

  private onEvent(d: Device, f: Frame): void {
    // The bare uWS server publishes without sequence numbers (seq -1): nothing to track.
    const seq = typeof f.seq === 'number' ? f.seq : -1;
    if (seq >= 0) {
      if (seq <= d.contig || d.ahead.has(seq)) return; // seen already (sync overlaps pushes)
      if (seq === d.contig + 1) {
        d.contig = seq;
        while (d.ahead.delete(d.contig + 1)) d.contig++;
        if (d.ahead.size === 0) d.gapSince = 0;
      } else {
        d.ahead.add(seq);
        if (d.gapSince === 0) d.gapSince = performance.now();
        this.gapped.add(d);
      }
      this.markDirty(d);
    }
    if (f.kind !== 'message' || f.from === d.user) return;
    const t = this.traffic;
    const body = f.body;
    if (t === null || typeof body !== 'string') return;
    const colon = body.indexOf(':');
    if (colon < 0 || Number(body.slice(0, colon)) !== t.id) return;
    const k = Number(body.slice(colon + 1));
    if (!(k >= 0 && k < t.total)) return;
    t.got[k]!++;
    t.deliveries++;
    t.bucket(t.deliverMs, k).push(Math.round((performance.now() - t.scheduledAt(k)) * 10) / 10);
    t.bucket(t.deliverTo, k).push(d.index);
  }

  private markDirty(d: Device): void {
    if (d.contig > d.ackedSeq) this.dirty.add(d);
  }

  /** Acks (each device at most every ackEveryMs) and syncs devices stuck on a gap for 1 s. */
  private tick(): void {
    const now = performance.now();
    const every = this.options?.ackEveryMs ?? 50;
    for (const d of this.dirty) {
      if ((!d.welcomed && d.leaving === undefined) || d.contig <= d.ackedSeq) {
        this.dirty.delete(d);
      } else if (now >= d.nextAckAt) {
        d.ackedSeq = d.contig;
        d.nextAckAt = now + every;
        // During a move both nodes push: both hear the ack.
        if (d.welcomed) d.socket.send({ t: 'ack', seq: d.ackedSeq });
        d.leaving?.send({ t: 'ack', seq: d.ackedSeq });
        this.dirty.delete(d);
      }
    }
    for (const d of this.gapped) {
      if (d.ahead.size === 0) this.gapped.delete(d);
      else if (now - d.gapSince > 1000 && d.welcomed) {
        d.gapSince = now;
        this.sync(d);
      }
    }
  }

  private request(d: Device, frame: object, timeoutMs: number): Promise<Frame> {
    const id = d.nextId++;
    return new Promise<Frame>((resolve, reject) => {
      const timer = setTimeout(() => {
        d.replies.delete(id);
        reject(new Error(`request ${JSON.stringify(frame)}: no reply in ${timeoutMs} ms`));
      }, timeoutMs);
      d.replies.set(id, (f) => {
        clearTimeout(timer);
        resolve(f);
      });
      d.socket.send({ ...frame, id });
    });
  }
}
