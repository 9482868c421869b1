// Limits around identity and invitations: one pending invitation per share and address (a partial unique
// index, so parallel invitations cannot both insert), an `expired` invitation status that frees the slot of a
// stale one, and per-subject rate counters in fixed windows (invitations per inviter).
import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await sql`alter table invitations drop constraint if exists invitations_status_check`.execute(db);
  await sql`alter table invitations add constraint invitations_status_check check (status in ('pending', 'accepted', 'declined', 'revoked', 'expired'))`.execute(db);
  // Duplicates from before this migration: the newest pending invitation per share and address stays pending.
  await sql`
    update invitations i set status = 'revoked'
    where status = 'pending'
      and exists (select 1 from invitations newer
                  where newer.share_id = i.share_id and newer.email = i.email and newer.status = 'pending'
                    and (newer.created_at, newer.id) > (i.created_at, i.id))`.execute(db);
  await db.schema
    .createIndex('invitations_pending_unique')
    .on('invitations')
    .columns(['share_id', 'email'])
    .unique()
    .where(sql.ref('status'), '=', 'pending')
    .execute();

  await db.schema
    .createTable('rate_counters')
    // What is counted and for whom, e.g. `invitation:{user_id}`.
    .addColumn('key', 'text', (c) => c.notNull())
    .addColumn('window_start', 'timestamptz', (c) => c.notNull())
    .addColumn('count', 'integer', (c) => c.notNull().defaultTo(0).check(sql`count >= 0`))
    .addPrimaryKeyConstraint('rate_counters_pk', ['key', 'window_start'])
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('rate_counters').ifExists().execute();
  await db.schema.dropIndex('invitations_pending_unique').ifExists().execute();
  await sql`update invitations set status = 'revoked' where status = 'expired'`.execute(db);
  await sql`alter table invitations drop constraint if exists invitations_status_check`.execute(db);
  await sql`alter table invitations add constraint invitations_status_check check (status in ('pending', 'accepted', 'declined', 'revoked'))`.execute(db);
}
