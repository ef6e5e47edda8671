/**
 * The node's map of connected users to their devices, with each user's latest known sequence
 * number (for heartbeats). Enforces one connection per device and the per-user device limit.
 */
import { CloseCode } from '@chat/protocol';
import type { Session } from './session';

interface UserEntry {
  readonly devices: Map<string, Session>;
  latestSeq: number;
}

export type AddResult =
  { ok: true; replaced: Session | undefined } | { ok: false; reason: 'LIMIT' };

export class SessionRegistry {
  private readonly byUser = new Map<string, UserEntry>();
  private connections = 0;

  constructor(private readonly maxDevicesPerUser: number) {}

  get connectionCount(): number {
    return this.connections;
  }

  get userCount(): number {
    return this.byUser.size;
  }

  /**
   * Adds a session. A session of the same device is replaced (and closed with 4008 by this
   * call); a device beyond the limit is refused and the caller closes it with 4009.
   */
  add(session: Session): AddResult {
    let entry = this.byUser.get(session.user);
    if (entry === undefined) {
      entry = { devices: new Map(), latestSeq: 0 };
      this.byUser.set(session.user, entry);
    }
    const previous = entry.devices.get(session.device);
    if (previous === undefined && entry.devices.size >= this.maxDevicesPerUser) {
      if (entry.devices.size === 0) this.byUser.delete(session.user);
      return { ok: false, reason: 'LIMIT' };
    }
    entry.devices.set(session.device, session);
    if (previous === undefined) this.connections += 1;
    else previous.close(CloseCode.REPLACED, 'replaced by a newer connection');
    return { ok: true, replaced: previous };
  }

  /** Removes the session if it is still the registered one for its device. */
  remove(session: Session): void {
    const entry = this.byUser.get(session.user);
    if (entry === undefined || entry.devices.get(session.device) !== session) return;
    entry.devices.delete(session.device);
    this.connections -= 1;
    if (entry.devices.size === 0) this.byUser.delete(session.user);
  }

  /**
   * Forgets every session and every user's latest seq at once, and returns the sessions (for
   * the caller to close): after a new store epoch nothing of it holds.
   */
  removeAll(): Session[] {
    const sessions = [...this.all()];
    this.byUser.clear();
    this.connections = 0;
    return sessions;
  }

  devicesOf(user: string): Iterable<Session> {
    return this.byUser.get(user)?.devices.values() ?? [];
  }

  /** True when the device has a connection here. */
  hasDevice(user: string, device: string): boolean {
    return this.byUser.get(user)?.devices.has(device) ?? false;
  }

  isOnline(user: string): boolean {
    return this.byUser.has(user);
  }

  latestSeq(user: string): number {
    return this.byUser.get(user)?.latestSeq ?? 0;
  }

  /** Raises the user's latest known seq (never lowers it); no-op for users not connected. */
  noteSeq(user: string, seq: number): void {
    const entry = this.byUser.get(user);
    if (entry !== undefined && seq > entry.latestSeq) entry.latestSeq = seq;
  }

  users(): Iterable<string> {
    return this.byUser.keys();
  }

  *all(): Iterable<Session> {
    for (const entry of this.byUser.values()) yield* entry.devices.values();
  }
}
