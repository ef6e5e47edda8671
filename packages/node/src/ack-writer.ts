/**
 * Device cursors, kept in memory and written lazily (docs/durable-path.md): a device acks every
 * event, its cursor is written at most once per flush interval with the highest seq seen, many
 * devices in one statement, and sooner (within `soonMs`) once a device disconnects, so that the
 * node it reconnects to finds it current. A crash loses at most one interval of acks: those
 * devices get the events again and drop them by seq. A failed write is kept for the next flush.
 *
 * The interval is cut into `slices`, and each device belongs to one (by a hash of its key): a
 * slice writes its own dirty devices only. Written all at once, every interval, the cursors of a
 * busy node came as a wave of statements (1,000 devices: 32 statements) that the sends queued
 * behind; the rebalance bench's p99 by second peaked every 5 s with it.
 *
 * The delivered watermarks are written with the cursors (`beforeWrite`), sliced the same way
 * by the caller.
 * A flush writes at most `maxDevicesPerStatement` devices per statement, one statement after
 * the other with a short pause between them: a statement for hundreds of devices (and the
 * inbox rows it deletes) writes enough WAL that the sends committing behind it wait, and that
 * showed in the p99 of the low-rate workloads (`bench cross-node`, p99 per 6 s phase at 300
 * msgs/s: 15-48 ms with 128 devices per statement and no pause, 11-32 ms with 32 and 10 ms).
 */
import type { ChatStore, DeviceCursor } from '@chat/store';
import type { Logger } from 'pino';
import type { Slice } from './slices';
import { sliceOf } from './slices';

export interface AckWriterOptions {
  readonly store: Pick<ChatStore, 'writeCursors'>;
  /** Longest time an ack waits to be written. */
  readonly flushMs: number;
  /** How soon after a disconnect its cursor is written (default 100 ms). */
  readonly soonMs?: number;
  readonly log: Logger;
  readonly now: () => number;
  /**
   * Runs before each write, with the slice being written (none for a full flush); a failure is
   * logged and does not stop the cursors.
   */
  readonly beforeWrite?: (slice?: Slice) => Promise<void>;
  /** Most devices per statement (default 32). */
  readonly maxDevicesPerStatement?: number;
  /** Pause between two statements of one flush (default 10 ms; all pauses of one flush
   * together at most half the flush interval, so that a large node keeps up). */
  readonly pauseMs?: number;
  /** Parts the flush interval is cut into, each writing its own devices (default 10). */
  readonly slices?: number;
}

interface Dirty {
  readonly key: string;
  readonly user: string;
  readonly device: string;
  seq: number;
  readonly slot: number;
}

export class AckWriter {
  private readonly dirty = new Map<string, Dirty>();
  private readonly slices: number;
  private slice = 0;
  private sliceTimer: NodeJS.Timeout | undefined;
  private timer: NodeJS.Timeout | undefined;
  private timerDue = Number.POSITIVE_INFINITY;
  private flushing: Promise<void> = Promise.resolve();
  /** Moves on at `discard`: a write begun before it neither goes on nor keeps its failures. */
  private generation = 0;

  constructor(private readonly options: AckWriterOptions) {
    this.slices = Math.max(1, Math.floor(options.slices ?? 10));
  }

  note(user: string, device: string, seq: number): void {
    const key = `${user}\u0000${device}`;
    const current = this.dirty.get(key);
    if (current === undefined)
      this.dirty.set(key, { key, user, device, seq, slot: sliceOf(key, this.slices) });
    else if (seq > current.seq) current.seq = seq;
    this.startSlices();
  }

  /** A device went away: write soon. */
  flushSoon(): void {
    if (this.dirty.size > 0) this.scheduleIn(this.options.soonMs ?? 100);
  }

  /** Writes everything noted so far in one statement; a failed write is kept for the next flush. */
  flush(): Promise<void> {
    this.flushing = this.flushing.then(() => this.write());
    return this.flushing;
  }

  /**
   * Forgets every cursor not written yet. For a new store epoch: they are seqs of the database
   * that was replaced, and written to the new one they would delete events the devices never
   * got there.
   */
  discard(): void {
    this.dirty.clear();
    this.generation += 1;
  }

  async close(): Promise<void> {
    clearInterval(this.sliceTimer);
    this.sliceTimer = undefined;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    await this.flush();
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Each device is written once per interval, in its slice (runs from the first ack on). */
  private startSlices(): void {
    if (this.sliceTimer !== undefined) return;
    const every = Math.max(1, Math.floor(this.options.flushMs / this.slices));
    this.sliceTimer = setInterval(() => {
      this.slice = (this.slice + 1) % this.slices;
      const slot = this.slice;
      this.flushing = this.flushing.then(() =>
        this.write((d) => d.slot === slot, { index: slot, of: this.slices }),
      );
    }, every);
    this.sliceTimer.unref();
  }

  private scheduleIn(ms: number): void {
    const due = performance.now() + ms; // monotonic: a wall-clock step must not keep an earlier flush waiting
    if (this.timer !== undefined && this.timerDue <= due) return;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timerDue = due;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.timerDue = Number.POSITIVE_INFINITY;
      void this.flush();
    }, ms);
  }

  /** Writes the dirty devices `select` picks (all by default), after `beforeWrite`. */
  private async write(select?: (d: Dirty) => boolean, slice?: Slice): Promise<void> {
    const generation = this.generation;
    try {
      await this.options.beforeWrite?.(slice);
    } catch (err) {
      this.options.log.warn({ err }, 'writing before the cursors failed; will retry');
    }
    const all =
      select === undefined ? [...this.dirty.values()] : [...this.dirty.values()].filter(select);
    if (select === undefined) this.dirty.clear();
    else for (const d of all) this.dirty.delete(d.key);
    const size = this.options.maxDevicesPerStatement ?? 32;
    const statements = Math.ceil(all.length / size);
    const pauseMs = Math.min(
      this.options.pauseMs ?? 10,
      Math.floor(this.options.flushMs / 2 / Math.max(1, statements - 1)),
    );
    for (let from = 0; from < all.length; from += size) {
      if (from > 0 && pauseMs > 0) await new Promise((resolve) => setTimeout(resolve, pauseMs));
      if (generation !== this.generation) return;
      const batch = all.slice(from, from + size);
      const cursors: DeviceCursor[] = batch.map(({ user, device, seq }) => ({
        userId: user,
        deviceId: device,
        seq,
      }));
      try {
        await this.options.store.writeCursors(cursors, this.options.now());
      } catch (err) {
        if (generation !== this.generation) return;
        this.options.log.warn({ err, devices: batch.length }, 'cursor write failed; will retry');
        for (const { user, device, seq } of all.slice(from)) this.note(user, device, seq);
        return;
      }
    }
  }
}
