// Typed kysely database: table interfaces and the pool factory.
import { Kysely, PostgresDialect, type ColumnType, type Generated, type Selectable } from 'kysely';
import pg from 'pg';

// BIGINT columns come back as strings by default; our sizes fit in a JS number (< 2^53 bytes).
pg.types.setTypeParser(20, (value) => Number(value));

type Json<T> = ColumnType<T, string | T, string | T>;

export interface TenantSettings {
  max_file_size_bytes: number;
  trash_retention_days: number;
  changelog_retention_days: number;
  upload_session_ttl_hours: number;
  default_user_quota_bytes: number | null;
}

export interface PartnersTable {
  id: string;
  name: string;
  created_at: Generated<Date>;
}

export interface TenantsTable {
  id: string;
  partner_id: string | null;
  name: string;
  settings: Json<TenantSettings>;
  is_active: Generated<boolean>;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
}

export interface UsersTable {
  id: string;
  tenant_id: string;
  external_id: string;
  email: string | null;
  name: string | null;
  roles: ColumnType<string[], string[] | undefined, string[]>;
  is_active: Generated<boolean>;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
  last_seen_at: Date | null;
}

export interface GroupsTable {
  id: string;
  tenant_id: string;
  name: string;
  created_at: Generated<Date>;
}

export interface GroupMembersTable {
  group_id: string;
  user_id: string;
  tenant_id: string;
  created_at: Generated<Date>;
}

export interface ApiKeysTable {
  id: string;
  tenant_id: string;
  name: string;
  key_hash: string;
  scopes: ColumnType<string[], string[], string[]>;
  created_by: string | null;
  created_at: Generated<Date>;
  last_used_at: Date | null;
  revoked_at: Date | null;
}

export interface IdentityEventsTable {
  id: string;
  tenant_id: string;
  type: string;
  subject: string;
  received_at: Generated<Date>;
  applied_at: Date | null;
}

export interface Database {
  partners: PartnersTable;
  tenants: TenantsTable;
  users: UsersTable;
  groups: GroupsTable;
  group_members: GroupMembersTable;
  api_keys: ApiKeysTable;
  identity_events: IdentityEventsTable;
}

export type Tenant = Selectable<TenantsTable>;
export type User = Selectable<UsersTable>;
export type Group = Selectable<GroupsTable>;
export type ApiKey = Selectable<ApiKeysTable>;

export type Db = Kysely<Database>;

export function createDb(url: string, poolSize = 10): Db {
  const pool = new pg.Pool({ connectionString: url, max: poolSize, connectionTimeoutMillis: 5000 });
  // An idle client losing its connection (DB restart) must not crash the process; the pool replaces it.
  pool.on('error', () => undefined);
  return new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
}
