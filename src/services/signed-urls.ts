// Short-lived signed download URLs: an HMAC over (tenant, file, version, expiry) that needs no bearer token.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { gone, notFound } from '../errors';

export interface DownloadGrant {
  tenantId: string;
  fileId: string;
  versionId: string;
  expiresAt: number;
}

export const downloadUrlTtlSeconds = 15 * 60;

function mac(key: Buffer, payload: string): string {
  return createHmac('sha256', key).update(`download:${payload}`).digest('base64url');
}

export function signDownload(key: Buffer, grant: DownloadGrant): string {
  const payload = Buffer.from(JSON.stringify([grant.tenantId, grant.fileId, grant.versionId, grant.expiresAt])).toString('base64url');
  return `${payload}.${mac(key, payload)}`;
}

export function verifyDownload(key: Buffer, token: string): DownloadGrant {
  const [payload, signature] = token.split('.');
  if (!payload || !signature) throw notFound('Download');
  const expected = Buffer.from(mac(key, payload));
  const given = Buffer.from(signature);
  if (expected.length !== given.length || !timingSafeEqual(expected, given)) throw notFound('Download');
  const [tenantId, fileId, versionId, expiresAt] = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as [string, string, string, number];
  if (expiresAt * 1000 < Date.now()) throw gone('Download URL has expired', 'URL_EXPIRED');
  return { tenantId, fileId, versionId, expiresAt };
}
