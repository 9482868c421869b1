// Bounded, cycle-safe walks over the node tree: the recursive CTEs every subtree or ancestor query uses.
import { sql, type RawBuilder } from 'kysely';

/**
 * The deepest walk we follow. Moves refuse to build a chain deeper than this, so in a sound tree the bound
 * never cuts a walk short; it (with the CYCLE clause) only guarantees termination should the data ever be
 * corrupt.
 */
export const maxTreeDepth = 1000;

/**
 * `with recursive subtree(id, depth)`: the node and everything below it (only live nodes below it with
 * `liveOnly`). The CYCLE clause stops at a node already on the path and the depth bound stops runaway
 * chains, so the walk always ends. Select from it with `where not is_cycle`.
 */
export function subtreeCte(rootId: string, options: { liveOnly?: boolean } = {}): RawBuilder<unknown> {
  const live = options.liveOnly ? sql`and n.deleted_at is null` : sql``;
  return sql`with recursive subtree(id, depth) as (
      select id, 0 from nodes where id = ${rootId}
      union all
      select n.id, s.depth + 1 from nodes n join subtree s on n.parent_id = s.id where s.depth < ${maxTreeDepth} ${live})
    cycle id set is_cycle using path`;
}

/** `(select id from subtree where not is_cycle)`, to follow a `subtreeCte`. */
export const subtreeIds = sql`(select id from subtree where not is_cycle)`;

/**
 * Where `folderId` sits: whether `candidateId` is among its ancestors (or is it), how deep it is, and whether
 * its ancestry is unsound (a cycle, or deeper than the bound).
 */
export async function ancestry(
  executor: Parameters<RawBuilder<unknown>['execute']>[0],
  folderId: string,
  candidateId: string,
): Promise<{ contains: boolean; depth: number; unsound: boolean }> {
  const result = await sql<{ contains: boolean; depth: number; unsound: boolean }>`
    with recursive ancestors(id, parent_id, depth) as (
      select id, parent_id, 0 from nodes where id = ${folderId}
      union all
      select n.id, n.parent_id, a.depth + 1 from nodes n join ancestors a on n.id = a.parent_id where a.depth < ${maxTreeDepth})
    cycle id set is_cycle using path
    select coalesce(bool_or(id = ${candidateId}), false) as contains,
           coalesce(max(depth), 0)::int as depth,
           coalesce(bool_or(is_cycle) or bool_or(depth >= ${maxTreeDepth}), false) as unsound
    from ancestors`.execute(executor);
  return result.rows[0]!;
}
