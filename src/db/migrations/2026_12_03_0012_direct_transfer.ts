// Issue #13: a session's transfer mode (`direct` sessions get presigned PUT URLs for their chunks'
// content-addressed keys; the API never handles those bytes) and the whole-file SHA-256 kept as chunks arrive:
// the hash state after the first `hashed_chunks` chunks, and a chain digest of those chunks' hashes that proves
// which bytes the state covers (see upload-hash.service.ts).
import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await sql`alter table upload_sessions add column transfer text not null default 'proxied' check (transfer in ('proxied', 'direct'))`.execute(db);
  await sql`alter table upload_sessions
    add column hashed_chunks integer not null default 0,
    add column hash_state bytea,
    add column hashed_chain text not null default ''`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`alter table upload_sessions drop column transfer, drop column hashed_chunks, drop column hash_state, drop column hashed_chain`.execute(db);
}
