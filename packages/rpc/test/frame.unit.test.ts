import {
  FrameDecoder,
  FrameError,
  backoffDelay,
  createPackr,
  encodeFrame,
  parseAddress,
} from '../src';

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

describe('backoffDelay', () => {
  it('grows exponentially up to the cap, with full jitter', () => {
    const opts = { baseMs: 10, maxMs: 1000 };
    expect(backoffDelay(0, opts, () => 0.999)).toBe(9);
    expect(backoffDelay(3, opts, () => 0.5)).toBe(40);
    expect(backoffDelay(50, opts, () => 0.999)).toBe(999);
    expect(backoffDelay(5, opts, () => 0)).toBe(0);
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
