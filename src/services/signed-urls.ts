// Short-lived signed download URLs: an HMAC over (tenant, file, version, expiry) that needs no bearer token,
// and what such a URL opens.
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Db, Node, Version } from '../db/database';
import { forbidden, gone, notFound } from '../errors';
import type { Principal } from './principal';
import { loadVersion, readableFileVersion } from './versions.service';

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

/** A signed URL for the current version of a file the caller may read, valid for downloadUrlTtlSeconds. */
export async function issueDownloadUrl(db: Db, key: Buffer, principal: Principal, fileId: string, publicUrl: string): Promise<{ url: string; expiresAt: Date }> {
  const { file, version } = await readableFileVersion(db, principal, fileId);
  const expiresAt = Math.floor(Date.now() / 1000) + downloadUrlTtlSeconds;
  const token = signDownload(key, { tenantId: file.tenant_id, fileId: file.id, versionId: version.id, expiresAt });
  return { url: `${publicUrl}/api/v1/downloads/${token}`, expiresAt: new Date(expiresAt * 1000) };
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

/**
 * The file and version a signed URL grants, checked now: the grant's tenant must be active (403
 * AUTHZ_TENANT_SUSPENDED, as for its API calls), the file must still exist (404) and be out of the trash (410).
 */
export async function openSignedDownload(db: Db, key: Buffer, token: string): Promise<{ file: Node; version: Version }> {
  const grant = verifyDownload(key, token);
  const row = await db
    .selectFrom('nodes')
    .innerJoin('tenants', 'tenants.id', 'nodes.tenant_id')
    .selectAll('nodes')
    .select('tenants.is_active as tenant_active')
    .where('nodes.id', '=', grant.fileId)
    .where('nodes.tenant_id', '=', grant.tenantId)
    .executeTakeFirst();
  if (!row) throw notFound('File');
  const { tenant_active: tenantActive, ...file } = row;
  if (!tenantActive) throw forbidden('Tenant is suspended', 'AUTHZ_TENANT_SUSPENDED');
  if (file.deleted_at) throw gone('File is in the trash', 'IN_TRASH');
  return { file, version: await loadVersion(db, file.id, grant.versionId) };
}
