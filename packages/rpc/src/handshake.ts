/**
 * Mutual authentication of an RPC connection with the cluster secret.
 *
 * Both sides contribute a fresh nonce, and each proves it knows the secret with an HMAC over a
 * transcript of this connection: the direction (dialer or listener), both node ids, both nonces
 * and, under TLS, keying material exported from the TLS session. So a proof is good for one
 * connection and one direction only: replayed on a new connection it meets a new nonce; sent
 * back to its author (reflection) it is for the other direction; relayed onto another TLS
 * session it meets other keying material. Pure: no sockets here.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export const NONCE_BYTES = 32;
export const PROOF_BYTES = 32;

/** Who proves: the side that dialed the connection, or the side that accepted it. */
export type HandshakeRole = 'dialer' | 'listener';

/** What both sides of one connection know once the nonces are exchanged. */
export interface HandshakeTranscript {
  readonly dialerId: string;
  readonly listenerId: string;
  readonly dialerNonce: Uint8Array;
  readonly listenerNonce: Uint8Array;
  /** TLS exported keying material of the connection; empty over plain TCP. */
  readonly channelBinding: Uint8Array;
  /**
   * Whether the listener offered frame checksums, as this side knows it, when both sides bind
   * that offer into their proofs (`hello`/`auth` `crc32Bound`); undefined with a peer from
   * before that, whose proofs it leaves as they were. Bound, a byte flipped in the unchecked
   * `hello` cannot turn checksums off unnoticed: the two sides' proofs disagree.
   */
  readonly checksums?: boolean;
}

/** Versioned so that a future handshake can never accept a proof made for this one. */
const LABEL = 'chat-rpc-auth-v2';

/**
 * The proof `role` sends. Node ids cannot contain NUL (messages.ts checks them) and the nonces have a
 * fixed length, so the concatenation is unambiguous.
 */
export function handshakeProof(
  secret: string | Uint8Array,
  role: HandshakeRole,
  t: HandshakeTranscript,
): Buffer {
  return createHmac('sha256', secret)
    .update(`${LABEL}\0${role}\0${t.dialerId}\0${t.listenerId}\0`)
    .update(t.listenerNonce)
    .update(t.dialerNonce)
    .update(t.channelBinding)
    .update(t.checksums === undefined ? '' : `\0crc32=${t.checksums ? 1 : 0}`)
    .digest();
}

/** Constant-time check of the proof the other side sent as `role`. */
export function verifyHandshakeProof(
  secret: string | Uint8Array,
  role: HandshakeRole,
  t: HandshakeTranscript,
  proof: Uint8Array,
): boolean {
  const expected = handshakeProof(secret, role, t);
  return proof.length === expected.length && timingSafeEqual(expected, proof);
}
