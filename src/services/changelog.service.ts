// Appends to the tenant's change log; always called inside the transaction of the mutation it records.
import type { Transaction } from 'kysely';
import type { ChangeType, Database, Node } from '../db/database';

export async function appendChange(
  trx: Transaction<Database>,
  type: ChangeType,
  node: Pick<Node, 'id' | 'tenant_id' | 'space_id' | 'parent_id' | 'name'>,
  options: { versionId?: string | null; actorId?: string | null } = {},
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
    })
    .execute();
}
