import { maskedTextFrame, peakPerSecond, percentile, readFrame } from '../src';

function unmask(frame: Buffer): string {
  const len = frame[1]! & 0x7f;
  const head = len === 126 ? 4 : 2;
  const mask = frame.subarray(head, head + 4);
  const payload = Buffer.from(frame.subarray(head + 4));
  for (let i = 0; i < payload.length; i++) payload[i]! ^= mask[i & 3]!;
  return payload.toString('utf8');
}

describe('lean WebSocket frames', () => {
  it('masks short and 16-bit-length text frames', () => {
    expect(unmask(maskedTextFrame('{"t":"ack","seq":1}'))).toBe('{"t":"ack","seq":1}');
    const long = 'x'.repeat(300);
    const frame = maskedTextFrame(long);
    expect(frame[1]! & 0x7f).toBe(126);
    expect(frame.readUInt16BE(2)).toBe(300);
    expect(unmask(frame)).toBe(long);
  });

  it('reads whole unmasked server frames and waits for partial ones', () => {
    const payload = Buffer.from('{"t":"welcome"}');
    const frame = Buffer.concat([Buffer.from([0x81, payload.length]), payload]);
    expect(readFrame(frame.subarray(0, 5))).toBeUndefined();
    const read = readFrame(Buffer.concat([frame, Buffer.from([0x81])]))!;
    expect(read.opcode).toBe(1);
    expect(read.size).toBe(frame.length);
    expect(read.payload.toString()).toBe('{"t":"welcome"}');
  });
});

describe('percentile and peakPerSecond', () => {
  it('takes the nearest rank', () => {
    const values = Array.from({ length: 100 }, (_, i) => 100 - i);
    expect(percentile(values, 50)).toBe(50);
    expect(percentile(values, 99)).toBe(99);
    expect(Number.isNaN(percentile([], 99))).toBe(true);
  });

  it('finds the busiest second per key', () => {
    const peak = peakPerSecond(
      [
        { key: 'a', at: 1000 },
        { key: 'a', at: 1500 },
        { key: 'a', at: 2100 },
        { key: 'b', at: 2100 },
      ],
      1000,
    );
    expect(peak.get('a')).toBe(2);
    expect(peak.get('b')).toBe(1);
  });
});
