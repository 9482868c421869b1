// JSON shapes of identity resources: users, tenants and their settings, API keys, groups, and the caller (/me).
import type { ApiKey, Group, Space, Tenant, User } from '../../db/database';
import type { Principal } from '../../services/principal';
import { z } from '../openapi';
import { presentSpace, spaceSchema } from './spaces';
import { iso } from './time';

export const userSchema = z
  .object({
    id: z.string(),
    tenant_id: z.string(),
    external_id: z.string(),
    email: z.string().nullable(),
    name: z.string().nullable(),
    roles: z.array(z.string()),
    is_active: z.boolean(),
    created_at: z.string(),
    updated_at: z.string(),
  })
  .openapi('User');

export const presentUser = (user: User) => ({
  id: user.id,
  tenant_id: user.tenant_id,
  external_id: user.external_id,
  email: user.email,
  name: user.name,
  roles: user.roles,
  is_active: user.is_active,
  created_at: iso(user.created_at),
  updated_at: iso(user.updated_at),
});

export const tenantSettingsSchema = z
  .object({
    max_file_size_bytes: z.number().int().min(1),
    trash_retention_days: z.number().int().min(1).max(3650),
    changelog_retention_days: z.number().int().min(1).max(3650),
    upload_session_ttl_hours: z.number().int().min(1).max(720),
    default_user_quota_bytes: z.number().int().min(0).nullable(),
  })
  .openapi('TenantSettings');

export const tenantSchema = z
  .object({ id: z.string(), name: z.string(), partner_id: z.string().nullable(), is_active: z.boolean(), settings: tenantSettingsSchema, created_at: z.string(), updated_at: z.string() })
  .openapi('Tenant');

export const presentTenant = (tenant: Tenant) => ({
  id: tenant.id,
  name: tenant.name,
  partner_id: tenant.partner_id,
  is_active: tenant.is_active,
  settings: tenant.settings,
  created_at: iso(tenant.created_at),
  updated_at: iso(tenant.updated_at),
});

export const apiKeySchema = z
  .object({ id: z.string(), name: z.string(), scopes: z.array(z.string()), created_at: z.string(), last_used_at: z.string().nullable(), revoked_at: z.string().nullable() })
  .openapi('ApiKey');

export const presentApiKey = (key: ApiKey) => ({
  id: key.id,
  name: key.name,
  scopes: key.scopes,
  created_at: iso(key.created_at),
  last_used_at: iso(key.last_used_at),
  revoked_at: iso(key.revoked_at),
});

export const groupSchema = z.object({ id: z.string(), name: z.string(), member_count: z.number().int(), created_at: z.string() }).openapi('Group');

export const presentGroup = (group: Group & { member_count?: number | null }) => ({
  id: group.id,
  name: group.name,
  member_count: Number(group.member_count ?? 0),
  created_at: iso(group.created_at),
});

export const meSchema = z.object({
  kind: z.enum(['user', 'api_key']),
  id: z.string(),
  tenant_id: z.string(),
  email: z.string().nullable(),
  roles: z.array(z.string()),
  scopes: z.array(z.string()).optional(),
  personal_space: spaceSchema.nullable(),
});

export const presentMe = (principal: Principal, personalSpace: Space | null) =>
  principal.kind === 'user'
    ? {
        kind: 'user' as const,
        id: principal.userId,
        tenant_id: principal.tenantId,
        email: principal.email,
        roles: principal.roles,
        personal_space: personalSpace ? presentSpace(personalSpace) : null,
      }
    : { kind: 'api_key' as const, id: principal.apiKeyId, tenant_id: principal.tenantId, email: null, roles: [], scopes: principal.scopes, personal_space: null };
