/**
 * The device's copy of its chats in localStorage, one entry per user and device. The inbox seq
 * is saved in the same entry as the events it covers, so a reload never skips an event.
 */
import type { Identity } from './identity';
import type { SavedState } from './model';

function keyOf(identity: Identity): string {
  return `chat.state.${identity.user}.${identity.device}`;
}

export function loadState(storage: Storage, identity: Identity): SavedState | undefined {
  const raw = storage.getItem(keyOf(identity));
  if (raw === null) return undefined;
  try {
    const parsed = JSON.parse(raw) as Partial<SavedState>;
    if (parsed.version !== 1 || typeof parsed.lastSeq !== 'number') return undefined;
    return parsed as SavedState;
  } catch {
    return undefined;
  }
}

/** Saves the state; false when storage is full or refused (the page goes on from memory). */
export function storeState(storage: Storage, identity: Identity, state: SavedState): boolean {
  try {
    storage.setItem(keyOf(identity), JSON.stringify(state));
    return true;
  } catch {
    return false;
  }
}
