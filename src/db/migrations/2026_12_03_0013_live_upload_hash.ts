// Issue #13: the whole-file SHA-256 kept as chunks arrive is now a live node:crypto hash in ONE API process per
// session (four times faster than hash-wasm, whose saved states other processes could continue). The session
// records which process follows it (`hash_owner`, with the time it last made progress, a lease), how far it got,
// and once every chunk is hashed the file's SHA-256 (`hashed_sha256`); the chain digest of the hashed chunks'
// SHA-256s (`hashed_chain`) still proves which manifest that covers. There are no saved partial states any more.
import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await sql`alter table upload_sessions
    drop column hash_state,
    add column hash_owner text,
    add column hash_owner_seen_at timestamptz,
    add column hashed_sha256 text`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`alter table upload_sessions drop column hash_owner, drop column hash_owner_seen_at, drop column hashed_sha256, add column hash_state bytea`.execute(db);
  await sql`update upload_sessions set hashed_chunks = 0, hashed_chain = ''`.execute(db);
}
