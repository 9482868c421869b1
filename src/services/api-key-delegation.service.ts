// API keys acting for a user (Box's "As-User"): a key with a files scope names a user in X-Act-As-User and
// gets exactly that user's file permissions — read-only for `files:read` — and every such request is audited.
import type { Db } from '../db/database';
import { AppError, badRequest, forbidden } from '../errors';
import type { Principal } from './principal';
import { recordAudit } from './audit.service';

type KeyPrincipal = Extract<Principal, { kind: 'api_key' }>;

export const hasFilesScope = (key: KeyPrincipal): boolean => key.scopes.includes('files:read') || key.scopes.includes('files:write');

/**
 * The principal a key request runs as: the named user (same tenant, active) when `actAsUserId` is given,
 * else the key itself. Tenant-admin powers are never delegated: the user principal carries no roles.
 */
export async function principalForKey(db: Db, key: KeyPrincipal, actAsUserId: string | undefined): Promise<Principal> {
  if (actAsUserId === undefined) return key;
  if (!hasFilesScope(key)) throw forbidden('This API key has no files scope, so it cannot act for a user');
  if (!/^usr_[0-9A-Za-z]{1,40}$/.test(actAsUserId)) throw badRequest('X-Act-As-User must be a user id (usr_…)', 'ACT_AS_USER_INVALID');
  const user = await db.selectFrom('users').select(['id', 'email', 'is_active']).where('id', '=', actAsUserId).where('tenant_id', '=', key.tenantId).executeTakeFirst();
  if (!user) throw new AppError(403, 'ACT_AS_USER_INVALID', 'X-Act-As-User names no user of this tenant');
  if (!user.is_active) throw forbidden('The user this key acts for is suspended', 'AUTHZ_USER_SUSPENDED');
  return { kind: 'user', tenantId: key.tenantId, userId: user.id, roles: [], email: user.email, viaApiKey: { id: key.apiKeyId, readOnly: !key.scopes.includes('files:write') } };
}

/** A key-made request in the audit trail: which key, as whom, what, and how it ended. */
export async function auditKeyRequest(
  db: Db,
  entry: { tenantId: string; apiKeyId: string; actAsUserId: string | null; method: string; route: string; status: number },
): Promise<void> {
  await recordAudit(db, {
    tenantId: entry.tenantId,
    actorId: entry.apiKeyId,
    action: 'api_key.request',
    targetType: 'api_key',
    targetId: entry.apiKeyId,
    details: { method: entry.method, route: entry.route, status: entry.status, act_as_user: entry.actAsUserId },
  });
}
