// Activities of the upload-finalization workflow. Each is idempotent: a retry or a replay finds the work
// done (session status, the version's unique upload_id) and never commits twice.
import { ApplicationFailure, heartbeat } from '@temporalio/activity';
import { sql } from 'kysely';
import type { Db } from '../db/database';
import { AppError } from '../errors';
import type { BlobStorage } from '../storage/blob-storage';
import { hashUpload, knownChecksumOfManifest, markUploadFailed, missingChunks, savedUploadChecksum } from '../services/upload-finalization.service';
import { isExpired } from '../services/upload-sessions.service';
import { BlobNotFoundError } from '../storage/blob-storage';
import { commitVersion, manifestFingerprint } from '../services/versions.service';

/** A business refusal: `reason` is the stable error code (UPLOAD_INCOMPLETE, QUOTA_EXCEEDED, …); the API maps it to HTTP. */
export type Rejection = { kind: 'rejected'; reason: string; detail: string; details?: Record<string, unknown> };

export type PrepareOutcome = { kind: 'ready'; size: number; chunkCount: number; declaredChecksum: string | null } | { kind: 'completed'; fileId: string; versionId: string } | Rejection;

export type CommitOutcome = { kind: 'completed'; fileId: string; versionId: string } | Rejection;

/** The SHA-256 of an upload's bytes and the fingerprint of the chunk manifest those bytes came from. */
export interface HashedContent {
  checksum: string;
  manifestSha256: string | null;
  /** The chunk hashing continued from (the ones before were hashed as they arrived); 0 when hashed whole. */
  resumedAtChunk?: number;
}

/** A chunk object gone from storage will not come back by retrying: a permanent failure. */
function chunkMissingIsPermanent(error: unknown): never {
  if (error instanceof BlobNotFoundError) {
    throw ApplicationFailure.create({ nonRetryable: true, type: 'CHUNK_MISSING', message: `A chunk of this upload is missing from storage (${error.key}); start the upload again` });
  }
  throw error;
}

