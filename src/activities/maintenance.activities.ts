// Maintenance activities: purge expired trash, expire upload sessions, sweep unreferenced chunks, prune the
// change log, recalculate quotas. Each works in bounded batches and is safe to retry at any point.
import { heartbeat } from '@temporalio/activity';
import { sql } from 'kysely';
import type { Db } from '../db/database';
import type { Logger } from '../logger';
import type { BlobStorage } from '../storage/blob-storage';
import { chunkKey } from '../services/chunk-store';
import { recalculateTenant } from '../services/quota.service';
import { expireOverdueSessions } from '../services/upload-finalization.service';
import { purgeTrashItem } from '../services/tree.service';
import { pruneChangeLog } from '../services/changelog.service';

export function createMaintenanceActivities(deps: { db: Db; storage: BlobStorage; logger: Logger }) {
  return {
    /** Purges trash items older than their tenant's trash_retention_days. */
    async purgeExpiredTrash(batchSize = 200, tenantId?: string): Promise<number> {
      let purged = 0;
      for (;;) {
        let query = deps.db
          .selectFrom('nodes')
          .innerJoin('tenants', 'tenants.id', 'nodes.tenant_id')
          .selectAll('nodes')
          .where('nodes.trash_root', '=', true)
          .where(sql<boolean>`nodes.deleted_at < now() - make_interval(days => (tenants.settings->>'trash_retention_days')::int)`)
          .limit(batchSize);
        if (tenantId) query = query.where('nodes.tenant_id', '=', tenantId);
        const expired = await query.execute();
        if (expired.length === 0) return purged;
        for (const node of expired) {
          // Re-checked under lock by the service: a concurrent restore or purge wins cleanly.
          await purgeTrashItem(deps.db, node.tenant_id, node.id, null);
          purged += 1;
        }
        heartbeat({ purged });
      }
    },

    /**
     * Marks sessions past expires_at as expired, releases their quota reservations and drops their chunk
     * references (the sweep reclaims the bytes).
     */
    async expireUploadSessions(tenantId?: string): Promise<number> {
      return deps.db.transaction().execute(async (trx) => {
        const ids = await expireOverdueSessions(trx, undefined, tenantId);
        // Sessions that were already expired keep no chunks either (a crash between the two statements above).
        await sql`delete from upload_chunks uc using upload_sessions s where s.id = uc.upload_id and s.status = 'expired'`.execute(trx);
        return ids.length;
      });
    },

    /**
     * Mark and sweep: a chunk no version and no live session references, untouched for `graceSeconds`, is
     * deleted. The registry row is locked while its object is deleted, so an upload relying on the chunk at
     * that moment waits and then writes it anew. `tenantId` limits the sweep to one tenant (operators, tests).
     */
    async sweepUnreferencedChunks(graceSeconds = 3600, batchSize = 200, tenantId?: string): Promise<number> {
      let swept = 0;
      for (;;) {
        const removed = await deps.db.transaction().execute(async (trx) => {
          const candidates = await sql<{ tenant_id: string; sha256: string }>`
            select c.tenant_id, c.sha256 from chunks c
            where c.last_seen_at < now() - make_interval(secs => ${graceSeconds})
              ${tenantId ? sql`and c.tenant_id = ${tenantId}` : sql``}
              and not exists (select 1 from version_chunks vc where vc.tenant_id = c.tenant_id and vc.sha256 = c.sha256)
              and not exists (select 1 from upload_chunks uc where uc.tenant_id = c.tenant_id and uc.sha256 = c.sha256)
            limit ${batchSize}
            for update of c skip locked`.execute(trx);
          for (const chunk of candidates.rows) {
            await deps.storage.delete(chunkKey(chunk.tenant_id, chunk.sha256));
            await trx.deleteFrom('chunks').where('tenant_id', '=', chunk.tenant_id).where('sha256', '=', chunk.sha256).execute();
          }
          return candidates.rows.length;
        });
        swept += removed;
        heartbeat({ swept });
        if (removed < batchSize) return swept;
      }
    },

    /**
     * Deletes change-log entries older than each tenant's changelog_retention_days (only `tenantId`'s when given)
     * and resync listings older than a day; cursors from before the pruned entries are then answered 410.
     */
    async pruneChangeLog(tenantId?: string): Promise<number> {
      return pruneChangeLog(deps.db, tenantId);
    },

    async recalculateTenantQuotas(tenantId: string): Promise<number> {
      return (await recalculateTenant(deps.db, tenantId)).subjects;
    },
  };
}

export type MaintenanceActivities = ReturnType<typeof createMaintenanceActivities>;
