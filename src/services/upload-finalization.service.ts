// What upload finalization and its activities use: the missing-chunk check, the manifest shortcut, streaming
// hashing of the whole upload, marking a finalization failed, and the expiry of overdue sessions.
import { createHash } from 'node:crypto';
import { sql, type Transaction } from 'kysely';
import type { Database, Db, UploadSession } from '../db/database';
import { BlobNotFoundError, type BlobStorage } from '../storage/blob-storage';
import { finalizationGraceHours } from '../temporal/activity-options';
import { chunkKey } from './chunk-store';
import { StoredChunkStream } from './stored-chunk-stream';
import { releaseReservations } from './quota-reservations.service';
import { manifestFingerprint } from './versions.service';
import { manifestChain } from './upload-hash.service';

/**
 * Marks sessions past expires_at as expired (all of them, or one user's) and releases their reservations in
 * the same transaction. The status change and the zeroing of reserved_bytes are one statement over rows
 * locked for it, so each reservation is released exactly once; rows locked by a concurrent abort or commit
 * are skipped (that one decides).
 */
export async function expireOverdueSessions(trx: Transaction<Database>, userId?: string, tenantId?: string): Promise<string[]> {
  const expired = await sql<{ id: string; reserved_bytes: number; reserved_subjects: UploadSession['reserved_subjects'] }>`
    with due as (
      select id, reserved_bytes, reserved_subjects from upload_sessions
      where (status in ('open', 'failed') and expires_at < now()
          or status = 'finalizing' and expires_at < now() - make_interval(hours => ${finalizationGraceHours}))
        ${userId ? sql`and user_id = ${userId}` : sql``}
        ${tenantId ? sql`and tenant_id = ${tenantId}` : sql``}
      order by id
      for update skip locked)
    update upload_sessions s
      set status = 'expired', reserved_bytes = 0, reserved_subjects = '[]'::jsonb, updated_at = now()
      from due where s.id = due.id
      returning s.id, due.reserved_bytes, due.reserved_subjects`.execute(trx);
  const ids = expired.rows.map((r) => r.id);
  if (ids.length === 0) return ids;
  await releaseReservations(trx, expired.rows.map((r) => ({ subjects: r.reserved_subjects, bytes: Number(r.reserved_bytes) })));
  await trx.deleteFrom('upload_chunks').where('upload_id', 'in', ids).execute();
  return ids;
}

/**
 * Ends a finalization that cannot succeed: finalizing → failed in one conditional UPDATE (so it happens once),
 * with the reason; the reservation is released and the session's chunk rows dropped in the same transaction,
 * so the sweep can reclaim chunk objects nothing else references. Returns false when the session was not
 * finalizing (already failed, completed or gone).
 */
export async function markUploadFailed(db: Db, uploadId: string, code: string, detail: string): Promise<boolean> {
  return db.transaction().execute(async (trx) => {
    const failed = await sql<{ reserved_bytes: number; reserved_subjects: UploadSession['reserved_subjects'] }>`
      update upload_sessions s set status = 'failed', error_code = ${code}, error_detail = ${detail},
        reserved_bytes = 0, reserved_subjects = '[]'::jsonb, updated_at = now()
      from (select id, reserved_bytes, reserved_subjects from upload_sessions where id = ${uploadId} and status = 'finalizing' for update) before
      where s.id = before.id
      returning before.reserved_bytes, before.reserved_subjects`.execute(trx);
    const row = failed.rows[0];
    if (!row) return false;
    await releaseReservations(trx, [{ subjects: row.reserved_subjects, bytes: Number(row.reserved_bytes) }]);
    await trx.deleteFrom('upload_chunks').where('upload_id', '=', uploadId).execute();
    return true;
  });
}

/** What is still missing before a session can be finalized. */
export async function missingChunks(db: Db, session: UploadSession): Promise<{ missing: number[]; receivedBytes: number }> {
  const rows = await db.selectFrom('upload_chunks').select(['index', 'size']).where('upload_id', '=', session.id).execute();
  const have = new Set(rows.map((r) => r.index));
  const missing: number[] = [];
  for (let i = 0; i < session.chunk_count && missing.length < 100; i++) if (!have.has(i)) missing.push(i);
  return { missing, receivedBytes: rows.reduce((sum, r) => sum + r.size, 0) };
}

/**
 * The SHA-256 of an upload whose chunk manifest equals that of a version the tenant already stores (same
 * chunks in the same order are the same bytes), so finalize need not read the content again; else null.
 */
