// Upload reservations (spec §6): declared bytes of open sessions are held against the quotas until
// finalize, abort or expiry; each session remembers what it reserved so it is released exactly once.
import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('quotas').addColumn('reserved_bytes', 'bigint', (c) => c.notNull().defaultTo(0)).execute();
  await db.schema
    .alterTable('upload_sessions')
    .addColumn('reserved_bytes', 'bigint', (c) => c.notNull().defaultTo(0))
    // The subjects the reservation was made on (group membership can change before the session ends).
    .addColumn('reserved_subjects', 'jsonb', (c) => c.notNull().defaultTo(sql`'[]'::jsonb`))
    .execute();
  // The per-user cap on sessions in progress counts these rows.
  await sql`create index upload_sessions_user_active_idx on upload_sessions (user_id) where status in ('open', 'finalizing')`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop index if exists upload_sessions_user_active_idx`.execute(db);
  await db.schema.alterTable('upload_sessions').dropColumn('reserved_subjects').dropColumn('reserved_bytes').execute();
  await db.schema.alterTable('quotas').dropColumn('reserved_bytes').execute();
}
