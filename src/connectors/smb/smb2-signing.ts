// SMB 2.0.2 / 2.1 message signing (MS-SMB2 3.1.4.1): HMAC-SHA256 over the whole message with the signature zeroed,
// truncated to 16 bytes, keyed with the session key. (SMB 3.x uses AES-CMAC with derived keys; this client speaks 2.x.)
import { createHmac, timingSafeEqual } from 'node:crypto';

export const headerFlagSigned = 0x00000008;
const flagsOffset = 16;
const signatureOffset = 48;
const signatureLength = 16;

function computeSignature(key: Buffer, message: Buffer): Buffer {
  const saved = Buffer.from(message.subarray(signatureOffset, signatureOffset + signatureLength));
  message.fill(0, signatureOffset, signatureOffset + signatureLength);
  const digest = createHmac('sha256', key).update(message).digest().subarray(0, signatureLength);
  saved.copy(message, signatureOffset);
  return digest;
}

/** Sets SMB2_FLAGS_SIGNED and writes the signature into the message (in place). */
export function signMessage(key: Buffer, message: Buffer): void {
  message.writeUInt32LE((message.readUInt32LE(flagsOffset) | headerFlagSigned) >>> 0, flagsOffset);
  computeSignature(key, message).copy(message, signatureOffset);
}

/** True when the message carries SMB2_FLAGS_SIGNED and its signature is right for the key. */
export function verifyMessage(key: Buffer, message: Buffer): boolean {
  if (message.length < 64 || (message.readUInt32LE(flagsOffset) & headerFlagSigned) === 0) return false;
  const expected = computeSignature(key, message);
  return timingSafeEqual(expected, message.subarray(signatureOffset, signatureOffset + signatureLength));
}
