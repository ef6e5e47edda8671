/**
 * Coalesces device acks: a device acks every event, but its cursor is written to Postgres at
 * most once per flush interval, with the highest seq seen. A failed write is kept for the next
 * flush (a lost cursor write only means events are kept, never lost).
 */
import type { ChatStore, DeviceCursor } from '@chat/store';
import type { Logger } from 'pino';

export class AckWriter {
  private readonly dirty = new Map<string, { user: string; device: string; seq: number }>();
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();

  constructor(
    private readonly store: ChatStore,
    private readonly flushMs: number,
    private readonly log: Logger,
    /** Runs before each write with its cursors (delivered receipts need the events it deletes). */
    private readonly beforeWrite?: (cursors: readonly DeviceCursor[]) => Promise<void>,
    /** When given, each write also refreshes the devices' last_active (retention keeps them). */
    private readonly now?: () => number,
  ) {}

  note(user: string, device: string, seq: number): void {
    const key = `${user}\u0000${device}`;
    const current = this.dirty.get(key);
    if (current === undefined) this.dirty.set(key, { user, device, seq });
    else if (seq > current.seq) current.seq = seq;
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      this.flushing = this.flushing.then(() => this.flush());
    }, this.flushMs);
  }

  /** Writes everything noted so far in one statement; a failed write is kept for the next flush. */
  async flush(): Promise<void> {
    const batch = [...this.dirty.values()];
    this.dirty.clear();
    if (batch.length === 0) return;
    const cursors = batch.map(({ user, device, seq }) => ({ userId: user, deviceId: device, seq }));
    try {
      await this.beforeWrite?.(cursors);
      await this.store.ackMany(cursors, this.now?.());
    } catch (err) {
      this.log.warn({ err, devices: batch.length }, 'ack write failed; will retry');
      for (const { user, device, seq } of batch) this.note(user, device, seq);
    }
  }

  async close(): Promise<void> {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    await this.flushing;
    await this.flush();
    if (this.timer !== undefined) clearTimeout(this.timer);
  }
}
