import { createDecipheriv, createECDH, hkdfSync } from 'node:crypto';
import type { ECDH } from 'node:crypto';

/** The user agent's side of a push subscription: its P-256 key pair and auth secret. */
export interface SubscriptionKeys {
  readonly ecdh: ECDH;
  readonly authSecret: Buffer;
}

/** A fresh subscription key pair and 16-byte auth secret, as a browser makes them. */
export function newSubscriptionKeys(randomAuth: Buffer): SubscriptionKeys {
  const ecdh = createECDH('prime256v1');
  ecdh.generateKeys();
  return { ecdh, authSecret: randomAuth };
}

export class DecryptionFailed extends Error {}

const TAG_BYTES = 16;
const HEADER_FIXED_BYTES = 21; // salt(16) + rs(4) + idlen(1)

/**
 * Decrypts a Web Push message body: the RFC 8188 aes128gcm content coding with the key
 * derivation of RFC 8291 §3.4 (ECDH between the sender's key in the header's keyid and the
 * subscription's key, the auth secret as the first HKDF salt).
 */
export function decryptAes128gcm(body: Buffer, keys: SubscriptionKeys): Buffer {
  if (body.length < HEADER_FIXED_BYTES)
    throw new DecryptionFailed('body shorter than the aes128gcm header');
  const salt = body.subarray(0, 16);
  const recordSize = body.readUInt32BE(16);
  const idLength = body[20]!;
  const senderPublic = body.subarray(HEADER_FIXED_BYTES, HEADER_FIXED_BYTES + idLength);
  if (idLength !== 65 || senderPublic[0] !== 0x04)
    throw new DecryptionFailed('keyid is not an uncompressed P-256 key');
  if (recordSize < TAG_BYTES + 2) throw new DecryptionFailed('record size too small');

  let sharedSecret: Buffer;
  try {
    sharedSecret = keys.ecdh.computeSecret(senderPublic);
  } catch {
    throw new DecryptionFailed('keyid is not a point on P-256');
  }
  const receiverPublic = keys.ecdh.getPublicKey();
  const keyInfo = Buffer.concat([Buffer.from('WebPush: info\0'), receiverPublic, senderPublic]);
  const ikm = Buffer.from(hkdfSync('sha256', sharedSecret, keys.authSecret, keyInfo, 32));
  const cek = Buffer.from(
    hkdfSync('sha256', ikm, salt, Buffer.from('Content-Encoding: aes128gcm\0'), 16),
  );
  const baseNonce = Buffer.from(
    hkdfSync('sha256', ikm, salt, Buffer.from('Content-Encoding: nonce\0'), 12),
  );

  const ciphertext = body.subarray(HEADER_FIXED_BYTES + idLength);
  if (ciphertext.length === 0) throw new DecryptionFailed('no records');
  const plaintexts: Buffer[] = [];
  for (let offset = 0, seq = 0; offset < ciphertext.length; offset += recordSize, seq += 1) {
    const record = ciphertext.subarray(offset, offset + recordSize);
    const last = offset + recordSize >= ciphertext.length;
    if (record.length <= TAG_BYTES) throw new DecryptionFailed('record without content');
    const decipher = createDecipheriv('aes-128-gcm', cek, recordNonce(baseNonce, seq));
    decipher.setAuthTag(record.subarray(record.length - TAG_BYTES));
    let padded: Buffer;
    try {
      padded = Buffer.concat([
        decipher.update(record.subarray(0, record.length - TAG_BYTES)),
        decipher.final(),
      ]);
    } catch {
      throw new DecryptionFailed(`record ${seq} fails authentication`);
    }
    plaintexts.push(unpad(padded, last, seq));
  }
  return Buffer.concat(plaintexts);
}

/** RFC 8188 §2.3: the record sequence number XORed into the low 48 bits of the nonce. */
function recordNonce(base: Buffer, seq: number): Buffer {
  const nonce = Buffer.from(base);
  nonce.writeUIntBE(xor48(nonce.readUIntBE(6, 6), seq), 6, 6);
  return nonce;
}

/** XOR of two 48-bit integers (JavaScript's ^ works on 32 bits only). */
function xor48(a: number, b: number): number {
  const high = Math.floor(a / 2 ** 24) ^ Math.floor(b / 2 ** 24);
  const low = (a % 2 ** 24) ^ (b % 2 ** 24);
  return high * 2 ** 24 + low;
}

/** RFC 8188 §2: content, then a delimiter (2 in the last record, 1 otherwise), then zeros. */
function unpad(padded: Buffer, last: boolean, seq: number): Buffer {
  let end = padded.length - 1;
  while (end >= 0 && padded[end] === 0) end -= 1;
  const delimiter = padded[end];
  if (delimiter !== (last ? 2 : 1))
    throw new DecryptionFailed(`record ${seq} has a bad padding delimiter`);
  return padded.subarray(0, end);
}
