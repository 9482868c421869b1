// The tenant's tree lock: serialises the tree changes that must see a stable tree (folder moves, trash,
// purge) against each other and against everything that adds nodes under a folder.
import { sql, type Transaction } from 'kysely';
import type { Database } from '../db/database';

/**
 * Takes the tenant's tree lock for the rest of the transaction.
 *
 * - `exclusive`: folder moves (the cycle check and the move must see no other move in between), trash
 *   (nothing may be created under a folder while its subtree is being marked) and purge (nothing may be
 *   restored out of a subtree while it is deleted).
 * - `shared`: anything that adds or re-parents nodes under a live folder (folder create, version commits,
 *   file moves, renames, restores). Shared holders never wait for each other here.
 *
 * Lock order: this lock is always taken first in its transaction, before any row lock, so it cannot be part
 * of a deadlock with row locks. A transaction-scoped advisory lock is released at commit or rollback.
 */
export async function lockTree(trx: Transaction<Database>, tenantId: string, mode: 'shared' | 'exclusive'): Promise<void> {
  const lock = mode === 'exclusive' ? sql`pg_advisory_xact_lock` : sql`pg_advisory_xact_lock_shared`;
  await sql`select ${lock}(hashtext('scaidrive.tree'), hashtext(${tenantId}))`.execute(trx);
}
