/** Test helpers for the protocol package: error capture, a seeded PRNG, a strict msgpack reader. */
import { ChatError } from '../src';

/** Runs `fn` and returns the ChatError it threw; fails the test when it throws nothing or something else. */
export function chatErrorOf(fn: () => unknown): ChatError {
  let thrown: unknown;
  try {
    fn();
  } catch (err) {
    thrown = err;
  }
  if (thrown === undefined) throw new Error('expected a ChatError, but nothing was thrown');
  if (!(thrown instanceof ChatError)) {
    throw new Error(`expected a ChatError, got ${String(thrown)}`, { cause: thrown });
  }
  return thrown;
}

/** mulberry32: a tiny deterministic PRNG, so that a failing seed reproduces. Returns [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A deliberately small MessagePack reader that knows only the core types of the spec (nil,
 * booleans, integers, floats, str, bin, array, map with string keys). It rejects extension
 * types, the reserved byte 0xc1 and trailing bytes, and reads 0x40-0x7f as plain positive
 * fixints, so a msgpackr record or extension in the output makes it throw or disagree.
 */
export function strictMsgpackDecode(bytes: Uint8Array): unknown {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const text = new TextDecoder('utf-8', { fatal: true });
  let pos = 0;

  const need = (n: number): number => {
    if (pos + n > bytes.length) throw new Error(`truncated at ${pos}`);
    const at = pos;
    pos += n;
    return at;
  };
  const str = (n: number): string => {
    const at = need(n);
    return text.decode(bytes.subarray(at, at + n));
  };
  const bin = (n: number): Uint8Array => {
    const at = need(n);
    return bytes.slice(at, at + n);
  };
  const arr = (n: number): unknown[] => {
    const out: unknown[] = [];
    for (let i = 0; i < n; i++) out.push(value());
    return out;
  };
  const map = (n: number): Record<string, unknown> => {
    const out: Record<string, unknown> = {};
    for (let i = 0; i < n; i++) {
      const key = value();
      if (typeof key !== 'string') throw new Error(`non-string map key at ${pos}`);
      Object.defineProperty(out, key, { value: value(), enumerable: true, writable: true });
    }
    return out;
  };
  const u64 = (at: number): number => {
    const v = view.getBigUint64(at);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error('uint64 beyond safe integers');
    return Number(v);
  };
  const i64 = (at: number): number => {
    const v = view.getBigInt64(at);
    if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) {
      throw new Error('int64 beyond safe integers');
    }
    return Number(v);
  };

  function value(): unknown {
    const b = bytes[need(1)] as number;
    if (b <= 0x7f) return b;
    if (b >= 0xe0) return b - 0x100;
    if (b >= 0x80 && b <= 0x8f) return map(b & 0x0f);
    if (b >= 0x90 && b <= 0x9f) return arr(b & 0x0f);
    if (b >= 0xa0 && b <= 0xbf) return str(b & 0x1f);
    switch (b) {
      case 0xc0:
        return null;
      case 0xc2:
        return false;
      case 0xc3:
        return true;
      case 0xc4:
        return bin(view.getUint8(need(1)));
      case 0xc5:
        return bin(view.getUint16(need(2)));
      case 0xc6:
        return bin(view.getUint32(need(4)));
      case 0xca:
        return view.getFloat32(need(4));
      case 0xcb:
        return view.getFloat64(need(8));
      case 0xcc:
        return view.getUint8(need(1));
      case 0xcd:
        return view.getUint16(need(2));
      case 0xce:
        return view.getUint32(need(4));
      case 0xcf:
        return u64(need(8));
      case 0xd0:
        return view.getInt8(need(1));
      case 0xd1:
        return view.getInt16(need(2));
      case 0xd2:
        return view.getInt32(need(4));
      case 0xd3:
        return i64(need(8));
      case 0xd9:
        return str(view.getUint8(need(1)));
      case 0xda:
        return str(view.getUint16(need(2)));
      case 0xdb:
        return str(view.getUint32(need(4)));
      case 0xdc:
        return arr(view.getUint16(need(2)));
      case 0xdd:
        return arr(view.getUint32(need(4)));
      case 0xde:
        return map(view.getUint16(need(2)));
      case 0xdf:
        return map(view.getUint32(need(4)));
      default:
        throw new Error(`type byte 0x${b.toString(16)} at ${pos - 1} is not plain msgpack`);
    }
  }

  const result = value();
  if (pos !== bytes.length) throw new Error(`${bytes.length - pos} trailing bytes`);
  return result;
}
