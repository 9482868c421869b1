// Delta-fed sources (SharePoint through Graph, issue #10): items are tracked by the source's own id (renames and
// moves keep it) and content version (cTag), and a connector remembers where its source's change feed
// continues (the delta link) once a job has imported everything up to it.
import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await sql`alter table connector_import_state add column source_id text, add column source_version text, add column pending_source_version text`.execute(db);
  await sql`create unique index connector_import_state_source_id_idx on connector_import_state (connector_id, source_id) where source_id is not null`.execute(db);
  await sql`alter table connectors add column sync_cursor text`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`alter table connectors drop column sync_cursor`.execute(db);
  await sql`drop index if exists connector_import_state_source_id_idx`.execute(db);
  await sql`alter table connector_import_state drop column source_id, drop column source_version, drop column pending_source_version`.execute(db);
}
