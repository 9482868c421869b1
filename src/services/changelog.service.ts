// Appends to the tenant's change log; always called inside the transaction of the mutation it records. The entry's
// position in the tenant's commit order is assigned at COMMIT by the database (migration 0010).
import { sql, type Transaction } from 'kysely';
import type { ChangeType, Database, Db, Node } from '../db/database';
import { subtreeCte } from './tree-walk';

export async function appendChange(
  trx: Transaction<Database>,
  type: ChangeType,
  node: Pick<Node, 'id' | 'tenant_id' | 'space_id' | 'parent_id' | 'name' | 'kind'>,
  options: { versionId?: string | null; actorId?: string | null; fromSpaceId?: string | null } = {},
): Promise<void> {
  await trx
    .insertInto('change_log')
    .values({
      tenant_id: node.tenant_id,
      type,
      node_id: node.id,
      parent_id: node.parent_id,
      space_id: node.space_id,
      version_id: options.versionId ?? null,
      name: node.name,
      actor_id: options.actorId ?? null,
      kind: node.kind,
      from_space_id: options.fromSpaceId ?? null,
    })
    .execute();
}

/**
 * Entries for every live node below a folder, parents first: a folder moved to another space (readers of the
 * target space learn the subtree they can now see, readers of the source space see each node go), or restored
 * from the trash (clients removed its contents with it).
 */
export async function appendSubtree(
  trx: Transaction<Database>,
  type: 'moved' | 'restored',
  folder: Pick<Node, 'id'>,
  options: { actorId: string | null; fromSpaceId?: string | null },
): Promise<void> {
  await sql`${subtreeCte(folder.id, { liveOnly: true })}
    insert into change_log (tenant_id, type, node_id, parent_id, space_id, version_id, name, actor_id, kind, from_space_id)
    select n.tenant_id, ${type}, n.id, n.parent_id, n.space_id, n.current_version_id, n.name, ${options.actorId}, n.kind, ${options.fromSpaceId ?? null}
    from subtree s join nodes n on n.id = s.id
    where not s.is_cycle and s.depth > 0 and n.deleted_at is null
    order by s.depth, n.id`.execute(trx);
}

/** How long a resync listing stays readable (a client must page through it within this time). */
const listingLifetime = sql`interval '1 day'`;

/**
 * Deletes entries beyond each tenant's changelog_retention_days (only `tenantId`'s when given) and records the
 * highest position deleted, so a cursor from before it is answered 410 SYNC_CURSOR_INVALID instead of silently
 * missing entries. Expired resync listings go too. Returns the number of entries deleted.
 */
export async function pruneChangeLog(db: Db, tenantId?: string): Promise<number> {
  const result = await sql<{ deleted: number }>`
    with deleted as (
      delete from change_log cl using tenants t
      where t.id = cl.tenant_id and cl.at < now() - make_interval(days => (t.settings->>'changelog_retention_days')::int)
        ${tenantId ? sql`and t.id = ${tenantId}` : sql``}
      returning cl.tenant_id, cl.position
    ), marked as (
      update change_log_heads h set pruned_through = greatest(h.pruned_through, d.last)
      from (select tenant_id, max(position) as last from deleted group by tenant_id) d
      where h.tenant_id = d.tenant_id
    )
    select count(*)::int as deleted from deleted`.execute(db);
  await sql`delete from sync_snapshots where created_at < now() - ${listingLifetime}
    ${tenantId ? sql`and tenant_id = ${tenantId}` : sql``}`.execute(db);
  return result.rows[0]!.deleted;
}
