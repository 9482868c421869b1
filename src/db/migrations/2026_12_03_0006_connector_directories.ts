// Source directories in the import state (issue #9): a directory the source no longer has gets its mirrored
// folder trashed once it is empty, and empty source directories are mirrored too.
import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await sql`alter table connector_import_state add column kind text not null default 'file' check (kind in ('file', 'directory'))`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`alter table connector_import_state drop column kind`.execute(db);
}
