// Sync conflicts (issue #12 item 4): a write made against a base that is no longer current, recorded for the
// device that made it, and each space's policy for them (`manual`, or `keep_both`: the client's content is saved
// beside the server's as "name (conflict from DEVICE YYYY-MM-DD).ext").
import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await sql`alter table spaces add column conflict_policy text not null default 'manual' check (conflict_policy in ('manual', 'keep_both'))`.execute(db);
  await sql`create table sync_conflicts (
      id text primary key,
      tenant_id text not null references tenants(id) on delete cascade,
      user_id text not null references users(id) on delete cascade,
      device_id text not null references sync_devices(id) on delete cascade,
      node_id text not null,
      space_id text not null,
      operation text not null check (operation in ('upload', 'rename', 'move', 'delete')),
      base_version_id text,
      server_version_id text,
      -- upload: the session kept open with the client's content; rename/move: what the client asked for.
      upload_id text references upload_sessions(id) on delete set null,
      request jsonb not null default '{}',
      status text not null default 'open' check (status in ('open', 'resolved')),
      resolution text check (resolution in ('keep_server', 'keep_client', 'keep_both')),
      auto_resolved boolean not null default false,
      resolved_at timestamptz,
      created_at timestamptz not null default now()
    )`.execute(db);
  await sql`create index sync_conflicts_device_idx on sync_conflicts (tenant_id, user_id, device_id, created_at)`.execute(db);
  await sql`create index sync_conflicts_upload_idx on sync_conflicts (upload_id) where status = 'open'`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop table if exists sync_conflicts`.execute(db);
  await sql`alter table spaces drop column if exists conflict_policy`.execute(db);
}
