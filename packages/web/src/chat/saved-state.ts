/**
 * The device's copy of its chats in localStorage, one entry per user and device. The inbox seq
 * is saved in the same entry as the events it covers. The page saves before the SDK's ack of
 * those events leaves the task that delivered them (see `ChatSession`), so an event the server
 * may delete is always in this copy first.
 */
import type { Identity } from './identity';
import type { SavedState, SavedStateV1 } from './model';

function keyOf(identity: Identity): string {
  return `chat.state.${identity.user}.${identity.device}`;
}

/** The seq of the saved copy, kept beside it so that a save can be checked cheaply. */
function seqKeyOf(identity: Identity): string {
  return `${keyOf(identity)}.seq`;
}

function isSavedState(value: unknown): value is SavedState | SavedStateV1 {
  const v = value as Partial<SavedState> & Partial<Omit<SavedStateV1, 'version'>>;
  const base =
    typeof v === 'object' &&
    v !== null &&
    Number.isSafeInteger(v.lastSeq) &&
    Array.isArray(v.chats) &&
    typeof v.messages === 'object' &&
    v.messages !== null &&
    Object.values(v.messages).every(Array.isArray);
  if (!base) return false;
  const version = (v as { version?: unknown }).version;
  if (version === 2) return typeof v.marks === 'object' && v.marks !== null;
  return version === 1 && typeof v.receipts === 'object' && v.receipts !== null;
}

/**
 * The saved copy (a version 1 copy, from before receipts became watermarks, is read too), or
 * undefined when there is none or it is not one this page can read.
 */
export function loadState(
  storage: Storage,
  identity: Identity,
): SavedState | SavedStateV1 | undefined {
  const raw = storage.getItem(keyOf(identity));
  if (raw === null) return undefined;
  try {
    const parsed: unknown = JSON.parse(raw);
    return isSavedState(parsed) ? parsed : undefined;
  } catch {
    return undefined;
  }
}

export type SaveResult = 'saved' | 'stale' | 'failed';

/**
 * Saves the state unless the stored copy is further along (another tab of the same device
 * took over and saved later events): 'stale' then, and nothing is written. 'failed' when
 * storage is full or refused.
 */
export function storeState(storage: Storage, identity: Identity, state: SavedState): SaveResult {
  const stored = Number(storage.getItem(seqKeyOf(identity)) ?? 0);
  if (stored > state.lastSeq) return 'stale';
  try {
    storage.setItem(keyOf(identity), JSON.stringify(state));
    storage.setItem(seqKeyOf(identity), String(state.lastSeq));
    return 'saved';
  } catch {
    return 'failed';
  }
}

/** Forgets the saved copy (it belongs to another server's history). */
export function clearState(storage: Storage, identity: Identity): void {
  storage.removeItem(keyOf(identity));
  storage.removeItem(seqKeyOf(identity));
}
