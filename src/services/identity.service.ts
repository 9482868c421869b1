// Tenants, users and API keys: just-in-time provisioning, activation, tenant settings.
import { createHash, randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import type { Db, Tenant, TenantSettings, User } from '../db/database';
import { conflict, forbidden, notFound, unauthorized } from '../errors';
import { newId } from '../ids';
import type { TokenClaims } from '../auth/token-verifier';
import { tenantAdminRoles, type Principal } from './principal';

export const defaultTenantSettings: TenantSettings = {
  max_file_size_bytes: 10 * 1024 ** 3,
  trash_retention_days: 30,
  changelog_retention_days: 90,
  upload_session_ttl_hours: 24,
  default_user_quota_bytes: null,
};

export async function createPartner(db: Db, name: string) {
  return db.insertInto('partners').values({ id: newId('partner'), name }).returningAll().executeTakeFirstOrThrow();
}

export async function createTenant(db: Db, input: { name: string; partnerId?: string | null; settings?: Partial<TenantSettings> }): Promise<Tenant> {
  return db
    .insertInto('tenants')
    .values({
      id: newId('tenant'),
      name: input.name,
      partner_id: input.partnerId ?? null,
      settings: JSON.stringify({ ...defaultTenantSettings, ...input.settings }),
    })
    .returningAll()
    .executeTakeFirstOrThrow();
}

export async function getTenant(db: Db, tenantId: string): Promise<Tenant> {
  const tenant = await db.selectFrom('tenants').selectAll().where('id', '=', tenantId).executeTakeFirst();
  if (!tenant) throw notFound('Tenant');
  return tenant;
}

export async function updateTenantSettings(db: Db, tenantId: string, changes: Partial<TenantSettings>, name?: string): Promise<Tenant> {
  return db
    .updateTable('tenants')
    .set({
      // jsonb || merges, so a PATCH touches only the keys it names.
      settings: sql`settings || ${JSON.stringify(changes)}::jsonb`,
      ...(name ? { name } : {}),
      updated_at: sql`now()`,
    })
    .where('id', '=', tenantId)
    .returningAll()
    .executeTakeFirstOrThrow();
}

/**
 * Turns verified token claims into a user row, creating it on first sight and refreshing email/name/roles
 * when the identity provider changed them. A deactivated user is refused here, on every request.
 */
export async function provisionUser(db: Db, claims: TokenClaims): Promise<User> {
  // A known user with their tenant's state in one query (every request with a token starts here); a first login
  // looks at the tenant on its own.
  const known = await db
    .selectFrom('users')
    .innerJoin('tenants', 'tenants.id', 'users.tenant_id')
    .selectAll('users')
    .select('tenants.is_active as tenant_is_active')
    .where('users.tenant_id', '=', claims.tenantId)
    .where('users.external_id', '=', claims.subject)
    .executeTakeFirst();
  const tenantActive = known ? known.tenant_is_active : (await db.selectFrom('tenants').select('is_active').where('id', '=', claims.tenantId).executeTakeFirst())?.is_active;
  if (tenantActive === undefined) throw unauthorized('Token names an unknown tenant');
  if (!tenantActive) throw forbidden('Tenant is suspended', 'AUTHZ_TENANT_SUSPENDED');

  let user: User | undefined;
  if (known) {
    const { tenant_is_active: _, ...row } = known;
    user = row;
  }
  if (!user) {
    await db
      .insertInto('users')
      .values({ id: newId('user'), tenant_id: claims.tenantId, external_id: claims.subject, email: claims.email, name: claims.name, roles: claims.roles })
      .onConflict((oc) => oc.columns(['tenant_id', 'external_id']).doNothing())
      .execute();
    user = await db
      .selectFrom('users')
      .selectAll()
      .where('tenant_id', '=', claims.tenantId)
      .where('external_id', '=', claims.subject)
      .executeTakeFirstOrThrow();
  } else if (user.email !== claims.email || user.name !== claims.name || user.roles.join(',') !== claims.roles.join(',')) {
    user = await db
      .updateTable('users')
      .set({ email: claims.email, name: claims.name, roles: claims.roles, updated_at: sql`now()` })
      .where('id', '=', user.id)
      .returningAll()
      .executeTakeFirstOrThrow();
  }
  if (!user.is_active) throw forbidden('User is suspended', 'AUTHZ_USER_SUSPENDED');
  return user;
}

/** A page of the tenant's users in id order (keyset: ids after `after`), optionally only (in)active ones. */
export async function listUsers(db: Db, tenantId: string, options: { after?: string; isActive?: boolean; limit: number }): Promise<User[]> {
  let select = db.selectFrom('users').selectAll().where('tenant_id', '=', tenantId).orderBy('id').limit(options.limit);
  if (options.after) select = select.where('id', '>', options.after);
  if (options.isActive !== undefined) select = select.where('is_active', '=', options.isActive);
  return select.execute();
}

/**
 * Activates or suspends a user. A suspension never leaves the tenant without an active admin (409
 * LAST_TENANT_ADMIN), and admins cannot suspend themselves (409 CANNOT_DEACTIVATE_SELF). Suspensions in a
 * tenant take the tenant row's lock first, so parallel suspensions of two admins by each other run one after
 * the other: the second counts the admins after the first committed and is refused.
 */
export async function setUserActive(db: Db, principal: Principal, userId: string, isActive: boolean): Promise<User> {
  const tenantId = principal.tenantId;
  if (!isActive && principal.kind === 'user' && principal.userId === userId) {
    throw conflict('You cannot deactivate yourself; ask another tenant admin', 'CANNOT_DEACTIVATE_SELF');
  }
  return db.transaction().execute(async (trx) => {
    if (!isActive) {
      // NO KEY UPDATE: serialises suspensions without blocking inserts that reference the tenant.
      await trx.selectFrom('tenants').select('id').where('id', '=', tenantId).forNoKeyUpdate().executeTakeFirst();
      const isAdmin = sql<boolean>`roles && ${sql.val([...tenantAdminRoles])}::text[]`;
      const admins = await trx.selectFrom('users').select('id').where('tenant_id', '=', tenantId).where('is_active', '=', true).where(isAdmin).execute();
      if (admins.length === 1 && admins[0]!.id === userId) {
        throw conflict('This is the last active tenant admin; make another user an admin first', 'LAST_TENANT_ADMIN');
      }
    }
    const user = await trx
      .updateTable('users')
      .set({ is_active: isActive, updated_at: sql`now()` })
      .where('tenant_id', '=', tenantId)
      .where('id', '=', userId)
      .returningAll()
      .executeTakeFirst();
    if (!user) throw notFound('User');
    return user;
  });
}

const apiKeyPrefix = 'sdk_';

export function isApiKeyToken(token: string): boolean {
  return token.startsWith(apiKeyPrefix);
}

function hashApiKey(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

export const apiKeyScopes = ['admin', 'files:read', 'files:write'] as const;

/** Creates a key; the secret is returned once and only its hash is stored. */
export async function createApiKey(db: Db, input: { tenantId: string; name: string; scopes: string[]; createdBy: string | null }) {
  const secret = `${apiKeyPrefix}${randomBytes(32).toString('base64url')}`;
  const row = await db
    .insertInto('api_keys')
    .values({ id: newId('apiKey'), tenant_id: input.tenantId, name: input.name, scopes: input.scopes, created_by: input.createdBy, key_hash: hashApiKey(secret) })
    .returningAll()
    .executeTakeFirstOrThrow();
  return { row, secret };
}

export async function listApiKeys(db: Db, tenantId: string) {
  return db.selectFrom('api_keys').selectAll().where('tenant_id', '=', tenantId).orderBy('id').execute();
}

/** Revokes a live key of the tenant; an unknown or already revoked one is 404. */
export async function revokeApiKey(db: Db, tenantId: string, apiKeyId: string): Promise<void> {
  const result = await db
    .updateTable('api_keys')
    .set({ revoked_at: new Date() })
    .where('tenant_id', '=', tenantId)
    .where('id', '=', apiKeyId)
    .where('revoked_at', 'is', null)
    .executeTakeFirst();
  if (result.numUpdatedRows === 0n) throw notFound('API key');
}

export async function authenticateApiKey(db: Db, secret: string): Promise<Extract<Principal, { kind: 'api_key' }>> {
  const key = await db
    .selectFrom('api_keys')
    .innerJoin('tenants', 'tenants.id', 'api_keys.tenant_id')
    .select(['api_keys.id', 'api_keys.tenant_id', 'api_keys.scopes', 'api_keys.revoked_at', 'tenants.is_active as tenant_active'])
    .where('key_hash', '=', hashApiKey(secret))
    .executeTakeFirst();
  if (!key || key.revoked_at) throw unauthorized('API key is invalid or revoked');
  if (!key.tenant_active) throw forbidden('Tenant is suspended', 'AUTHZ_TENANT_SUSPENDED');
  // Best effort, not awaited on the request path's critical section.
  void db.updateTable('api_keys').set({ last_used_at: sql`now()` }).where('id', '=', key.id).execute().catch(() => undefined);
  return { kind: 'api_key', tenantId: key.tenant_id, apiKeyId: key.id, scopes: key.scopes };
}