export async function knownChecksumOfManifest(db: Db, session: UploadSession): Promise<string | null> {
  const match = await db
    .selectFrom('versions')
    .select('checksum_sha256')
    .where('tenant_id', '=', session.tenant_id)
    .where('size', '=', session.size)
    .where('manifest_sha256', '=', manifestFingerprint('upload_chunks', 'upload_id', session.id))
    .limit(1)
    .executeTakeFirst();
  return match?.checksum_sha256 ?? null;
}

/** Chunk HEADs in flight while checking that chunks are stored (a pool: a slow answer holds up one lane, not a batch). */
const headConcurrency = 64;

/** Throws BlobNotFoundError for the first of the session's first `count` chunks that is not stored with its size. */
async function assertChunksStored(deps: { db: Db; storage: BlobStorage }, uploadId: string, count: number): Promise<void> {
  let next = 0;
  while (next < count) {
    const page = await deps.db.selectFrom('upload_chunks').select(['index', 'tenant_id', 'sha256', 'size']).where('upload_id', '=', uploadId).where('index', '>=', next).where('index', '<', count).orderBy('index').limit(500).execute();
    if (page.length === 0) return;
    let taken = 0;
    await Promise.all(
      Array.from({ length: Math.min(headConcurrency, page.length) }, async () => {
        while (taken < page.length) {
          const row = page[taken++]!;
          const key = chunkKey(row.tenant_id, row.sha256);
          const stored = await deps.storage.head(key);
          if (stored?.size !== row.size) throw new BlobNotFoundError(key);
        }
      }),
    );
    next = page[page.length - 1]!.index + 1;
  }
}

/**
 * The file's SHA-256 as the session's hash owner saved it once every chunk had arrived (see
 * upload-hash.service.ts), when it provably covers this manifest (same chain digest) — after checking with a HEAD
 * per chunk that the chunks are still stored whole, since they are not read again and the version will reference
 * them (a version must never point at a missing object: BlobNotFoundError). Null when there is none to trust.
 */
export async function savedUploadChecksum(deps: { db: Db; storage: BlobStorage }, uploadId: string): Promise<string | null> {
  const saved = await deps.db.selectFrom('upload_sessions').select(['chunk_count', 'hashed_chunks', 'hashed_sha256', 'hashed_chain']).where('id', '=', uploadId).executeTakeFirstOrThrow();
  if (saved.hashed_sha256 === null || saved.hashed_chunks !== saved.chunk_count) return null;
  if ((await manifestChain(deps.db, uploadId, saved.chunk_count)) !== saved.hashed_chain) return null;
  await assertChunksStored(deps, uploadId, saved.chunk_count);
  return saved.hashed_sha256;
}

/**
 * Streams the session's chunks in order through SHA-256, reading the manifest a page at a time so memory
 * stays flat whatever the file size — unless the hash owner's saved SHA-256 covers this manifest
 * (savedUploadChecksum), or `fromStart`. `onProgress` gets the number of chunks hashed so far. `resumedAtChunk`
 * says where hashing started here: the chunk count when nothing was left, else 0.
 */
export async function hashUpload(
  deps: { db: Db; storage: BlobStorage },
  uploadId: string,
  onProgress?: (chunksDone: number, bytesDone: number) => void,
  options: { fromStart?: boolean } = {},
): Promise<{ checksum: string; resumedAtChunk: number }> {
  const saved = options.fromStart ? null : await savedUploadChecksum(deps, uploadId);
  if (saved) {
    const { chunk_count: chunkCount } = await deps.db.selectFrom('upload_sessions').select('chunk_count').where('id', '=', uploadId).executeTakeFirstOrThrow();
    return { checksum: saved, resumedAtChunk: chunkCount };
  }
  const hash = createHash('sha256');
  let nextIndex = 0;
  let bytes = 0;
  for (;;) {
    const page = await deps.db.selectFrom('upload_chunks').select(['index', 'tenant_id', 'sha256', 'size']).where('upload_id', '=', uploadId).where('index', '>=', nextIndex).orderBy('index').limit(500).execute();
    if (page.length === 0) break;
    // Each chunk streamed into the hash as it arrives, the next one opened meanwhile (memory stays flat).
    const reader = new StoredChunkStream(deps.storage, page.map((row) => ({ key: chunkKey(row.tenant_id, row.sha256), size: row.size })));
    try {
      for (const row of page) {
        await reader.hashNext(hash);
        bytes += row.size;
        onProgress?.(row.index + 1, bytes);
      }
    } catch (error) {
      reader.abandon();
      throw error;
    }
    nextIndex = page[page.length - 1]!.index + 1;
  }
  return { checksum: hash.digest('hex'), resumedAtChunk: 0 };
}
