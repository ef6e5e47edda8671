/**
 * The messages of the RPC stream, a discriminated union on `t`, and their validation.
 *
 * Handshake: server -> `hello {nonce}`; client -> `auth {nodeId, proof}` where
 * proof = HMAC-SHA256(secret, nonce); server -> `ready {nodeId}`. Then requests and responses,
 * multiplexed by request id, answered in any order.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export interface HelloMsg {
  readonly t: 'hello';
  readonly nonce: Uint8Array;
}
export interface AuthMsg {
  readonly t: 'auth';
  readonly nodeId: string;
  readonly proof: Uint8Array;
}
export interface ReadyMsg {
  readonly t: 'ready';
  readonly nodeId: string;
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

export const NONCE_BYTES = 32;
const PROOF_BYTES = 32;
/** Node ids as in protocol ids: 1 to 64 characters of [A-Za-z0-9._-]. */
const NODE_ID = /^[A-Za-z0-9._-]{1,64}$/;

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
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
    if (typeof v.nodeId !== 'string' || !NODE_ID.test(v.nodeId)) return undefined;
    if (!(v.proof instanceof Uint8Array) || v.proof.length !== PROOF_BYTES) return undefined;
    return { t: 'auth', nodeId: v.nodeId, proof: v.proof };
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
      return v.nonce instanceof Uint8Array && v.nonce.length === NONCE_BYTES
        ? { t: 'hello', nonce: v.nonce }
        : undefined;
    case 'ready':
      return typeof v.nodeId === 'string' ? { t: 'ready', nodeId: v.nodeId } : undefined;
    default:
      return undefined;
  }
}

export function isValidNodeId(id: string): boolean {
  return NODE_ID.test(id);
}

export function authProof(secret: string | Uint8Array, nonce: Uint8Array): Buffer {
  return createHmac('sha256', secret).update(nonce).digest();
}

/** Constant-time check of a client's proof against the nonce this server sent. */
export function verifyProof(
  secret: string | Uint8Array,
  nonce: Uint8Array,
  proof: Uint8Array,
): boolean {
  const expected = authProof(secret, nonce);
  return proof.length === expected.length && timingSafeEqual(expected, proof);
}
