/**
 * Light shape checks of frames from the node: enough that the client never acts on a field of
 * the wrong type. Unknown frame types are ignored by the caller (forward compatibility).
 */
import type { ServerFrame } from '@chat/protocol';

const KNOWN = new Set(['welcome', 'ok', 'err', 'evt', 'receipts', 'typing', 'ping', 'moved']);

const optionalString = (v: unknown): boolean => v === undefined || typeof v === 'string';

function isInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/** The frame typed, or undefined when it is not a frame this client understands. */
export function parseServerFrame(value: unknown): ServerFrame | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const f = value as Record<string, unknown>;
  if (typeof f.t !== 'string' || !KNOWN.has(f.t)) return undefined;
  switch (f.t) {
    case 'welcome':
      if (!isInt(f.seq) || typeof f.node !== 'string' || !isInt(f.heartbeatMs)) return undefined;
      if (!optionalString(f.storeEpoch)) return undefined;
      break;
    case 'ok':
      if (!isInt(f.id)) return undefined;
      break;
    case 'err':
      if (typeof f.code !== 'string' || (f.id !== undefined && !isInt(f.id))) return undefined;
      break;
    case 'evt':
    case 'ping':
      if (!isInt(f.seq)) return undefined;
      break;
    case 'typing':
      if (typeof f.chatId !== 'string' || typeof f.user !== 'string') return undefined;
      break;
    case 'receipts':
      if (typeof f.chatId !== 'string' || typeof f.user !== 'string') return undefined;
      if (!optionalString(f.delivered) || !optionalString(f.read)) return undefined;
      break;
    case 'moved':
      if (typeof f.url !== 'string' || typeof f.node !== 'string') return undefined;
      break;
  }
  return value as ServerFrame;
}
