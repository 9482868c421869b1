// Direct-to-storage chunk uploads (issue #13 item 2): a session's transfer mode. `direct` sessions get presigned
// PUT URLs for their chunks' content-addressed keys; the API never handles those bytes.
import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await sql`alter table upload_sessions add column transfer text not null default 'proxied' check (transfer in ('proxied', 'direct'))`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`alter table upload_sessions drop column transfer`.execute(db);
}
