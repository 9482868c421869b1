// Search (issue #11): per version, its index status and extracted text (the keyword index and snippets come
// from here; the vectors live in Weaviate).
import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    create table search_documents (
      version_id text primary key references versions(id) on delete cascade,
      tenant_id text not null,
      file_id text not null references nodes(id) on delete cascade,
      status text not null default 'pending' check (status in ('pending', 'extracting', 'embedding', 'indexed', 'unsupported', 'failed')),
      reason text,
      format text,
      text text,
      truncated boolean not null default false,
      passages integer not null default 0,
      vector_space text,
      tsv tsvector generated always as (to_tsvector('simple', coalesce(text, ''))) stored,
      updated_at timestamptz not null default now()
    )`.execute(db);
  await sql`create index search_documents_tsv_idx on search_documents using gin (tsv)`.execute(db);
  await sql`create index search_documents_file_idx on search_documents (file_id)`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop table if exists search_documents`.execute(db);
}
