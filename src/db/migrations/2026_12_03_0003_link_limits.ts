// Rate counters for the public link endpoints (password checks, email codes), one row per link, scope, subject
// and fixed window, so a limit is one conditional upsert that every API replica shares.
import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('link_rate_counters')
    .addColumn('link_id', 'text', (c) => c.notNull().references('links.id').onDelete('cascade'))
    // What is counted: 'password_check', 'email_request', 'email_mail', 'email_confirm'.
    .addColumn('scope', 'text', (c) => c.notNull())
    // Who is counted: a client address, or '*' for a budget of the whole link.
    .addColumn('subject', 'text', (c) => c.notNull())
    .addColumn('window_start', 'timestamptz', (c) => c.notNull())
    .addColumn('count', 'integer', (c) => c.notNull().defaultTo(0).check(sql`count >= 0`))
    .addPrimaryKeyConstraint('link_rate_counters_pk', ['link_id', 'scope', 'subject', 'window_start'])
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('link_rate_counters').ifExists().execute();
}
