/**
 * The messages of the RPC stream, a discriminated union on `t`, and their validation.
 *
 * Handshake (handshake.ts): server -> `hello {nodeId, nonce, crc32}`; client -> `auth {nodeId,
 * nonce, proof, crc32}` with the dialer's proof; server -> `ready {nodeId, proof}` with the
 * listener's proof. Then requests and responses, multiplexed by request id, answered in any
 * order. `crc32: true` in `hello` offers frame checksums (frame.ts), in `auth` takes the offer:
 * every frame after `ready`, both ways, then carries one. A peer that does not know the field
 * neither offers nor takes it, and frames stay as they were. `crc32Bound: true` in `hello` and
 * `auth` says the side binds the offer into its proof (handshake.ts `checksums`), so that the
 * offer, which travels before any checksum, cannot be flipped off on the way unnoticed.
 */
import { NONCE_BYTES, PROOF_BYTES } from './handshake';

export interface HelloMsg {
  readonly t: 'hello';
  /** The listener's node id. */
  readonly nodeId: string;
  readonly nonce: Uint8Array;
  /** The listener offers checksummed frames after `ready`. */
  readonly crc32?: true;
  /** The listener binds its offer into the proofs. */
  readonly crc32Bound?: true;
}
export interface AuthMsg {
  readonly t: 'auth';
  /** The dialer's node id. */
  readonly nodeId: string;
  readonly nonce: Uint8Array;
  readonly proof: Uint8Array;
  /** The dialer takes the offer of checksummed frames. */
  readonly crc32?: true;
  /** The dialer saw `crc32Bound` in `hello` and bound the offer, as it saw it, into its proof. */
  readonly crc32Bound?: true;
}
export interface ReadyMsg {
  readonly t: 'ready';
  readonly nodeId: string;
  readonly proof: Uint8Array;
}
export interface RequestMsg {
  readonly t: 'req';
  readonly id: number;
  readonly m: string;
  readonly p: unknown;
}
export interface ResultMsg {
  readonly t: 'res';
  readonly id: number;
  readonly r: unknown;
}
export interface ErrorMsg {
  readonly t: 'err';
  readonly id: number;
  readonly code: string;
  readonly message: string;
}

export type ServerMsg = HelloMsg | ReadyMsg | ResultMsg | ErrorMsg;
export type ClientMsg = AuthMsg | RequestMsg;

/** Node ids as in protocol ids: 1 to 64 characters of [A-Za-z0-9._-]. */
const NODE_ID = /^[A-Za-z0-9._-]{1,64}$/;

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

function isBytes(v: unknown, length: number): v is Uint8Array {
  return v instanceof Uint8Array && v.length === length;
}

function isNodeId(v: unknown): v is string {
  return typeof v === 'string' && NODE_ID.test(v);
}

function isRequestId(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/** A decoded value from a client, or undefined when it is not a valid client message. */
export function parseClientMsg(v: unknown): ClientMsg | undefined {
  if (!isRecord(v)) return undefined;
  if (v.t === 'req') {
    if (!isRequestId(v.id) || typeof v.m !== 'string') return undefined;
    return { t: 'req', id: v.id, m: v.m, p: v.p };
  }
  if (v.t === 'auth') {
    if (!isNodeId(v.nodeId) || !isBytes(v.nonce, NONCE_BYTES) || !isBytes(v.proof, PROOF_BYTES))
      return undefined;
    return {
      t: 'auth',
      nodeId: v.nodeId,
      nonce: v.nonce,
      proof: v.proof,
      ...(v.crc32 === true ? { crc32: true as const } : {}),
      ...(v.crc32Bound === true ? { crc32Bound: true as const } : {}),
    };
  }
  return undefined;
}

/** A decoded value from a server, or undefined when it is not a valid server message. */
export function parseServerMsg(v: unknown): ServerMsg | undefined {
  if (!isRecord(v)) return undefined;
  switch (v.t) {
    case 'res':
      return isRequestId(v.id) ? { t: 'res', id: v.id, r: v.r } : undefined;
    case 'err':
      if (!isRequestId(v.id) || typeof v.code !== 'string') return undefined;
      return {
        t: 'err',
        id: v.id,
        code: v.code,
        message: typeof v.message === 'string' ? v.message : '',
      };
    case 'hello':
      return isNodeId(v.nodeId) && isBytes(v.nonce, NONCE_BYTES)
        ? {
            t: 'hello',
            nodeId: v.nodeId,
            nonce: v.nonce,
            ...(v.crc32 === true ? { crc32: true as const } : {}),
            ...(v.crc32Bound === true ? { crc32Bound: true as const } : {}),
          }
        : undefined;
    case 'ready':
      return isNodeId(v.nodeId) && isBytes(v.proof, PROOF_BYTES)
        ? { t: 'ready', nodeId: v.nodeId, proof: v.proof }
        : undefined;
    default:
      return undefined;
  }
}

export function isValidNodeId(id: string): boolean {
  return NODE_ID.test(id);
}
