// Operators' retries of a finished workflow: one row per run that was retried. Temporal alone cannot decide
// "start a new run only if the latest run is still the one I looked at" — a retry that described the old run
// before a parallel retry's new run had already finished would start a second run. The primary key makes the
// claim one statement: of parallel retries of the same run exactly one inserts the row and starts the new run.
import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await sql`create table workflow_retries (
    workflow_id text not null,
    previous_run_id text not null,
    tenant_id text not null references tenants (id) on delete cascade,
    request_id text not null,
    run_id text,
    claimed_at timestamptz not null default now(),
    primary key (workflow_id, previous_run_id)
  )`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop table workflow_retries`.execute(db);
}
