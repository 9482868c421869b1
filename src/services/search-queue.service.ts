// The vectorization queue (spec §11, issue #11). A commit writes its version's search_documents row (`pending`)
// in the commit's own transaction — the outbox: a commit is never without its queue entry, whatever happens to
// the process afterwards — and notifies the dispatcher, which turns entries into `vectorize/...` workflows on the
// high or low task queue. Depth per queue is counted here, from the same rows.
import { sql, type Transaction } from 'kysely';
import type { Database, Db, SearchPriority, Version } from '../db/database';
import { notFound } from '../errors';

/** The channel a dispatcher LISTENs on; a commit's NOTIFY is delivered when (and only if) it commits. */
export const searchQueueChannel = 'scaidrive_search_queue';

/** A claimed entry stays claimed this long before another dispatcher may start it again (its start got lost). */
export const redispatchAfterSeconds = 600;

export async function queueForIndexing(trx: Transaction<Database>, version: Pick<Version, 'id' | 'tenant_id' | 'file_id'>, priority: SearchPriority): Promise<void> {
  await trx
    .insertInto('search_documents')
    .values({ version_id: version.id, tenant_id: version.tenant_id, file_id: version.file_id, priority })
    .onConflict((oc) => oc.column('version_id').doNothing())
    .execute();
  await sql`select pg_notify(${searchQueueChannel}, '')`.execute(trx);
}

export interface QueueEntry {
  version_id: string;
  file_id: string;
  tenant_id: string;
  priority: SearchPriority;
}

/**
 * Claims up to `limit` entries to start, high priority first, oldest first: never-started ones, or with `stale`,
 * ones claimed long ago and still pending (their start got lost, or they wait in a long Temporal backlog). One
 * statement with SKIP LOCKED: parallel dispatchers never claim the same entry.
 */
export async function claimForDispatch(db: Db, limit: number, options: { stale?: boolean; onlyTenants?: readonly string[] } = {}): Promise<QueueEntry[]> {
  const { onlyTenants } = options;
  if (onlyTenants?.length === 0) return [];
  const tenantFilter = onlyTenants ? sql`and tenant_id in (${sql.join(onlyTenants)})` : sql``;
  const claimable = options.stale ? sql`dispatched_at < now() - make_interval(secs => ${redispatchAfterSeconds})` : sql`dispatched_at is null`;
  const result = await sql<QueueEntry>`
    update search_documents set dispatched_at = now()
    where version_id in (
      select version_id from search_documents
      where status = 'pending' and ${claimable} ${tenantFilter}
      order by priority, queued_at
      limit ${limit}
      for update skip locked
    )
    returning version_id, file_id, tenant_id, priority`.execute(db);
  return result.rows;
}

/** Entries whose workflow could not be started (Temporal unavailable) go back to the queue at once. */
export async function releaseClaims(db: Db, versionIds: string[]): Promise<void> {
  if (versionIds.length === 0) return;
  await db.updateTable('search_documents').set({ dispatched_at: null }).where('version_id', 'in', versionIds).where('status', '=', 'pending').execute();
}

export interface QueueDepth {
  depth: number;
  oldest_pending_seconds: number | null;
}

/** Entries not yet indexed (pending, extracting, embedding) per queue; for one tenant or, without it, all. */
export async function queueDepths(db: Db, tenantId?: string): Promise<Record<SearchPriority, QueueDepth>> {
  const rows = await db
    .selectFrom('search_documents')
    .select(['priority', sql<string>`count(*)`.as('depth'), sql<number | null>`extract(epoch from now() - min(queued_at))`.as('oldest')])
    .where('status', 'in', ['pending', 'extracting', 'embedding'])
    .$if(tenantId !== undefined, (q) => q.where('tenant_id', '=', tenantId!))
    .groupBy('priority')
    .execute();
  const depths: Record<SearchPriority, QueueDepth> = { high: { depth: 0, oldest_pending_seconds: null }, low: { depth: 0, oldest_pending_seconds: null } };
  for (const row of rows) depths[row.priority] = { depth: Number(row.depth), oldest_pending_seconds: row.oldest === null ? null : Math.round(Number(row.oldest)) };
  return depths;
}

/**
 * Queues every live file's current version of a tenant (or of one space) again on the low queue: those without
 * an entry get one, the others go back to `pending` (a changed embedding model, a re-index after an outage).
 */
export async function requeueForReindex(db: Db, tenantId: string, spaceId?: string): Promise<number> {
  if (spaceId && !(await db.selectFrom('spaces').select('id').where('id', '=', spaceId).where('tenant_id', '=', tenantId).executeTakeFirst())) throw notFound('Space');
  return db.transaction().execute(async (trx) => {
    const spaceFilter = spaceId ? sql`and n.space_id = ${spaceId}` : sql``;
    const inserted = await sql`
      insert into search_documents (version_id, tenant_id, file_id, priority)
      select n.current_version_id, n.tenant_id, n.id, 'low' from nodes n
      where n.tenant_id = ${tenantId} and n.kind = 'file' and n.deleted_at is null and n.current_version_id is not null ${spaceFilter}
      on conflict (version_id) do nothing`.execute(trx);
    const reset = await sql`
      update search_documents d set status = 'pending', priority = 'low', reason = null, dispatched_at = null, queued_at = now(), updated_at = now()
      from nodes n
      where n.current_version_id = d.version_id and n.tenant_id = ${tenantId} and d.tenant_id = ${tenantId}
        and n.kind = 'file' and n.deleted_at is null ${spaceFilter}
        and d.status in ('indexed', 'failed', 'unsupported')`.execute(trx);
    await sql`select pg_notify(${searchQueueChannel}, '')`.execute(trx);
    return Number(inserted.numAffectedRows ?? 0) + Number(reset.numAffectedRows ?? 0);
  });
}

/** Up to `limit` files whose passages must leave Weaviate; `removalsDone` deletes the rows once they have. */
export async function pendingRemovals(db: Db, limit: number, onlyTenants?: readonly string[]): Promise<{ id: string; tenant_id: string; file_id: string }[]> {
  if (onlyTenants?.length === 0) return [];
  return db
    .selectFrom('search_removals')
    .select(['id', 'tenant_id', 'file_id'])
    .$if(onlyTenants !== undefined, (q) => q.where('tenant_id', 'in', onlyTenants!))
    .orderBy('id')
    .limit(limit)
    .execute();
}

export async function removalsDone(db: Db, ids: string[]): Promise<void> {
  if (ids.length > 0) await db.deleteFrom('search_removals').where('id', 'in', ids).execute();
}
