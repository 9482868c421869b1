// The vectorization queue (issue #11). A search_documents row in `pending` is the outbox entry of a commit: it is
// written in the commit's own transaction, and a dispatcher turns it into a `vectorize/{file}/{version}` workflow
// (on the high or low task queue by `priority`). Two triggers catch what every code path does to files, so none
// can forget: a deleted file row queues the removal of its passages from Weaviate (search_removals), and a file
// moving to another space queues its current version for re-indexing (its passages carry the space they filter on).
import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await sql`alter table search_documents
    add column priority text not null default 'high' check (priority in ('high', 'low')),
    add column dispatched_at timestamptz,
    add column queued_at timestamptz not null default now()`.execute(db);
  await sql`create index search_documents_queue_idx on search_documents (priority, queued_at) where status in ('pending', 'extracting', 'embedding')`.execute(db);
  await sql`create index search_documents_tenant_idx on search_documents (tenant_id)`.execute(db);
  await sql`create table search_removals (
      id bigserial primary key,
      tenant_id text not null,
      file_id text not null,
      created_at timestamptz not null default now()
    )`.execute(db);
  await sql`create function scaidrive_search_file_deleted() returns trigger language plpgsql as $$
    begin
      insert into search_removals (tenant_id, file_id) values (old.tenant_id, old.id);
      return null;
    end $$`.execute(db);
  await sql`create trigger nodes_search_removal after delete on nodes for each row when (old.kind = 'file') execute function scaidrive_search_file_deleted()`.execute(db);
  await sql`create function scaidrive_search_space_moved() returns trigger language plpgsql as $$
    begin
      update search_documents set status = 'pending', priority = 'low', dispatched_at = null, queued_at = now(), updated_at = now()
        where version_id = new.current_version_id and status <> 'unsupported';
      return null;
    end $$`.execute(db);
  await sql`create trigger nodes_search_space_moved after update of space_id on nodes for each row
    when (new.kind = 'file' and old.space_id is distinct from new.space_id) execute function scaidrive_search_space_moved()`.execute(db);
  // Keyword search over names (the extracted text has its own tsvector in search_documents). Separators in file
  // names split words: "q3_report-final.pdf" is found by "report" (the parser alone reads it as one file token).
  await sql`create function scaidrive_name_tsv(name text) returns tsvector language sql immutable parallel safe
    as $$ select to_tsvector('simple'::regconfig, translate(name, '._-/\\+', '      ')) $$`.execute(db);
  await sql`create index nodes_name_tsv_idx on nodes using gin (scaidrive_name_tsv(name)) where kind = 'file'`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop index if exists nodes_name_tsv_idx`.execute(db);
  await sql`drop function if exists scaidrive_name_tsv(text)`.execute(db);
  await sql`drop trigger if exists nodes_search_space_moved on nodes`.execute(db);
  await sql`drop function if exists scaidrive_search_space_moved()`.execute(db);
  await sql`drop trigger if exists nodes_search_removal on nodes`.execute(db);
  await sql`drop function if exists scaidrive_search_file_deleted()`.execute(db);
  await sql`drop table if exists search_removals`.execute(db);
  await sql`drop index if exists search_documents_tenant_idx`.execute(db);
  await sql`drop index if exists search_documents_queue_idx`.execute(db);
  await sql`alter table search_documents drop column priority, drop column dispatched_at, drop column queued_at`.execute(db);
}
