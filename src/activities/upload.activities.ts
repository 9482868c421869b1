// Activities of the upload-finalization workflow. Each is idempotent: a retry or a replay finds the work
// done (session status, the version's unique upload_id) and never commits twice.
import { heartbeat } from '@temporalio/activity';
import { sql } from 'kysely';
import type { Db } from '../db/database';
import { AppError } from '../errors';
import type { BlobStorage } from '../storage/blob-storage';
import { hashUpload, isExpired, knownChecksumOfManifest, missingChunks } from '../services/uploads.service';
import { commitVersion } from '../services/versions.service';

export type PrepareOutcome =
  | { kind: 'ready'; size: number; chunkCount: number; declaredChecksum: string | null }
  | { kind: 'completed'; fileId: string; versionId: string }
  | { kind: 'rejected'; status: number; code: string; detail: string; details?: Record<string, unknown> };

export type CommitOutcome =
  | { kind: 'completed'; fileId: string; versionId: string }
  | { kind: 'rejected'; status: number; code: string; detail: string; details?: Record<string, unknown> };

export function createUploadActivities(deps: { db: Db; storage: BlobStorage }) {
  const reopen = (uploadId: string, code: string, detail: string) =>
    deps.db
      .updateTable('upload_sessions')
      .set({ status: 'open', error_code: code, error_detail: detail, updated_at: sql`now()` })
      .where('id', '=', uploadId)
      .where('status', '=', 'finalizing')
      .execute();

  return {
    /** Checks the session can be finalized (every chunk present, not expired) and marks it finalizing. */
    async prepareFinalization(uploadId: string): Promise<PrepareOutcome> {
      const session = await deps.db.selectFrom('upload_sessions').selectAll().where('id', '=', uploadId).executeTakeFirst();
      if (!session) return { kind: 'rejected', status: 404, code: 'NOT_FOUND', detail: 'Upload session not found' };
      if (session.status === 'completed') return { kind: 'completed', fileId: session.file_id!, versionId: session.version_id! };
      if (isExpired(session)) return { kind: 'rejected', status: 410, code: 'UPLOAD_EXPIRED', detail: 'Upload session has expired' };
      const { missing, receivedBytes } = await missingChunks(deps.db, session);
      if (missing.length > 0) {
        return { kind: 'rejected', status: 400, code: 'UPLOAD_INCOMPLETE', detail: `Chunks missing: ${missing.join(', ')}`, details: { missing_chunks: missing } };
      }
      if (receivedBytes !== session.size) {
        return { kind: 'rejected', status: 400, code: 'UPLOAD_INCOMPLETE', detail: `Received ${receivedBytes} bytes of ${session.size}` };
      }
      await deps.db
        .updateTable('upload_sessions')
        .set({ status: 'finalizing', error_code: null, error_detail: null, updated_at: sql`now()` })
        .where('id', '=', uploadId)
        .where('status', 'in', ['open', 'finalizing'])
        .execute();
      return { kind: 'ready', size: session.size, chunkCount: session.chunk_count, declaredChecksum: session.checksum_sha256 };
    },

    /**
     * Streams every chunk in order through SHA-256, heartbeating progress (chunks and bytes done) — unless the
     * tenant already stores a version with exactly this chunk manifest, whose checksum is then the answer.
     */
    async hashUploadedContent(uploadId: string): Promise<string> {
      const session = await deps.db.selectFrom('upload_sessions').selectAll().where('id', '=', uploadId).executeTakeFirstOrThrow();
      const known = await knownChecksumOfManifest(deps.db, session);
      if (known) return known;
      let lastBeat = 0;
      return hashUpload(deps, uploadId, (chunksDone, bytesDone) => {
        const now = Date.now();
        if (now - lastBeat > 1000) {
          lastBeat = now;
          heartbeat({ chunksDone, bytesDone });
        }
      });
    },

    /** Puts the session back to open with the reason, so the client can fix it and finalize again. */
    async reopenUpload(uploadId: string, code: string, detail: string): Promise<void> {
      await reopen(uploadId, code, detail);
    },

    /** The one commit: version row, quota charges and change-log entry in one transaction. */
    async commitUpload(uploadId: string, checksumSha256: string): Promise<CommitOutcome> {
      const session = await deps.db.selectFrom('upload_sessions').selectAll().where('id', '=', uploadId).executeTakeFirstOrThrow();
      try {
        const result = await commitVersion(deps.db, {
          tenantId: session.tenant_id,
          userId: session.user_id,
          parentId: session.parent_id,
          name: session.name,
          size: session.size,
          checksumSha256,
          baseVersionId: session.base_version_id,
          source: { uploadId },
        });
        return { kind: 'completed', fileId: result.file.id, versionId: result.version.id };
      } catch (error) {
        // Business refusals (quota, name or version conflict, lock) end the finalization, not retry it.
        if (error instanceof AppError && (error.status < 500 || error.code === 'QUOTA_EXCEEDED')) {
          await reopen(uploadId, error.code, error.detail);
          return { kind: 'rejected', status: error.status, code: error.code, detail: error.detail, details: error.details };
        }
        throw error;
      }
    },
  };
}

export type UploadActivities = ReturnType<typeof createUploadActivities>;
