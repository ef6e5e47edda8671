/**
 * A lean protocol-v1 WebSocket connection on a bare TCP socket (JSON codec): the upgrade by hand,
 * unfragmented frames, masked client frames. A `ws` client costs several times more memory and
 * CPU per connection, and with thousands of devices the client process would be what is
 * measured: the bench fleet and the cluster tests' lean users are built on it. The socket can be
 * bound to a local address (127.0.0.x) so that more than one source address shares the
 * ephemeral port range.
 *
 * It is a transport only: what to do on a frame, a refusal or a close is the caller's.
 */
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { FEATURES_PARAM } from '@chat/protocol';

export interface LeanSocketOptions {
  /** Optional protocol features to opt into (`no-echo`, `overlap-moves`, ...); none by default. */
  readonly features?: readonly string[];
}

export interface LeanHandlers {
  /** The upgrade was answered with something other than 101. */
  onRefused(status: number, retryAfterSec: number | undefined): void;
  onOpen(): void;
  onFrame(frame: Record<string, unknown>): void;
  /** The TCP connection ended (whatever the reason); `code` is the close frame's, if any. */
  onClose(code: number | undefined): void;
}

const MASK = randomBytes(4);

/** One masked client text frame (payload lengths up to 65,535 bytes). */
export function maskedTextFrame(text: string): Buffer {
  const payload = Buffer.from(text);
  const len = payload.length;
  if (len > 0xffff) throw new RangeError('frame too long for the lean client');
  const head = len < 126 ? 2 : 4;
  const frame = Buffer.allocUnsafe(head + 4 + len);
  frame[0] = 0x81;
  if (len < 126) frame[1] = 0x80 | len;
  else {
    frame[1] = 0x80 | 126;
    frame.writeUInt16BE(len, 2);
  }
  MASK.copy(frame, head);
  for (let i = 0; i < len; i++) frame[head + 4 + i] = payload[i]! ^ MASK[i & 3]!;
  return frame;
}

/** One complete server frame at the start of `buf` (servers do not mask), or undefined. */
export function readFrame(
  buf: Buffer,
): { opcode: number; payload: Buffer; size: number } | undefined {
  if (buf.length < 2) return undefined;
  let length = buf[1]! & 0x7f;
  let offset = 2;
  if (length === 126) {
    if (buf.length < 4) return undefined;
    length = buf.readUInt16BE(2);
    offset = 4;
  } else if (length === 127) {
    if (buf.length < 10) return undefined;
    length = Number(buf.readBigUInt64BE(2));
    offset = 10;
  }
  if (buf.length < offset + length) return undefined;
  return {
    opcode: buf[0]! & 0x0f,
    payload: buf.subarray(offset, offset + length),
    size: offset + length,
  };
}

export class LeanSocket {
  /** `&features=...` of the upgrade request, made once per socket (not per connect). */
  private readonly featuresQuery: string;
  private socket: Socket | undefined;
  private buffered: Buffer = Buffer.alloc(0);
  private upgraded = false;
  private closeCode: number | undefined;
  open = false;

  constructor(
    private readonly handlers: LeanHandlers,
    options: LeanSocketOptions = {},
  ) {
    const features = options.features ?? [];
    this.featuresQuery = features.length === 0 ? '' : `&${FEATURES_PARAM}=${features.join(',')}`;
  }

  /** `url` is ws://host:port/path; the token goes in the query. */
  connect(url: string, token: string, localAddress: string | undefined): void {
    const u = new URL(url);
    const socket = connect({
      host: u.hostname,
      port: Number(u.port),
      ...(localAddress === undefined ? {} : { localAddress }),
    });
    this.socket = socket;
    this.buffered = Buffer.alloc(0);
    this.upgraded = false;
    this.closeCode = undefined;
    socket.setNoDelay(true);
    socket.on('connect', () =>
      socket.write(
        `GET ${u.pathname}${u.search === '' ? '?' : `${u.search}&`}token=${token}${this.featuresQuery} HTTP/1.1\r\nHost: ${u.host}\r\n` +
          `Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n` +
          `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\n` +
          `Sec-WebSocket-Protocol: chat.v1.json\r\n\r\n`,
      ),
    );
    socket.on('data', (chunk: Buffer) => this.onData(socket, chunk));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      if (this.socket !== socket) return;
      this.socket = undefined;
      const wasOpen = this.open;
      this.open = false;
      if (wasOpen || this.upgraded) this.handlers.onClose(this.closeCode);
      else if (this.closeCode === undefined) this.handlers.onClose(undefined);
    });
  }

  send(frame: object): void {
    if (this.open) this.socket?.write(maskedTextFrame(JSON.stringify(frame)));
  }

  /** A clean close: the close frame with `code`, then the end of the TCP stream; onClose follows. */
  close(code: number): void {
    const socket = this.socket;
    if (socket === undefined || !this.open) return this.destroy();
    const frame = Buffer.from([0x88, 0x82, ...MASK, 0, 0]);
    frame[6] = (code >> 8) ^ MASK[0]!;
    frame[7] = (code & 0xff) ^ MASK[1]!;
    this.open = false;
    socket.end(frame);
  }

  /**
   * Drops the TCP connection with a reset (no close handshake, no TIME_WAIT holding the source
   * port); no onClose callback.
   */
  destroy(): void {
    const socket = this.socket;
    this.socket = undefined;
    this.open = false;
    if (socket === undefined) return;
    if (socket.readyState === 'open') socket.resetAndDestroy();
    else socket.destroy();
  }

  private onData(socket: Socket, chunk: Buffer): void {
    this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
    if (!this.upgraded) {
      const end = this.buffered.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = this.buffered.subarray(0, end).toString('latin1');
      this.buffered = this.buffered.subarray(end + 4);
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1]);
      if (status !== 101) {
        const retryAfter = Number(/\r\nretry-after:\s*(\d+)/i.exec(head)?.[1]);
        this.closeCode = -status;
        this.socket = undefined;
        socket.destroy();
        this.handlers.onRefused(status, retryAfter > 0 ? retryAfter : undefined);
        return;
      }
      this.upgraded = true;
      this.open = true;
      this.handlers.onOpen();
    }
    for (;;) {
      const frame = readFrame(this.buffered);
      if (frame === undefined) break;
      this.buffered = this.buffered.subarray(frame.size);
      if (frame.opcode === 0x8) {
        this.closeCode = frame.payload.length >= 2 ? frame.payload.readUInt16BE(0) : 1005;
        socket.end();
        return;
      }
      if (frame.opcode !== 0x1) continue;
      this.handlers.onFrame(JSON.parse(frame.payload.toString('utf8')) as Record<string, unknown>);
      if (this.socket !== socket) return;
    }
    // Keep no reference into a large chunk once everything in it was consumed.
    if (this.buffered.length === 0) this.buffered = Buffer.alloc(0);
  }
}
