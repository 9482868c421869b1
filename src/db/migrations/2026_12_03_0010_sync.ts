// Sync (issue #12): the change log in exact commit order, devices, resync snapshots.
//
// `change_log.seq` is handed out when a row is inserted, so a transaction that inserts early and commits late makes
// seq 7 visible after seq 8 — a reader that moved its cursor to 8 would never see 7. Each entry therefore also gets
// a per-tenant `position` at COMMIT time: a deferred constraint trigger takes the tenant's head row (its lock is
// held until the commit completes) and numbers the transaction's entries. Positions of one tenant thus become
// visible strictly in order, and a reader's "everything after position P" never misses a late commit. The head row
// is the last lock a mutation takes, so it cannot join a deadlock; it serialises only the commit itself per tenant.
import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await sql`alter table change_log add column position bigint, add column kind text, add column from_space_id text`.execute(db);
  await sql`create table change_log_heads (
      tenant_id text primary key references tenants(id) on delete cascade,
      position bigint not null default 0,
      pruned_through bigint not null default 0
    )`.execute(db);
  await sql`update change_log c set position = r.n
    from (select seq, row_number() over (partition by tenant_id order by seq) as n from change_log) r where r.seq = c.seq`.execute(db);
  await sql`update change_log c set kind = n.kind from nodes n where n.id = c.node_id`.execute(db);
  await sql`insert into change_log_heads (tenant_id, position) select tenant_id, max(position) from change_log group by tenant_id`.execute(db);
  await sql`create unique index change_log_tenant_position_idx on change_log (tenant_id, position)`.execute(db);

  // One NOTIFY per tenant and space per transaction (identical payloads are folded by PostgreSQL): the long poll and
  // the WebSocket hints of every API replica wake on it. "tenant space[ permissions]": a grant changed in the space,
  // so every socket of the tenant re-reads which spaces its user can see.
  await sql`create function scaidrive_change_log_position() returns trigger language plpgsql as $$
    declare next_position bigint;
    begin
      insert into change_log_heads as h (tenant_id, position) values (new.tenant_id, 1)
        on conflict (tenant_id) do update set position = h.position + 1
        returning h.position into next_position;
      update change_log set position = next_position where seq = new.seq;
      perform pg_notify('scaidrive_changes', new.tenant_id || ' ' || new.space_id || case when new.type = 'permissions_changed' then ' permissions' else '' end);
      if new.from_space_id is not null and new.from_space_id <> new.space_id then
        perform pg_notify('scaidrive_changes', new.tenant_id || ' ' || new.from_space_id);
      end if;
      return null;
    end $$`.execute(db);
  await sql`create constraint trigger change_log_position after insert on change_log
    deferrable initially deferred for each row execute function scaidrive_change_log_position()`.execute(db);

  await sql`create table sync_devices (
      id text primary key,
      tenant_id text not null references tenants(id) on delete cascade,
      user_id text not null references users(id) on delete cascade,
      name text not null,
      platform text not null,
      cursor text,
      cursor_updated_at timestamptz,
      created_at timestamptz not null default now()
    )`.execute(db);
  await sql`create index sync_devices_user_idx on sync_devices (tenant_id, user_id, created_at)`.execute(db);

  // The spaces a cursor's client has been given (content-addressed, shared by every cursor with the same set).
  await sql`create table sync_space_sets (
      tenant_id text not null references tenants(id) on delete cascade,
      id text not null,
      spaces text[] not null,
      created_at timestamptz not null default now(),
      primary key (tenant_id, id)
    )`.execute(db);

  // A resync's listing, copied in one statement at one position so its pages stay consistent while writes go on.
  await sql`create table sync_snapshots (
      id text primary key,
      tenant_id text not null references tenants(id) on delete cascade,
      user_id text not null,
      position bigint not null,
      spaces text[] not null,
      entries integer not null,
      created_at timestamptz not null default now()
    )`.execute(db);
  await sql`create index sync_snapshots_created_idx on sync_snapshots (created_at)`.execute(db);
  await sql`create table sync_snapshot_entries (
      snapshot_id text not null references sync_snapshots(id) on delete cascade,
      ord integer not null,
      node_id text not null,
      kind text not null,
      parent_id text,
      space_id text not null,
      name text not null,
      version_id text,
      size bigint,
      checksum_sha256 text,
      updated_at timestamptz not null,
      primary key (snapshot_id, ord)
    )`.execute(db);
  await sql`create index sync_snapshot_entries_node_idx on sync_snapshot_entries (snapshot_id, node_id)`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop table if exists sync_snapshot_entries`.execute(db);
  await sql`drop table if exists sync_snapshots`.execute(db);
  await sql`drop table if exists sync_space_sets`.execute(db);
  await sql`drop table if exists sync_devices`.execute(db);
  await sql`drop trigger if exists change_log_position on change_log`.execute(db);
  await sql`drop function if exists scaidrive_change_log_position()`.execute(db);
  await sql`drop index if exists change_log_tenant_position_idx`.execute(db);
  await sql`drop table if exists change_log_heads`.execute(db);
  await sql`alter table change_log drop column if exists position, drop column if exists kind, drop column if exists from_space_id`.execute(db);
}
