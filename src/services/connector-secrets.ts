// Connector secrets at rest: AES-256-GCM under a key derived from SCAIDRIVE_SECRET_KEY, with the key's id
// stored beside the ciphertext so a rotated key is recognised (and refused clearly) instead of mis-decrypting.
import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes } from 'node:crypto';

/** The sealing key: a purpose-bound derivation of the server secret (which also signs URLs and cursors). */
function sealingKey(secretKey: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', secretKey, Buffer.alloc(0), 'scaidrive connector secrets v1', 32));
}

/** A short public fingerprint of the key (never the key): tells which key sealed a row. */
export function secretKeyId(secretKey: Buffer): string {
  return createHash('sha256').update('scaidrive key id\0').update(sealingKey(secretKey)).digest('hex').slice(0, 16);
}

export interface SealedSecret {
  ciphertext: string;
  keyId: string;
}

/** Seals a JSON object of secrets; the connector id is bound as associated data so rows cannot be swapped. */
export function sealSecret(secretKey: Buffer, connectorId: string, secret: Record<string, string>): SealedSecret {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', sealingKey(secretKey), iv);
  cipher.setAAD(Buffer.from(connectorId));
  const body = Buffer.concat([cipher.update(JSON.stringify(secret), 'utf8'), cipher.final()]);
  return { ciphertext: Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64'), keyId: secretKeyId(secretKey) };
}

export class SecretKeyMismatchError extends Error {
  constructor(readonly keyId: string) {
    super(`The connector's secret was sealed under key ${keyId}, not the configured SCAIDRIVE_SECRET_KEY: enter the secret again (PATCH)`);
    this.name = 'SecretKeyMismatchError';
  }
}

export function openSecret(secretKey: Buffer, connectorId: string, sealed: SealedSecret): Record<string, string> {
  if (sealed.keyId !== secretKeyId(secretKey)) throw new SecretKeyMismatchError(sealed.keyId);
  const raw = Buffer.from(sealed.ciphertext, 'base64');
  const decipher = createDecipheriv('aes-256-gcm', sealingKey(secretKey), raw.subarray(0, 12));
  decipher.setAAD(Buffer.from(connectorId));
  decipher.setAuthTag(raw.subarray(12, 28));
  const text = Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8');
  return JSON.parse(text) as Record<string, string>;
}
