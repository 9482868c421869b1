// Content-addressed chunk storage per tenant (`{tenant}/chunks/{sha256}`) with its registry table, so a
// chunk already stored is never written again and the sweep knows what exists.
import { createHash } from 'node:crypto';
import { sql } from 'kysely';
import type { Db } from '../db/database';
import type { BlobStorage } from '../storage/blob-storage';

export function chunkKey(tenantId: string, sha256: string): string {
  return `${tenantId}/chunks/${sha256}`;
}

export function sha256Hex(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/**
 * Stores a chunk. Returns true when it was deduplicated (already stored, so not written again).
 * With `skipWhenStored: false` the object is written even when the tenant has it, so the caller's answer
 * and timing do not reveal that someone else stores these bytes.
 * Ordering matters for the sweep: touching an existing registry row (last_seen_at) happens under the row
 * lock the sweep takes, so a chunk we rely on is either kept or already gone (and then written anew); a new
 * object is written before its registry row exists, so a row always means the object is there.
 */
export async function storeChunk(db: Db, storage: BlobStorage, tenantId: string, sha256: string, data: Buffer, options: { skipWhenStored?: boolean } = {}): Promise<boolean> {
  const touched = await db
    .updateTable('chunks')
    .set({ last_seen_at: sql`now()` })
    .where('tenant_id', '=', tenantId)
    .where('sha256', '=', sha256)
    .returning('sha256')
    .executeTakeFirst();
  if (touched && options.skipWhenStored !== false) return true;
  await storage.put(chunkKey(tenantId, sha256), data, data.length);
  await db
    .insertInto('chunks')
    .values({ tenant_id: tenantId, sha256, size: data.length })
    // The size of the bytes just written wins over a direct-upload ticket's declaration (see direct-transfer.service.ts).
    .onConflict((oc) => oc.columns(['tenant_id', 'sha256']).doUpdateSet({ last_seen_at: sql`now()`, size: sql`excluded.size` }))
    .execute();
  return false;
}
