/**
 * Seeded fuzzing of decodeClientFrame: whatever arrives, the result is a valid client frame or a
 * ChatError with a code of the table, never another exception. Reproduce a failure with
 * FUZZ_SEED=<seed> (the failure report names the seed, the iteration and the generator).
 */
import { isDeepStrictEqual } from 'node:util';
import type { Codec, ErrorCode } from '../src';
import {
  ChatError,
  decodeClientFrame,
  defaultLimits,
  ErrorCodes,
  jsonCodec,
  msgpackCodec,
  validateClientFrame,
} from '../src';
import { mulberry32 } from './helpers';

const SEED = Number(process.env.FUZZ_SEED ?? 0x5eed_cafe);
const ITERATIONS = 10_000;
/** Far above any honest decode of a 64 KiB frame; catches pathological slowness. */
const SLOW_MS = 1000;

const clientTypes = new Set([
  'createChat',
  'addMembers',
  'removeMembers',
  'listChats',
  'send',
  'sync',
  'read',
  'lastSeen',
  'uploadTarget',
  'downloadUrl',
  'ack',
  'typing',
  'pong',
  'block',
  'unblock',
  'listBlocked',
  'privacy',
]);
const errorCodes = new Set<string>(ErrorCodes);

const samples: ReadonlyArray<Record<string, unknown>> = [
  { t: 'createChat', id: 1, members: ['bob', 'carol'], name: 'friends' },
  { t: 'addMembers', id: 2, chatId: 'c-1', members: ['dave'] },
  { t: 'removeMembers', id: 3, chatId: 'c-1', members: ['dave'] },
  { t: 'listChats', id: 4 },
  {
    t: 'send',
    id: 5,
    chatId: 'c-1',
    clientMsgId: 'm-1',
    body: 'hello',
    attachments: [{ key: 'k', mime: 'image/png', size: 3 }],
  },
  { t: 'sync', id: 6, after: 10, limit: 20 },
  { t: 'read', id: 7, chatId: 'c-1', messageId: 'msg-1' },
  { t: 'lastSeen', id: 8, user: 'bob' },
  { t: 'uploadTarget', id: 9, mime: 'image/png', size: 100 },
  { t: 'downloadUrl', id: 10, key: 'k' },
  { t: 'ack', seq: 3 },
  { t: 'typing', chatId: 'c-1' },
  { t: 'pong', seq: 4 },
  { t: 'block', id: 11, user: 'mallory' },
  { t: 'unblock', id: 12, user: 'mallory' },
  { t: 'listBlocked', id: 13 },
  { t: 'privacy', id: 14, lastSeen: 'nobody' },
];

const keyPool = [
  't',
  'id',
  'seq',
  'chatId',
  'clientMsgId',
  'messageId',
  'members',
  'name',
  'body',
  'attachments',
  'after',
  'limit',
  'user',
  'mime',
  'size',
  'key',
  'lastSeen',
  '__proto__',
  'constructor',
  'toString',
];

type Rnd = () => number;
type Wire = string | Uint8Array | ArrayBuffer;

const int = (rnd: Rnd, n: number): number => Math.floor(rnd() * n);
const pick = <T>(rnd: Rnd, items: readonly T[]): T => items[int(rnd, items.length)] as T;

function randomString(rnd: Rnd): string {
  const len = pick(rnd, [0, 1, 3, 8, 20, 64, 65, 200, 4096, 4097]);
  // A short random stem, repeated: long strings without paying for each character.
  let stem = '';
  for (let i = Math.min(len, 16); i > 0; i--) {
    // Mostly id-safe ASCII, sometimes any UTF-16 code unit (lone surrogates included).
    stem += String.fromCharCode(rnd() < 0.8 ? 0x21 + int(rnd, 0x5e) : int(rnd, 0x10000));
  }
  return stem.repeat(Math.ceil(len / Math.max(stem.length, 1))).slice(0, len);
}

