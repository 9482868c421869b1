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

/**
 * The registry side of a chunk a user sends: whether the tenant stores it (its `last_seen_at` touched, under the
 * row lock the sweep takes, as in storeChunk) and whether `userId`'s own uploads hold it — one statement.
 */
export async function touchChunkForUser(db: Db, tenantId: string, userId: string, sha256: string): Promise<{ stored: boolean; ownedByUser: boolean }> {
  const result = await sql<{ stored: boolean; owned: boolean }>`
    with touched as (update chunks set last_seen_at = now() where tenant_id = ${tenantId} and sha256 = ${sha256} returning 1)
    select exists (select 1 from touched) as stored,
      exists (select 1 from version_chunks vc join versions v on v.id = vc.version_id
                where v.created_by = ${userId} and vc.tenant_id = ${tenantId} and vc.sha256 = ${sha256})
      or exists (select 1 from upload_chunks uc where uc.user_id = ${userId} and uc.tenant_id = ${tenantId} and uc.sha256 = ${sha256}) as owned`.execute(db);
  const row = result.rows[0]!;
  return { stored: row.stored, ownedByUser: row.owned };
}

/**
 * The registry row of a chunk just written (the size of the bytes written wins over a direct-upload ticket's
 * declaration), as a statement to run before another one in the same round trip (see recordChunks).
 */
export function registerChunkStatement(tenantId: string, sha256: string, size: number) {
  return sql`insert into chunks (tenant_id, sha256, size) values (${tenantId}, ${sha256}, ${size})
    on conflict (tenant_id, sha256) do update set last_seen_at = now(), size = excluded.size`;
}
