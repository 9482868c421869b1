// Direct streaming upload (spec §6, PUT /folders/{id}/files/{name}): the body is cut into chunks while the
// whole is hashed, under a session row of its own, then committed through the one commit path.
import { createHash } from 'node:crypto';
import type { Db, UploadSession } from '../db/database';
import { AppError, badRequest, conflict, payloadTooLarge } from '../errors';
import { sha256Hex, storeChunk } from './chunk-store';
import { getTenant } from './identity.service';
import type { Principal } from './principal';
import { releaseReservations } from './quota-reservations.service';
import { withBufferBudget } from './upload-limits';
import { createUploadSession, defaultChunkSize, requireUser, type UploadDeps } from './upload-sessions.service';
import { commitVersion, type CommitResult } from './versions.service';
import { recordLateUploadConflict } from './sync-conflicts.service';

/** Deletes a direct upload's own session after a failure, releasing what it reserved. */
async function discardSession(db: Db, uploadId: string): Promise<void> {
  await db.transaction().execute(async (trx) => {
    const deleted = await trx.deleteFrom('upload_sessions').where('id', '=', uploadId).where('status', '!=', 'completed').returning(['reserved_bytes', 'reserved_subjects']).executeTakeFirst();
    if (deleted) await releaseReservations(trx, [{ subjects: deleted.reserved_subjects, bytes: deleted.reserved_bytes }]);
  });
}

/** Direct upload: streams the body into chunks while hashing the whole, then commits via the one commit path. */
export async function directUpload(
  deps: UploadDeps,
  principal: Principal,
  input: {
    parentId: string;
    name: string;
    contentLength?: number;
    checksumSha256?: string;
    baseVersionId?: string;
    /** The sync client making the upload (X-Device-Id): a base mismatch is recorded as its conflict. */
    deviceId?: string;
    /** The body's parts as they arrive (the transport turns a stalled body into 408). */
    body: AsyncIterable<Buffer>;
  },
): Promise<CommitResult> {
  const userId = requireUser(principal);
  const tenant = await getTenant(deps.db, principal.tenantId);
  const limit = tenant.settings.max_file_size_bytes;
  if (input.contentLength !== undefined && input.contentLength > limit) {
    throw payloadTooLarge(`File of ${input.contentLength} bytes exceeds the tenant's ${limit}-byte limit`);
  }
  // The session row exists from the start so every stored chunk is referenced (the sweep leaves it alone).
  const session = await createUploadSession(
    deps.db,
    principal,
    { parentId: input.parentId, name: input.name, size: input.contentLength ?? 0, chunkSize: defaultChunkSize, baseVersionId: input.baseVersionId },
    { maxOpenSessionsPerUser: deps.limits?.maxOpenSessionsPerUser, deviceId: input.deviceId },
  );
  try {
    // At most one chunk of this body is buffered at a time: that much is taken from the process budget.
    return await withBufferBudget(deps.limits, Math.min(input.contentLength ?? defaultChunkSize, defaultChunkSize), () => streamDirectUpload(deps, session, userId, limit, input));
  } catch (error) {
    await discardSession(deps.db, session.id);
    // Another device's version committed between the base check and this commit: that is this device's conflict too.
    if (input.deviceId && session.base_version_id && error instanceof AppError && error.code === 'VERSION_CONFLICT') {
      throw await recordLateUploadConflict(deps.db, principal, input.deviceId, session, session.base_version_id, error);
    }
    throw error;
  }
}

/** Cuts the body into chunks of the default size as it arrives (at most one chunk buffered), hashes the whole, and commits. */
async function streamDirectUpload(
  deps: UploadDeps,
  session: UploadSession,
  userId: string,
  limit: number,
  input: { contentLength?: number; checksumSha256?: string; body: AsyncIterable<Buffer> },
): Promise<CommitResult> {
  const whole = createHash('sha256');
  let index = 0;
  let total = 0;
  let buffered: Buffer[] = [];
  let bufferedBytes = 0;
  const flush = async () => {
    const data = Buffer.concat(buffered, bufferedBytes);
    buffered = [];
    bufferedBytes = 0;
    const sha256 = sha256Hex(data);
    if (await storeChunk(deps.db, deps.storage, session.tenant_id, sha256, data)) deps.onDeduplicated?.();
    await deps.db.insertInto('upload_chunks').values({ upload_id: session.id, index, tenant_id: session.tenant_id, user_id: userId, sha256, size: data.length }).execute();
    index += 1;
  };
  for await (const part of input.body) {
    let piece = part;
    total += piece.length;
    deps.onBytesReceived?.(piece.length);
    if (total > limit) {
      throw payloadTooLarge(`File exceeds the tenant's ${limit}-byte limit`);
    }
    whole.update(piece);
    while (piece.length > 0) {
      const take = Math.min(piece.length, defaultChunkSize - bufferedBytes);
      buffered.push(piece.subarray(0, take));
      bufferedBytes += take;
      piece = piece.subarray(take);
      if (bufferedBytes === defaultChunkSize) await flush();
    }
  }
  if (bufferedBytes > 0) await flush();
  if (input.contentLength !== undefined && total !== input.contentLength) throw badRequest('Body shorter than Content-Length', 'INCOMPLETE_BODY');
  const checksum = whole.digest('hex');
  if (input.checksumSha256 && input.checksumSha256.toLowerCase() !== checksum) {
    throw badRequest('Content does not match X-Checksum-Sha256', 'CHECKSUM_MISMATCH', { expected: input.checksumSha256.toLowerCase(), actual: checksum });
  }
  // The session's own transition, still one conditional statement: only an open session is frozen for commit.
  const frozen = await deps.db
    .updateTable('upload_sessions')
    .set({ size: total, chunk_count: index, status: 'finalizing' })
    .where('id', '=', session.id)
    .where('status', '=', 'open')
    .returning('id')
    .executeTakeFirst();
  if (!frozen) throw conflict('The upload session changed while the body was read', 'UPLOAD_CHANGED');
  return await commitVersion(deps.db, {
    tenantId: session.tenant_id,
    userId,
    parentId: session.parent_id,
    name: session.name,
    size: total,
    checksumSha256: checksum,
    // The session's base, not the request's: a keep_both space opened the session under a new name without one.
    baseVersionId: session.base_version_id ?? undefined,
    source: { uploadId: session.id },
  });
}