function randomValue(rnd: Rnd, depth: number): unknown {
  const r = int(rnd, depth > 3 ? 8 : 11);
  switch (r) {
    case 0:
      return null;
    case 1:
      return rnd() < 0.5;
    case 2:
      return int(rnd, 200) - 20;
    case 3:
      return pick(rnd, [
        -0,
        1.5,
        2 ** 31,
        2 ** 32,
        2 ** 53 - 1,
        2 ** 53,
        2 ** 64,
        -(2 ** 63),
        Number.NaN,
        Infinity,
        -Infinity,
        1e308,
        5e-324,
      ]);
    case 4:
      return randomString(rnd);
    case 5:
      return pick(rnd, [...clientTypes, 'ok', 'err', 'evt', '']);
    case 6:
      return pick(rnd, ['bob', 'c-1', 'm-1', 'image/png', '']);
    case 7:
      return undefined;
    case 8:
      return rnd() < 0.3
        ? Array.from({ length: pick(rnd, [99, 100, 101, 150]) }, (_, i) => `u${i}`)
        : Array.from({ length: int(rnd, 6) }, () => randomValue(rnd, depth + 1));
    default: {
      const o: Record<string, unknown> = {};
      const n = int(rnd, 8);
      for (let i = 0; i < n; i++) {
        const k = rnd() < 0.8 ? pick(rnd, keyPool) : randomString(rnd);
        Object.defineProperty(o, k, {
          value: randomValue(rnd, depth + 1),
          enumerable: true,
          writable: true,
          configurable: true,
        });
      }
      return o;
    }
  }
}

function bytesOf(wire: string | Uint8Array): Uint8Array {
  return typeof wire === 'string' ? new TextEncoder().encode(wire) : wire;
}

/** Hands the same bytes over as each of the shapes a WebSocket library may give. */
function asWire(rnd: Rnd, codec: Codec, bytes: Uint8Array): Wire {
  const r = rnd();
  if (codec === jsonCodec && r < 0.4) return Buffer.from(bytes).toString('latin1');
  if (r < 0.7) return bytes;
  if (r < 0.85) return Buffer.from(bytes);
  return new Uint8Array(bytes).buffer;
}

function nested(codec: Codec, depth: number, asMap: boolean): Wire {
  if (codec === jsonCodec) {
    return asMap
      ? '{"t":'.repeat(depth) + '1' + '}'.repeat(depth)
      : '['.repeat(depth) + ']'.repeat(depth);
  }
  const unit = asMap ? [0x81, 0xa1, 0x74] : [0x91];
  const out = new Uint8Array(unit.length * depth + 1);
  for (let i = 0; i < depth; i++) out.set(unit, i * unit.length);
  out[out.length - 1] = 0xc0;
  return out;
}

const generators: ReadonlyArray<readonly [string, number, (rnd: Rnd, codec: Codec) => Wire]> = [
  [
    'random bytes',
    20,
    (rnd, codec) => {
      const b = new Uint8Array(int(rnd, 300));
      for (let i = 0; i < b.length; i++) b[i] = int(rnd, 256);
      return asWire(rnd, codec, b);
    },
  ],
  ['random text', 8, (rnd) => randomString(rnd)],
  [
    'truncated valid frame',
    15,
    (rnd, codec) => {
      const b = bytesOf(codec.encode(pick(rnd, samples)));
      return asWire(rnd, codec, b.slice(0, int(rnd, b.length)));
    },
  ],
  [
    'flipped bytes',
    20,
    (rnd, codec) => {
      const b = bytesOf(codec.encode(pick(rnd, samples))).slice();
      for (let n = 1 + int(rnd, 4); n > 0; n--) {
        const at = int(rnd, b.length);
        b[at] = (b[at] as number) ^ (1 + int(rnd, 255));
      }
      return asWire(rnd, codec, b);
    },
  ],
  ['random value', 15, (rnd, codec) => codec.encode((randomValue(rnd, 0) ?? null) as object)],
  [
    'mutated field',
    20,
    (rnd, codec) => {
      const frame: Record<string, unknown> = { ...pick(rnd, samples) };
      for (let n = 1 + int(rnd, 3); n > 0; n--) {
        const k = rnd() < 0.7 ? pick(rnd, Object.keys(frame)) : pick(rnd, keyPool);
        if (rnd() < 0.2) delete frame[k];
        else if (rnd() < 0.1)
          frame.members = Array.from({ length: 95 + int(rnd, 10) }, (_, i) => `u${i}`);
        else frame[k] = randomValue(rnd, 0);
      }
      return codec.encode(frame);
    },
  ],
  [
    'deep nesting',
    2,
    (rnd, codec) => nested(codec, pick(rnd, [10, 1000, 10_000, 21_000, 40_000]), rnd() < 0.5),
  ],
];
const totalWeight = generators.reduce((sum, [, w]) => sum + w, 0);

