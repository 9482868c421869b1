// The trash listing (spec §5): what was deleted in the caller's spaces, newest first, by keyset.
import type { Db, Node } from '../db/database';
import type { Principal } from './principal';
import { spacesOf } from './spaces.service';

/** Where a trash page ends: the last item's deletion time (ISO) and id. */
export type TrashCursor = [deletedAt: string, id: string];

export const trashCursorOf = (node: Node): TrashCursor => [node.deleted_at!.toISOString(), node.id];

/**
 * Trash roots (items deleted as a whole, not their contents) in the caller's spaces, or in one of them,
 * ordered by (deleted_at, id) descending: up to `limit + 1` rows, so the caller can tell whether more follow.
 */
export async function listTrash(db: Db, principal: Principal, options: { spaceId?: string; limit: number; after?: TrashCursor }): Promise<Node[]> {
  const spaces = await spacesOf(db, principal);
  const spaceIds = spaces.map((s) => s.id).filter((id) => !options.spaceId || id === options.spaceId);
  if (spaceIds.length === 0) return [];
  let select = db
    .selectFrom('nodes')
    .selectAll()
    .where('tenant_id', '=', principal.tenantId)
    .where('space_id', 'in', spaceIds)
    .where('trash_root', '=', true)
    .orderBy('deleted_at', 'desc')
    .orderBy('id', 'desc')
    .limit(options.limit + 1);
  const after = options.after;
  if (after) select = select.where((eb) => eb.or([eb('deleted_at', '<', new Date(after[0])), eb.and([eb('deleted_at', '=', new Date(after[0])), eb('id', '<', after[1])])]));
  return select.execute();
}
