/**
 * Framing of the node-to-node RPC stream: a 4-byte big-endian body length, then the body,
 * msgpack-encoded with plain maps (no msgpackr records, so any msgpack reader can decode it).
 * On a checksummed connection (negotiated in the handshake) each frame is followed by the
 * CRC-32 of its header and body, 4 bytes big-endian: msgpack has no redundancy, so a byte
 * flipped in a string or a number on a link without TLS would otherwise decode into a valid
 * but wrong message.
 * Pure: no sockets here, so every malformed-input case is unit-testable.
 */
import { crc32 } from 'node:zlib';
import { Packr } from 'msgpackr';

/** Default largest frame body, in bytes. */
export const DEFAULT_MAX_FRAME_BYTES = 4 * 1024 * 1024;
export const FRAME_HEADER_BYTES = 4;
/** The CRC-32 trailer of a frame on a checksummed connection. */
const FRAME_CHECKSUM_BYTES = 4;

/** The stream is broken (bad length, oversized or undecodable frame): close the connection. */
export class FrameError extends Error {
  override readonly name = 'FrameError';
  constructor(
    readonly reason: 'too_large' | 'bad_length' | 'undecodable' | 'bad_checksum',
    message: string,
  ) {
    super(message);
  }
}

/** One codec per connection side; msgpackr's Packr keeps scratch buffers, so do not share across threads. */
export function createPackr(): Packr {
  return new Packr({ useRecords: false });
}

/**
 * Encodes one value as a frame. Throws FrameError('too_large') when the body exceeds
 * `maxFrameBytes`, so that the peer never sees a frame it would have to reject.
 */
export function encodeFrame(packr: Packr, value: unknown, maxFrameBytes: number): Buffer {
  const body = packr.pack(value);
  if (body.length > maxFrameBytes) {
    throw new FrameError('too_large', `frame of ${body.length} bytes over ${maxFrameBytes}`);
  }
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + body.length);
  frame.writeUInt32BE(body.length, 0);
  body.copy(frame, FRAME_HEADER_BYTES);
  return frame;
}

/** The trailer that follows `frame` (header and body) on a checksummed connection. */
export function frameChecksum(frame: Buffer): Buffer {
  const trailer = Buffer.allocUnsafe(FRAME_CHECKSUM_BYTES);
  trailer.writeUInt32BE(crc32(frame), 0);
  return trailer;
}

/**
 * Incremental decoder. `push` each chunk read from the socket; it returns the values of the
 * frames completed by that chunk. Partial frames are kept as a list of chunks and joined once
 * complete, so a large frame arriving in small chunks is copied once, not once per chunk.
 * After a FrameError the stream cannot be resynchronised: close the connection.
 *
 * @example
 * const decoder = new FrameDecoder(createPackr(), { maxFrameBytes: 4 << 20 });
 * socket.on('data', (chunk) => { for (const msg of decoder.push(chunk)) handle(msg); });
 */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** Bytes needed before parsing can make progress: a header, or a header plus a body. */
  private needed = FRAME_HEADER_BYTES;
  /** Bytes after each body: the checksum, once the connection has switched to it. */
  private trailer = 0;

  constructor(
    private readonly packr: Packr,
    private options: { maxFrameBytes: number },
  ) {}

  /** Changes the frame size limit, e.g. from the small pre-auth limit to the normal one. */
  setMaxFrameBytes(maxFrameBytes: number): void {
    this.options = { maxFrameBytes };
  }

  /**
   * From the next frame on, every frame must carry a CRC-32 trailer that matches, or push
   * throws FrameError('bad_checksum'). Switched once the handshake agreed on it.
   */
  expectChecksums(): void {
    this.trailer = FRAME_CHECKSUM_BYTES;
    if (this.buffered >= FRAME_HEADER_BYTES) this.needed += FRAME_CHECKSUM_BYTES;
  }

  /** Bytes received but not yet part of a complete frame. */
  get pendingBytes(): number {
    return this.buffered;
  }

  push(chunk: Buffer): unknown[] {
    if (chunk.length === 0) return [];
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    if (this.buffered < this.needed) return [];

    const buf = this.chunks.length === 1 ? chunk : Buffer.concat(this.chunks, this.buffered);
    const out: unknown[] = [];
    let offset = 0;
    while (buf.length - offset >= FRAME_HEADER_BYTES) {
      const length = buf.readUInt32BE(offset);
      this.checkLength(length);
      const bodyEnd = offset + FRAME_HEADER_BYTES + length;
      const end = bodyEnd + this.trailer;
      if (end > buf.length) break;
      if (this.trailer > 0 && crc32(buf.subarray(offset, bodyEnd)) !== buf.readUInt32BE(bodyEnd)) {
        throw new FrameError('bad_checksum', `frame of ${length} bytes fails its checksum`);
      }
      out.push(this.decodeBody(buf.subarray(offset + FRAME_HEADER_BYTES, bodyEnd)));
      offset = end;
    }
    const rest = buf.length - offset;
    this.chunks = rest === 0 ? [] : [buf.subarray(offset)];
    this.buffered = rest;
    this.needed =
      rest >= FRAME_HEADER_BYTES
        ? FRAME_HEADER_BYTES + buf.readUInt32BE(offset) + this.trailer
        : FRAME_HEADER_BYTES;
    return out;
  }

  private checkLength(length: number): void {
    if (length === 0) throw new FrameError('bad_length', 'empty frame');
    if (length > this.options.maxFrameBytes) {
      throw new FrameError(
        'too_large',
        `frame of ${length} bytes over ${this.options.maxFrameBytes}`,
      );
    }
  }

  private decodeBody(body: Buffer): unknown {
    try {
      return this.packr.unpack(body);
    } catch (err) {
      throw new FrameError('undecodable', `undecodable frame: ${(err as Error).message}`);
    }
  }
}
