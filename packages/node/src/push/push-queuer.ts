/**
 * Decides, on the owner node, which devices are told about a new message by push (issue 18):
 * every device of the recipient with a push target that is not connected here, and every
 * connected one that has not acked the message within `ackWaitMs`. Only messages from someone
 * else count, and only for users this node owns (during a move both owners may deliver; only
 * the owner queues). The notifications go to the durable outbox, coalesced there per device and
 * chat; the delivery worker sends them.
 *
 * The hot path stays cheap: users without targets are known from the cache (no statement per
 * message), and the store is written only for users with a device to notify, one statement per
 * user per delivered batch. Queueing is best effort: a write that fails is logged and the
 * device learns of the message when it next connects.
 */
import type { Delivery, PushIntent } from '@chat/store';
import type { Logger } from 'pino';
import type { DeviceTargets, TargetsCache } from './targets-cache';

export interface PushQueuerDeps {
  readonly targets: TargetsCache;
  readonly enqueue: (user: string, intents: readonly PushIntent[], now: number) => Promise<void>;
  /** True when the device has a connection on this node. */
  readonly isConnected: (user: string, device: string) => boolean;
  readonly isOwned: (user: string) => boolean;
  readonly now: () => number;
  readonly log: Logger;
  readonly ackWaitMs: number;
  /** Most messages awaiting a connected device's ack at once; past it the oldest are queued. */
  readonly maxAwaiting?: number;
}

interface Awaiting extends PushIntent {
  readonly user: string;
  readonly seq: number;
  readonly deadline: number;
}

interface MessageFor {
  readonly user: string;
  readonly chatId: string;
  readonly from: string;
  readonly seq: number;
}

const DEFAULT_MAX_AWAITING = 100_000;

function deviceKey(user: string, device: string): string {
  return `${user}\u0000${device}`;
}

export class PushQueuer {
  /** In deadline order (every deadline is now + ackWaitMs). */
  private awaiting: Awaiting[] = [];
  /** Highest ack per device with something awaiting, and how many things await it. */
  private readonly acked = new Map<string, { seq: number; waiting: number }>();
  private readonly writes = new Set<Promise<void>>();

  constructor(private readonly deps: PushQueuerDeps) {}

  /** Committed inbox events reaching this node's delivery (called on every delivered batch). */
  onDelivered(deliveries: readonly Delivery[]): void {
    let later: MessageFor[] | undefined;
    const now = this.deps.now();
    const intents = new Map<string, PushIntent[]>();
    for (const { userId, event } of deliveries) {
      if (event.kind !== 'message' || event.from === userId) continue;
      const message = { user: userId, chatId: event.chatId, from: event.from, seq: event.seq };
      const targets = this.deps.targets.peek(userId);
      if (targets === undefined) (later ??= []).push(message);
      else if (targets.size > 0) this.plan(message, targets, now, intents);
    }
    this.write(intents, now);
    if (later !== undefined) this.track(this.planAfterLoad(later));
  }

  /** A device's cumulative ack. */
  noteAck(user: string, device: string, seq: number): void {
    const entry = this.acked.get(deviceKey(user, device));
    if (entry !== undefined && seq > entry.seq) entry.seq = seq;
  }

  /** Queues what connected devices did not ack in time; call every few hundred ms. */
  checkAcks(): void {
    const now = this.deps.now();
    let n = 0;
    while (n < this.awaiting.length && this.awaiting[n]!.deadline <= now) n++;
    if (n === 0) return;
    const due = this.awaiting.slice(0, n);
    this.awaiting = this.awaiting.slice(n);
    const intents = new Map<string, PushIntent[]>();
    for (const item of due) {
      const key = deviceKey(item.user, item.deviceId);
      const entry = this.acked.get(key);
      const ackedSeq = entry?.seq ?? 0;
      if (entry !== undefined && --entry.waiting === 0) this.acked.delete(key);
      if (ackedSeq >= item.seq || !this.deps.isOwned(item.user)) continue;
      pushTo(intents, item.user, { deviceId: item.deviceId, chatId: item.chatId, from: item.from });
    }
    this.write(intents, now);
  }

  /** Messages waiting for an ack (for stats). */
  get awaitingCount(): number {
    return this.awaiting.length;
  }

  /** Waits for the writes under way (shutdown, tests). */
  async flush(): Promise<void> {
    while (this.writes.size > 0) await Promise.allSettled([...this.writes]);
  }

  private plan(
    message: MessageFor,
    targets: DeviceTargets,
    now: number,
    intents: Map<string, PushIntent[]>,
  ): void {
    if (!this.deps.isOwned(message.user)) return;
    for (const device of targets.keys()) {
      const intent = { deviceId: device, chatId: message.chatId, from: message.from };
      if (!this.deps.isConnected(message.user, device)) {
        pushTo(intents, message.user, intent);
        continue;
      }
      this.await({
        ...intent,
        user: message.user,
        seq: message.seq,
        deadline: now + this.deps.ackWaitMs,
      });
    }
  }

  private await(item: Awaiting): void {
    const key = deviceKey(item.user, item.deviceId);
    const entry = this.acked.get(key);
    if (entry === undefined) this.acked.set(key, { seq: 0, waiting: 1 });
    else entry.waiting += 1;
    this.awaiting.push(item);
    const max = this.deps.maxAwaiting ?? DEFAULT_MAX_AWAITING;
    if (this.awaiting.length > max) {
      // Rather queue a notification early than hold unbounded state.
      const oldest = this.awaiting[0]!;
      this.awaiting[0] = { ...oldest, deadline: 0 };
      this.checkAcks();
    }
  }

  private async planAfterLoad(messages: readonly MessageFor[]): Promise<void> {
    const users = [...new Set(messages.map((m) => m.user))];
    const byUser = await this.deps.targets.getMany(users).catch((err: unknown) => {
      this.deps.log.warn({ err, users: users.length }, 'cannot read push targets; no notification');
      return new Map<string, DeviceTargets>();
    });
    const now = this.deps.now();
    const intents = new Map<string, PushIntent[]>();
    for (const message of messages) {
      const targets = byUser.get(message.user);
      if (targets !== undefined && targets.size > 0) this.plan(message, targets, now, intents);
    }
    this.write(intents, now);
  }

  private write(intents: ReadonlyMap<string, readonly PushIntent[]>, now: number): void {
    for (const [user, list] of intents) {
      this.track(
        this.deps.enqueue(user, list, now).catch((err: unknown) => {
          this.deps.log.warn({ err, user }, 'cannot queue push notifications');
        }),
      );
    }
  }

  private track(work: Promise<void>): void {
    this.writes.add(work);
    void work.finally(() => this.writes.delete(work));
  }
}

function pushTo(map: Map<string, PushIntent[]>, user: string, intent: PushIntent): void {
  const list = map.get(user);
  if (list === undefined) map.set(user, [intent]);
  else list.push(intent);
}