function pickGenerator(rnd: Rnd): (typeof generators)[number] {
  let x = rnd() * totalWeight;
  for (const g of generators) {
    x -= g[1];
    if (x < 0) return g;
  }
  return generators[generators.length - 1] as (typeof generators)[number];
}

/** A deep copy made in this realm (structuredClone's arrays would have another prototype). */
function copy(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(copy);
  if (typeof value !== 'object' || value === null) return value;
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, copy(v)]));
}

function preview(wire: Wire): string {
  const bytes = typeof wire === 'string' ? bytesOf(wire) : new Uint8Array(wire);
  return `${bytes.length} bytes: ${Buffer.from(bytes.subarray(0, 48)).toString('hex')}`;
}

describe.each<[string, Codec]>([
  ['json', jsonCodec],
  ['msgpack', msgpackCodec],
])('fuzzing decodeClientFrame with the %s codec', (name, codec) => {
  it(`gives a valid frame or a ChatError for ${ITERATIONS} hostile frames (seed ${SEED})`, () => {
    const rnd = mulberry32(SEED ^ (name === 'json' ? 0 : 0x9e3779b9));
    const failures: string[] = [];
    const codes = new Map<ErrorCode, number>();
    const perGenerator = new Map<string, number>();
    let accepted = 0;

    for (let i = 0; i < ITERATIONS; i++) {
      const [label, , generate] = pickGenerator(rnd);
      perGenerator.set(label, (perGenerator.get(label) ?? 0) + 1);
      const wire = generate(rnd, codec);
      const where = `seed ${SEED} iteration ${i} (${label}, ${preview(wire)})`;
      const started = performance.now();
      try {
        const frame = decodeClientFrame(codec, wire, defaultLimits);
        accepted++;
        if (!clientTypes.has(frame.t)) failures.push(`${where}: accepted type ${frame.t}`);
        const again = validateClientFrame(copy(frame), defaultLimits);
        if (!isDeepStrictEqual(again, frame)) {
          failures.push(`${where}: accepted ${JSON.stringify(frame)} is not a fixed point`);
        }
      } catch (err) {
        if (!(err instanceof ChatError)) {
          failures.push(`${where}: threw ${String(err)}`);
        } else if (!errorCodes.has(err.code)) {
          failures.push(`${where}: unknown code ${String(err.code)}`);
        } else {
          codes.set(err.code, (codes.get(err.code) ?? 0) + 1);
        }
      }
      const ms = performance.now() - started;
      if (ms > SLOW_MS) failures.push(`${where}: took ${ms.toFixed(0)} ms`);
      if (failures.length >= 20) break;
    }

    expect(failures).toStrictEqual([]);
    // The run must have exercised both outcomes and every generator, or it proves nothing.
    expect([...perGenerator.keys()].sort()).toStrictEqual(generators.map(([l]) => l).sort());
    expect(accepted).toBeGreaterThan(ITERATIONS / 100);
    expect(codes.get('BAD_REQUEST')).toBeGreaterThan(ITERATIONS / 10);
    expect(codes.get('TOO_LARGE')).toBeGreaterThan(0);
    expect(codes.get('LIMIT')).toBeGreaterThan(0);
    // And the codec still works afterwards.
    for (const sample of samples) {
      expect(decodeClientFrame(codec, codec.encode(sample), defaultLimits)).toStrictEqual(sample);
    }
  });
});
