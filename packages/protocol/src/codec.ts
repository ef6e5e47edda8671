/**
 * The two codecs of protocol v1, picked by the WebSocket subprotocol: `chat.v1.json` (text
 * frames, one JSON object each) and `chat.v1.msgpack` (binary frames, one msgpack map each).
 */
import { Packr } from 'msgpackr';
import type { Options } from 'msgpackr';
import { ChatError } from './errors';
import type { ClientFrame } from './frames';
import type { Limits } from './limits';
import { validateClientFrame } from './validate';

export const JSON_SUBPROTOCOL = 'chat.v1.json';
export const MSGPACK_SUBPROTOCOL = 'chat.v1.msgpack';
export type Subprotocol = typeof JSON_SUBPROTOCOL | typeof MSGPACK_SUBPROTOCOL;

export type WireData = string | Uint8Array;

export interface Codec {
  readonly subprotocol: Subprotocol;
  /** True when frames travel as binary WebSocket messages. */
  readonly binary: boolean;
  encode(frame: object): WireData;
  /** Decodes one frame's bytes; throws ChatError BAD_REQUEST on anything unparsable. */
  decode(data: WireData | ArrayBuffer): unknown;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function asBytes(data: Uint8Array | ArrayBuffer): Uint8Array {
  return data instanceof Uint8Array ? data : new Uint8Array(data);
}

export const jsonCodec: Codec = Object.freeze({
  subprotocol: JSON_SUBPROTOCOL,
  binary: false,
  encode: (frame: object): string => JSON.stringify(frame),
  decode(data: WireData | ArrayBuffer): unknown {
    try {
      const text = typeof data === 'string' ? data : utf8.decode(asBytes(data));
      return JSON.parse(text);
    } catch {
      throw new ChatError('BAD_REQUEST', 'frame is not valid JSON');
    }
  },
});

// Plain maps, no msgpackr records or extensions: clients in other languages must read these.
// By default msgpackr writes `undefined` as extension type 0; instead drop undefined properties
// and write undefined array items as nil, as JSON.stringify does. (`skipValues` is documented in
// msgpackr's README but missing from its typings, hence the assertion.)
const packr = new Packr({
  useRecords: false,
  mapsAsObjects: true,
  int64AsType: 'number',
  encodeUndefinedAsNil: true,
  skipValues: [undefined],
} as Options);

export const msgpackCodec: Codec = Object.freeze({
  subprotocol: MSGPACK_SUBPROTOCOL,
  binary: true,
  encode: (frame: object): Uint8Array => packr.pack(frame),
  decode(data: WireData | ArrayBuffer): unknown {
    if (typeof data === 'string')
      throw new ChatError('BAD_REQUEST', 'msgpack frames must be binary');
    try {
      return packr.unpack(asBytes(data));
    } catch {
      throw new ChatError('BAD_REQUEST', 'frame is not valid msgpack');
    }
  },
});

export const codecs: readonly Codec[] = [jsonCodec, msgpackCodec];

/** The codec for a subprotocol name, or undefined when it is not one of ours. */
export function codecFor(subprotocol: string): Codec | undefined {
  return codecs.find((c) => c.subprotocol === subprotocol);
}

/**
 * Size check, decode and validation of one client frame, in that order.
 *
 * @example
 * const frame = decodeClientFrame(jsonCodec, '{"t":"ack","seq":3}', defaultLimits);
 */
export function decodeClientFrame(
  codec: Codec,
  data: WireData | ArrayBuffer,
  limits: Limits,
): ClientFrame {
  const size = typeof data === 'string' ? Buffer.byteLength(data) : data.byteLength;
  if (size > limits.maxFrameBytes) {
    throw new ChatError(
      'TOO_LARGE',
      `frame is ${size} bytes, the limit is ${limits.maxFrameBytes}`,
    );
  }
  return validateClientFrame(codec.decode(data), limits);
}
