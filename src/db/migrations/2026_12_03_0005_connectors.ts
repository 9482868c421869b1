// Connectors (spec §10): connector rows with their encrypted secret, sync jobs (at most one queued or running
// per connector, by a partial unique index, so parallel "sync" requests cannot both start one), job error
// rows and log lines, and the per-connector import state (source path → size, mtime, version) syncs diff against.
import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    create table connectors (
      id text primary key,
      tenant_id text not null references tenants(id) on delete cascade,
      kind text not null check (kind in ('smb', 'sharepoint')),
      name text not null,
      settings jsonb not null,
      secret_ciphertext text not null,
      secret_key_id text not null,
      -- No foreign key: purging the folder must not be blocked by a connector (its next job reports the folder gone).
      target_folder_id text not null,
      exclude_patterns jsonb not null default '[]',
      conflict_resolution text not null check (conflict_resolution in ('overwrite', 'keep_both', 'skip', 'manual')),
      schedule jsonb,
      directory_timeout_seconds integer not null check (directory_timeout_seconds between 1 and 86400),
      enabled boolean not null default true,
      created_by text not null references users(id),
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now()
    )`.execute(db);
  await sql`create index connectors_tenant_idx on connectors (tenant_id, kind, id)`.execute(db);

  await sql`
    create table connector_jobs (
      id text primary key,
      tenant_id text not null,
      connector_id text not null references connectors(id) on delete cascade,
      status text not null default 'queued' check (status in ('queued', 'running', 'succeeded', 'partially_failed', 'failed', 'canceled')),
      trigger text not null check (trigger in ('manual', 'schedule', 'retry')),
      retry_of text,
      workflow_id text not null,
      run_id text,
      created_by text,
      created_at timestamptz not null default now(),
      started_at timestamptz,
      finished_at timestamptz,
      files_scanned bigint not null default 0,
      files_added bigint not null default 0,
      files_updated bigint not null default 0,
      files_deleted bigint not null default 0,
      files_skipped bigint not null default 0,
      bytes bigint not null default 0,
      error_count integer not null default 0,
      error_code text,
      error_status integer,
      error_detail text
    )`.execute(db);
  // The one rule "a running sync → 409" lives here: an insert of a second active job conflicts.
  await sql`create unique index connector_jobs_one_active on connector_jobs (connector_id) where status in ('queued', 'running')`.execute(db);
  await sql`create index connector_jobs_history_idx on connector_jobs (connector_id, created_at desc, id desc)`.execute(db);

  await sql`
    create table connector_job_errors (
      id bigserial primary key,
      job_id text not null references connector_jobs(id) on delete cascade,
      path text not null,
      code text not null,
      reason text not null,
      at timestamptz not null default now()
    )`.execute(db);
  await sql`create index connector_job_errors_job_idx on connector_job_errors (job_id, id desc)`.execute(db);

  await sql`
    create table connector_job_log (
      id bigserial primary key,
      job_id text not null references connector_jobs(id) on delete cascade,
      line text not null,
      at timestamptz not null default now()
    )`.execute(db);
  await sql`create index connector_job_log_job_idx on connector_job_log (job_id, id desc)`.execute(db);

  await sql`
    create table connector_import_state (
      connector_id text not null references connectors(id) on delete cascade,
      path text not null,
      tenant_id text not null,
      -- What was imported last (null while a first import is in flight).
      size bigint,
      mtime timestamptz,
      file_id text,
      version_id text,
      last_seen_job_id text,
      -- An import in flight: the upload session it streams into, so a retried activity finds a commit that
      -- already happened (no second version) or discards the half-written session.
      pending_upload_id text,
      pending_size bigint,
      pending_mtime timestamptz,
      primary key (connector_id, path)
    )`.execute(db);
  await sql`create index connector_import_state_seen_idx on connector_import_state (connector_id, last_seen_job_id)`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop table if exists connector_import_state`.execute(db);
  await sql`drop table if exists connector_job_log`.execute(db);
  await sql`drop table if exists connector_job_errors`.execute(db);
  await sql`drop table if exists connector_jobs`.execute(db);
  await sql`drop table if exists connectors`.execute(db);
}
