import {
  FrameDecoder,
  FrameError,
  createPackr,
  defaultBackoff,
  encodeFrame,
  frameChecksum,
  parseAddress,
} from '../src';
import { backoffCeiling, backoffDelay } from '@chat/protocol';

const packr = createPackr();
const decoder = (maxFrameBytes = 1024): FrameDecoder =>
  new FrameDecoder(createPackr(), { maxFrameBytes });

function reasonOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof FrameError) return err.reason;
    throw err;
  }
  throw new Error('expected a FrameError');
}

describe('frames', () => {
  const values = [
    { t: 'req', id: 1, m: 'deliver', p: { users: ['a', 'b'] } },
    { t: 'res', id: 2, r: null },
    'x',
  ];
  const stream = Buffer.concat(values.map((v) => encodeFrame(packr, v, 1024)));

  it('decodes several frames from one chunk', () => {
    expect(decoder().push(stream)).toEqual(values);
  });

  it('decodes a stream split at every byte', () => {
    const d = decoder();
    const out: unknown[] = [];
    for (let i = 0; i < stream.length; i++) out.push(...d.push(stream.subarray(i, i + 1)));
    expect(out).toEqual(values);
    expect(d.pendingBytes).toBe(0);
  });

  it('keeps a truncated frame pending', () => {
    const d = decoder();
    expect(d.push(stream.subarray(0, stream.length - 1))).toEqual(values.slice(0, 2));
    expect(d.pendingBytes).toBeGreaterThan(0);
  });

  it('rejects an oversized length prefix before buffering the body', () => {
    const header = Buffer.alloc(4);
    header.writeUInt32BE(0xffffffff);
    expect(reasonOf(() => decoder().push(header))).toBe('too_large');
  });

  it('rejects an empty frame and undecodable bytes', () => {
    expect(reasonOf(() => decoder().push(Buffer.from([0, 0, 0, 0])))).toBe('bad_length');
    expect(reasonOf(() => decoder().push(Buffer.from([0, 0, 0, 2, 0x92, 0x01])))).toBe(
      'undecodable',
    );
    // A valid value followed by trailing bytes inside one frame.
    expect(reasonOf(() => decoder().push(Buffer.from([0, 0, 0, 2, 0x01, 0x02])))).toBe(
      'undecodable',
    );
  });

  it('refuses to encode a frame over the limit', () => {
    expect(reasonOf(() => encodeFrame(packr, 'x'.repeat(2000), 1024))).toBe('too_large');
  });

  it('encodes plain msgpack maps, not msgpackr records', () => {
    const frame = encodeFrame(packr, { a: 1 }, 1024);
    // map16 with one entry (msgpackr sizes maps this way), "a" => 1: no extension types.
    expect([...frame]).toEqual([0, 0, 0, 6, 0xde, 0x00, 0x01, 0xa1, 0x61, 0x01]);
  });
});

describe('checksummed frames', () => {
  const deliver = { t: 'req', id: 7, m: 'deliver', p: { body: 'see you at 8' } };
  const plain = encodeFrame(packr, deliver, 1024);
  const checked = Buffer.concat([plain, frameChecksum(plain)]);
  /** The frame with the byte of the body's '8' changed to '9'. */
  const flipped = (frame: Buffer): Buffer => {
    const copy = Buffer.from(frame);
    copy[plain.indexOf('8')] = '9'.charCodeAt(0);
    return copy;
  };
  const checksumming = (): FrameDecoder => {
    const d = decoder();
    d.expectChecksums();
    return d;
  };

  it('decodes a byte flipped in a string into a valid but wrong message without them', () => {
    expect(decoder().push(flipped(plain))).toEqual([{ ...deliver, p: { body: 'see you at 9' } }]);
  });

  it('decodes frames with their trailer, whole or split at every byte', () => {
    expect(checksumming().push(Buffer.concat([checked, checked]))).toEqual([deliver, deliver]);
    const d = checksumming();
    const out: unknown[] = [];
    for (let i = 0; i < checked.length; i++) out.push(...d.push(checked.subarray(i, i + 1)));
    expect(out).toEqual([deliver]);
    expect(d.pendingBytes).toBe(0);
  });

  it('rejects a frame whose body, length or trailer was changed', () => {
    expect(reasonOf(() => checksumming().push(flipped(checked)))).toBe('bad_checksum');
    const trailer = Buffer.from(checked);
    trailer[trailer.length - 1]! ^= 0x01;
    expect(reasonOf(() => checksumming().push(trailer))).toBe('bad_checksum');
    const shorter = Buffer.from(checked);
    shorter[3]! -= 1;
    expect(reasonOf(() => checksumming().push(shorter))).toBe('bad_checksum');
  });

  it('switches mid-stream, after the frame it was switched on', () => {
    const d = decoder();
    expect(d.push(plain.subarray(0, 2))).toEqual([]);
    expect(d.push(plain.subarray(2))).toEqual([deliver]);
    d.expectChecksums();
    expect(d.push(checked)).toEqual([deliver]);
  });
});

describe('defaultBackoff', () => {
  it('spreads reconnects to a restarted peer over the whole range below the ceiling', () => {
    const ceiling = backoffCeiling(3, defaultBackoff);
    expect([0, 0.5, 0.9999].map((r) => backoffDelay(3, defaultBackoff, () => r))).toEqual([
      0,
      ceiling / 2,
      ceiling - 1,
    ]);
  });
});

describe('parseAddress', () => {
  it('parses host:port and [v6]:port', () => {
    expect(parseAddress('10.0.0.2:7001')).toEqual({ host: '10.0.0.2', port: 7001 });
    expect(parseAddress('[::1]:7001')).toEqual({ host: '::1', port: 7001 });
    expect(() => parseAddress('nohost')).toThrow(RangeError);
    expect(() => parseAddress('h:0')).toThrow(RangeError);
  });
});