export function createUploadActivities(deps: { db: Db; storage: BlobStorage }) {
  const reopen = (uploadId: string, code: string, detail: string) =>
    deps.db
      .updateTable('upload_sessions')
      .set({ status: 'open', error_code: code, error_detail: detail, updated_at: sql`now()` })
      .where('id', '=', uploadId)
      .where('status', '=', 'finalizing')
      .execute();

  return {
    /**
     * Freezes the session (open → finalizing, one conditional UPDATE that also requires it unexpired: chunk
     * writes are refused from then on), then checks every chunk is present; if not, it is reopened.
     */
    async prepareFinalization(uploadId: string): Promise<PrepareOutcome> {
      const frozen = await deps.db
        .updateTable('upload_sessions')
        .set({ status: 'finalizing', error_code: null, error_detail: null, updated_at: sql`now()` })
        .where('id', '=', uploadId)
        .where('status', 'in', ['open', 'finalizing'])
        .where('expires_at', '>', sql<Date>`now()`)
        .returningAll()
        .executeTakeFirst();
      if (!frozen) {
        const session = await deps.db.selectFrom('upload_sessions').selectAll().where('id', '=', uploadId).executeTakeFirst();
        if (!session) return { kind: 'rejected', reason: 'NOT_FOUND', detail: 'Upload session not found' };
        if (session.status === 'completed') return { kind: 'completed', fileId: session.file_id!, versionId: session.version_id! };
        if (isExpired(session)) return { kind: 'rejected', reason: 'UPLOAD_EXPIRED', detail: 'Upload session has expired' };
        return { kind: 'rejected', reason: 'UPLOAD_FAILED', detail: `Upload session failed: ${session.error_detail ?? ''}` };
      }
      const { missing, receivedBytes } = await missingChunks(deps.db, frozen);
      if (missing.length > 0 || receivedBytes !== frozen.size) {
        await deps.db.updateTable('upload_sessions').set({ status: 'open', updated_at: sql`now()` }).where('id', '=', uploadId).where('status', '=', 'finalizing').execute();
        return missing.length > 0
          ? { kind: 'rejected', reason: 'UPLOAD_INCOMPLETE', detail: `Chunks missing: ${missing.join(', ')}`, details: { missing_chunks: missing } }
          : { kind: 'rejected', reason: 'UPLOAD_INCOMPLETE', detail: `Received ${receivedBytes} bytes of ${frozen.size}` };
      }
      return { kind: 'ready', size: frozen.size, chunkCount: frozen.chunk_count, declaredChecksum: frozen.checksum_sha256 };
    },

    /**
     * The checksum when no byte needs reading (run as a local activity, see the workflow): the tenant already
     * stores a version with exactly this chunk manifest, or the API's hash owner hashed every chunk as it arrived
     * (checked: its chain covers this manifest, the chunks are stored). Null when the bytes must be hashed
     * (hashUploadedContent), also when a saved hash differs from the declared checksum: that is confirmed from the
     * first byte before the client is told its file is wrong.
     */
    async checksumWithoutReading(uploadId: string): Promise<HashedContent | null> {
      const session = await deps.db.selectFrom('upload_sessions').selectAll().where('id', '=', uploadId).executeTakeFirstOrThrow();
      const manifest = await deps.db.selectNoFrom(manifestFingerprint('upload_chunks', 'upload_id', uploadId).as('fingerprint')).executeTakeFirstOrThrow();
      const known = await knownChecksumOfManifest(deps.db, session);
      if (known) return { checksum: known, manifestSha256: manifest.fingerprint };
      const saved = await savedUploadChecksum(deps, uploadId).catch(chunkMissingIsPermanent);
      if (!saved || (session.checksum_sha256 && saved !== session.checksum_sha256)) return null;
      return { checksum: saved, manifestSha256: manifest.fingerprint, resumedAtChunk: session.chunk_count };
    },

    /**
     * Streams every chunk in order through SHA-256, heartbeating progress (chunks and bytes done) — unless the
     * tenant already stores a version with exactly this chunk manifest, whose checksum is then the answer.
     * Returns the manifest fingerprint it hashed too, so the commit can prove it commits that manifest.
     */
    async hashUploadedContent(uploadId: string): Promise<HashedContent> {
      const session = await deps.db.selectFrom('upload_sessions').selectAll().where('id', '=', uploadId).executeTakeFirstOrThrow();
      const manifest = await deps.db.selectNoFrom(manifestFingerprint('upload_chunks', 'upload_id', uploadId).as('fingerprint')).executeTakeFirstOrThrow();
      const known = await knownChecksumOfManifest(deps.db, session);
      if (known) return { checksum: known, manifestSha256: manifest.fingerprint };
      let lastBeat = 0;
      const progress = (chunksDone: number, bytesDone: number) => {
        const now = Date.now();
        if (now - lastBeat > 1000) {
          lastBeat = now;
          heartbeat({ chunksDone, bytesDone });
        }
      };
      const hash = (fromStart: boolean) => hashUpload(deps, uploadId, progress, { fromStart }).catch(chunkMissingIsPermanent);
      const first = await hash(false);
      let checksum = first.checksum;
      // Belt and braces: a mismatch against the hash saved as chunks arrived is confirmed from the first byte
      // before the client is told its file is wrong.
      let resumedAtChunk = first.resumedAtChunk;
      if (resumedAtChunk > 0 && session.checksum_sha256 && checksum !== session.checksum_sha256) {
        checksum = (await hash(true)).checksum;
        resumedAtChunk = 0;
      }
      // Chunk writes are refused while finalizing, so this cannot differ; checked anyway (cheap, and the commit relies on it).
      const after = await deps.db.selectNoFrom(manifestFingerprint('upload_chunks', 'upload_id', uploadId).as('fingerprint')).executeTakeFirstOrThrow();
      if (after.fingerprint !== manifest.fingerprint) throw new Error('The chunk manifest changed while it was hashed');
      return { checksum, manifestSha256: manifest.fingerprint, resumedAtChunk };
    },

    /** Ends the session as failed with the reason (the workflow's failure path); releases what it reserved. */
    async failUpload(uploadId: string, code: string, detail: string): Promise<void> {
      await markUploadFailed(deps.db, uploadId, code, detail);
    },

    /** Puts the session back to open with the reason, so the client can fix it and finalize again. */
    async reopenUpload(uploadId: string, code: string, detail: string): Promise<void> {
      await reopen(uploadId, code, detail);
    },

    /** The one commit: version row, quota charges and change-log entry in one transaction. */
    async commitUpload(uploadId: string, checksumSha256: string, manifestSha256?: string | null): Promise<CommitOutcome> {
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
          source: { uploadId, manifestSha256 },
        });
        return { kind: 'completed', fileId: result.file.id, versionId: result.version.id };
      } catch (error) {
        // Business refusals (quota, name or version conflict, lock) end the finalization, not retry it.
        if (error instanceof AppError && (error.status < 500 || error.code === 'QUOTA_EXCEEDED')) {
          await reopen(uploadId, error.code, error.detail);
          return { kind: 'rejected', reason: error.code, detail: error.detail, details: error.details };
        }
        throw error;
      }
    },
  };
}

export type UploadActivities = ReturnType<typeof createUploadActivities>;
