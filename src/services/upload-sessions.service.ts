// Upload sessions (spec §6): creation with early checks and quota reservation, chunk PUTs (idempotent per
// index, any order), status, abort and the dedup check. Finalization lives in upload-finalization.service.ts.
import { createHash, type Hash } from 'node:crypto';
import { sql, type RawBuilder } from 'kysely';
import type { Db, UploadSession } from '../db/database';
import { AppError, badRequest, conflict, gone, notFound, payloadTooLarge } from '../errors';
import { newId } from '../ids';
import type { BlobStorage } from '../storage/blob-storage';
import { accessNode } from './access.service';
import { chunkKey, registerChunkStatement, touchChunkForUser } from './chunk-store';
import { followUploadHash, sessionHashSettled } from './upload-hash.service';
import { getTenant } from './identity.service';
import type { Principal } from './principal';
import { chargeSubjects } from './quota.service';
import { releaseReservations, reserve } from './quota-reservations.service';
import { withBufferBudget, withChunkSlot, type UploadLimits } from './upload-limits';
import { expireOverdueSessions } from './upload-finalization.service';
import { findLiveSibling, holdLiveFolder, validName } from './tree.service';
import type { SyncDevice } from './sync-devices.service';
import { deviceForWrite, freeConflictCopyName, openConflictOfUpload, recordConflict, spaceConflictPolicy, versionConflict } from './sync-conflicts.service';

export const defaultChunkSize = 8 * 1024 * 1024;
export const minChunkSize = 64 * 1024;
export const maxChunkSize = 64 * 1024 * 1024;
/** The cap on sessions in progress per user when the caller passes none (SCAIDRIVE_UPLOAD_MAX_OPEN_SESSIONS_PER_USER). */
const defaultMaxOpenSessionsPerUser = 100;
/** Entries one `chunks/check` may carry (each list): bounded work per request. */
export const maxCheckEntries = 1000;

export interface UploadDeps {
  db: Db;
  storage: BlobStorage;
  onDeduplicated?: () => void;
  onBytesReceived?: (bytes: number) => void;
  /** Per-process limits on bodies (buffer budget, per-user chunk concurrency, stall timeout); none when absent. */
  limits?: UploadLimits;
  /** Keep the whole-file hash moving as chunks arrive (upload-hash.service.ts); a failure there only costs speed. */
  followHash?: { onError: (error: unknown) => void };
}

export function requireUser(principal: Principal): string {
  if (principal.kind !== 'user') throw new AppError(403, 'FORBIDDEN', 'Uploads need a user token');
  return principal.userId;
}

export interface CreateSessionInput {
  parentId: string;
  name: string;
  size: number;
  checksumSha256?: string;
  chunkSize?: number;
  baseVersionId?: string;
  /** 'direct': chunks go to presigned URLs on the store (S3 driver only); 'proxied' (default): through the API. */
  transfer?: 'proxied' | 'direct';
}

/**
 * Opens a session and, in the same transaction, reserves its declared bytes on every quota subject (507
 * when they do not fit beside what is used and already reserved) and enforces the per-user cap on
 * sessions in progress (429). The reservation locks the user's quota row, so the count is exact under
 * concurrency.
 */
export async function createUploadSession(
  db: Db,
  principal: Principal,
  input: CreateSessionInput,
  options: {
    maxOpenSessionsPerUser?: number;
    /** The sync client making the upload (X-Device-Id): a base_version_id mismatch is recorded as its conflict. */
    deviceId?: string;
    /** On a recorded conflict, open the session anyway and keep it for the client's content (resumable uploads). */
    keepOpenOnConflict?: boolean;
    /** The storage driver: direct transfer needs one that signs URLs (S3). */
    storageDriver?: BlobStorage['driver'];
  } = {},
): Promise<UploadSession> {
  const userId = requireUser(principal);
  if (input.transfer === 'direct' && options.storageDriver !== 's3') {
    throw badRequest('"transfer": "direct" needs the S3 storage driver; this server stores files on its filesystem (send chunks through the API)', 'DIRECT_TRANSFER_UNSUPPORTED');
  }
  let name = validName(input.name);
  let baseVersionId = input.baseVersionId;
  const device = await deviceForWrite(db, principal, options.deviceId);
  const { space } = await accessNode(db, principal, input.parentId, 'write', { kind: 'folder' });
  const tenant = await getTenant(db, principal.tenantId);
  if (input.size > tenant.settings.max_file_size_bytes) {
    throw payloadTooLarge(`File of ${input.size} bytes exceeds the tenant's ${tenant.settings.max_file_size_bytes}-byte limit`);
  }
  const sibling = await findLiveSibling(db, input.parentId, name);
  if (sibling?.kind === 'folder') throw conflict(`A folder named "${name}" already exists here`, 'NAME_CONFLICT');
  let conflictToRecord: { fileId: string; serverVersionId: string | null; autoResolved?: 'keep_both' } | null = null;
  if (input.baseVersionId && sibling?.current_version_id !== input.baseVersionId) {
    const detail = 'base_version_id is not the current version of the file';
    const details = { base_version_id: input.baseVersionId, current_version_id: sibling?.current_version_id ?? null };
    // The file the client's base belongs to (this one, or one deleted or renamed on the server meanwhile).
    const baseFile = await db.selectFrom('versions').select('file_id').where('id', '=', input.baseVersionId).where('tenant_id', '=', principal.tenantId).executeTakeFirst();
    if (!device || !baseFile) throw conflict(detail, 'VERSION_CONFLICT', details);
    conflictToRecord = { fileId: baseFile.file_id, serverVersionId: sibling?.current_version_id ?? null };
    if ((await spaceConflictPolicy(db, space.id)) === 'keep_both') {
      // The space keeps both: the client's content becomes "name (conflict from DEVICE date).ext" at once.
      name = await freeConflictCopyName(db, input.parentId, name, device.name);
      baseVersionId = undefined;
      conflictToRecord.autoResolved = 'keep_both';
    } else if (!options.keepOpenOnConflict) {
      const recorded = await recordUploadConflict(db, principal, device, space.id, input.baseVersionId, conflictToRecord, null);
      throw versionConflict(detail, details, recorded);
    }
  }
  const session = await openSession(db, principal, userId, space.id, { ...input, name, baseVersionId }, options);
  if (conflictToRecord && device) {
    const recorded = await recordUploadConflict(db, principal, device, space.id, input.baseVersionId!, conflictToRecord, session.id);
    if (!conflictToRecord.autoResolved) {
      throw versionConflict('base_version_id is not the current version of the file: the session is kept open for your content until the conflict is resolved', { base_version_id: input.baseVersionId, current_version_id: conflictToRecord.serverVersionId }, recorded);
    }
  }
  return session;
}

function recordUploadConflict(
  db: Db,
  principal: Principal,
  device: SyncDevice,
  spaceId: string,
  baseVersionId: string,
  found: { fileId: string; serverVersionId: string | null; autoResolved?: 'keep_both' },
  uploadId: string | null,
) {
  return recordConflict(db, {
    tenant_id: principal.tenantId,
    user_id: device.user_id,
    device_id: device.id,
    node_id: found.fileId,
    space_id: spaceId,
    operation: 'upload',
    base_version_id: baseVersionId,
    server_version_id: found.serverVersionId,
    uploadId,
    autoResolved: found.autoResolved,
  });
}

async function openSession(
  db: Db,
  principal: Principal,
  userId: string,
  spaceId: string,
  input: CreateSessionInput,
  options: { maxOpenSessionsPerUser?: number },
): Promise<UploadSession> {
  const tenant = await getTenant(db, principal.tenantId);
  const name = input.name;
  const space = { id: spaceId };
  const chunkSize = input.chunkSize ?? defaultChunkSize;
  const maxOpen = options.maxOpenSessionsPerUser ?? defaultMaxOpenSessionsPerUser;
  return db.transaction().execute(async (trx) => {
    // The folder before any quota row, the order commits take them in (see holdLiveFolder).
    await holdLiveFolder(trx, input.parentId);
    // The user's sessions past their expiry give their reservations back first (the hourly sweep may not have run).
    await expireOverdueSessions(trx, userId);
    const subjects = await chargeSubjects(trx, principal.tenantId, userId, space.id);
    await reserve(trx, principal.tenantId, subjects, input.size);
    const active = await trx
      .selectFrom('upload_sessions')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('user_id', '=', userId)
      .where('status', 'in', ['open', 'finalizing'])
      .where('expires_at', '>', sql<Date>`now()`)
      .executeTakeFirstOrThrow();
    if (Number(active.n) >= maxOpen) {
      throw new AppError(429, 'TOO_MANY_UPLOAD_SESSIONS', `At most ${maxOpen} upload sessions may be in progress per user; finalize or abort some first`, { limit: maxOpen }, { 'Retry-After': '60' });
    }
    return trx
    .insertInto('upload_sessions')
    .values({
      id: newId('upload'),
      tenant_id: principal.tenantId,
      user_id: userId,
      space_id: space.id,
      parent_id: input.parentId,
      name,
      size: input.size,
      chunk_size: chunkSize,
      chunk_count: Math.ceil(input.size / chunkSize),
      checksum_sha256: input.checksumSha256?.toLowerCase() ?? null,
      base_version_id: input.baseVersionId ?? null,
      transfer: input.transfer ?? 'proxied',
      expires_at: new Date(Date.now() + tenant.settings.upload_session_ttl_hours * 3600 * 1000),
      reserved_bytes: input.size,
      reserved_subjects: JSON.stringify(subjects),
    })
    .returningAll()
    .executeTakeFirstOrThrow();
  });
}

/** The caller's own session; others' sessions do not exist for them (404). */
export async function getOwnSession(db: Db, principal: Principal, uploadId: string): Promise<UploadSession> {
  const session = await db.selectFrom('upload_sessions').selectAll().where('id', '=', uploadId).where('tenant_id', '=', principal.tenantId).executeTakeFirst();
  if (!session || principal.kind !== 'user' || session.user_id !== principal.userId) throw notFound('Upload session');
  return session;
}

export function isExpired(session: UploadSession): boolean {
  return session.status === 'expired' || (session.status !== 'completed' && session.expires_at.getTime() <= Date.now());
}

/** Throws unless chunks may still be sent: 410 when expired, 409 once finalizing or completed. */
export function assertWritable(session: UploadSession): void {
  if (isExpired(session)) throw gone('Upload session has expired', 'UPLOAD_EXPIRED');
  if (session.status === 'completed') throw conflict('Upload session is already completed', 'UPLOAD_COMPLETED');
  if (session.status === 'finalizing') throw conflict('Upload session is being finalized', 'UPLOAD_FINALIZING');
  if (session.status === 'failed') throw conflict(`Upload session failed: ${session.error_detail ?? ''}`, 'UPLOAD_FAILED');
}

export function expectedChunkSize(session: UploadSession, index: number): number {
  return index < session.chunk_count - 1 ? session.chunk_size : session.size - session.chunk_size * (session.chunk_count - 1);
}

export interface ChunkReceipt {
  index: number;
  size: number;
  sha256: string;
  deduplicated: boolean;
}

/** Stores one chunk of a session. A chunk is at most 64 MiB, so it is held in memory once, never a whole file. */
export async function putChunk(
  deps: UploadDeps,
  principal: Principal,
  uploadId: string,
  index: number,
  /**
   * Reads the chunk's body, which must be `expectedBytes` long (the transport enforces 413 before excess bytes),
   * into `into` when given, feeding every byte to `hash` as it arrives.
   */
  readBody: (expectedBytes: number, into: Buffer | undefined, hash: Hash) => Promise<Buffer>,
  declared: { contentLength?: number; sha256?: string },
): Promise<ChunkReceipt> {
  const session = await getOwnSession(deps.db, principal, uploadId);
  assertWritable(session);
  // The caller must still be allowed to write there (a share grant can be removed mid-upload).
  await accessNode(deps.db, principal, session.parent_id, 'write', { kind: 'folder' });
  if (!Number.isInteger(index) || index < 0 || index >= session.chunk_count) {
    throw badRequest(`Chunk index must be between 0 and ${session.chunk_count - 1}`, 'CHUNK_INDEX_OUT_OF_RANGE');
  }
  const expected = expectedChunkSize(session, index);
  if (declared.contentLength !== undefined && declared.contentLength !== expected) {
    throw badRequest(`Chunk ${index} must be ${expected} bytes, Content-Length says ${declared.contentLength}`, 'CHUNK_SIZE_MISMATCH');
  }
  // The chunk's bytes are reserved from the process budget before a byte is read, and released on every path.
  return withChunkSlot(deps.limits, session.user_id, () =>
    withBufferBudget(deps.limits, expected, async (lease) => {
      // Hashed while it arrives: with one upload stream, the chunk's hash is not added to its round trip.
      const hash = createHash('sha256');
      const data = await readBody(expected, lease.buffer, hash);
      deps.onBytesReceived?.(data.length);
      if (data.length !== expected) throw badRequest(`Chunk ${index} must be ${expected} bytes, got ${data.length}`, 'CHUNK_SIZE_MISMATCH');
      const sha256 = hash.digest('hex');
      if (declared.sha256 && declared.sha256.toLowerCase() !== sha256) {
        throw badRequest(`Chunk ${index} does not match X-Chunk-Sha256`, 'CHECKSUM_MISMATCH', { expected: declared.sha256.toLowerCase(), actual: sha256 });
      }
      // Skipping the write (and saying so) only for chunks the caller's own uploads hold: for anyone else the
      // bytes are written as if new, so the answer never reveals what other users store.
      // (storeChunk's steps, in two round trips: the registry touched together with the ownership check, and the
      // registry row of a chunk written together with the manifest entry.)
      const { stored, ownedByUser } = await touchChunkForUser(deps.db, session.tenant_id, session.user_id, sha256);
      const deduplicated = stored && ownedByUser;
      if (deduplicated) deps.onDeduplicated?.();
      else await deps.storage.put(chunkKey(session.tenant_id, sha256), data, data.length);
      await recordChunks(deps.db, session.id, [{ index, sha256, size: data.length }], deduplicated ? undefined : registerChunkStatement(session.tenant_id, sha256, data.length));
      const receipt = { index, size: data.length, sha256, deduplicated };
      const keptForHashing =
        deps.followHash &&
        session.transfer === 'proxied' &&
        (await followUploadHash({ db: deps.db, storage: deps.storage, budget: deps.limits?.buffer, buffers: deps.limits?.chunkBuffers, onError: deps.followHash.onError }, session.id, { index, sha256, data }));
      // Stored and recorded: nothing refers to the bytes any more unless the hash follower kept them — then they stay
      // in memory, still counted in the buffer budget, until it has hashed them.
      if (keptForHashing) lease.handOver();
      else if (data === lease.buffer) lease.recycle();
      return receipt;
    }, { buffer: true }),
  );
}

/**
 * Records chunks in a session's manifest in ONE statement that holds a share lock on the session row and
 * only matches while the session is open and unexpired: a finalize that froze the session (open →
 * finalizing) either waits for this write or makes it fail, so what is hashed is what is committed.
 * Throws the session's state (409/410) when it is no longer writable.
 */
export async function recordChunks(
  db: Db,
  uploadId: string,
  chunks: { index: number; sha256: string; size: number }[],
  /** A statement run first in the same round trip (it runs whether or not the session is still open). */
  before?: RawBuilder<unknown>,
): Promise<void> {
  if (chunks.length === 0) return;
  const written = await sql<{ index: number }>`
    ${before ? sql`with before as (${before}) ` : sql.raw('')}insert into upload_chunks (upload_id, index, tenant_id, user_id, sha256, size)
    select s.id, c.index, s.tenant_id, s.user_id, c.sha256, c.size
    from upload_sessions s
      cross join unnest(${sql.val(chunks.map((c) => c.index))}::int[], ${sql.val(chunks.map((c) => c.sha256))}::text[], ${sql.val(chunks.map((c) => c.size))}::int[]) as c(index, sha256, size)
    where s.id = ${uploadId} and s.status = 'open' and s.expires_at > now()
    for share of s
    on conflict (upload_id, index) do update set sha256 = excluded.sha256, size = excluded.size, created_at = now()
    returning index`.execute(db);
  if (written.rows.length > 0) return;
  const session = await db.selectFrom('upload_sessions').selectAll().where('id', '=', uploadId).executeTakeFirst();
  if (!session) throw notFound('Upload session');
  assertWritable(session);
  throw conflict('Upload session is not open', 'UPLOAD_NOT_OPEN');
}

export async function receivedChunks(db: Db, session: UploadSession): Promise<number[]> {
  // A completed session's chunks moved into its version's manifest.
  if (session.status === 'completed') return Array.from({ length: session.chunk_count }, (_, i) => i);
  const uploadId = session.id;
  const rows = await db.selectFrom('upload_chunks').select('index').where('upload_id', '=', uploadId).orderBy('index').execute();
  return rows.map((r) => r.index);
}

/**
 * Which of these chunk hashes the caller may skip sending: only chunks the caller's own earlier uploads
 * hold, so knowing a hash never grants someone else's content.
 */
export async function checkChunks(db: Db, principal: Principal, hashes: string[]): Promise<string[]> {
  const userId = requireUser(principal);
  const wanted = [...new Set(hashes.map((h) => h.toLowerCase()))];
  if (wanted.length === 0) return [];
  // The caller's own chunks: in versions they created, or in their sessions still open.
  const rows = await sql<{ sha256: string }>`
    select vc.sha256 from version_chunks vc join versions v on v.id = vc.version_id
      where v.created_by = ${userId} and vc.tenant_id = ${principal.tenantId} and vc.sha256 = any(${wanted})
    union
    select uc.sha256 from upload_chunks uc
      where uc.user_id = ${userId} and uc.tenant_id = ${principal.tenantId} and uc.sha256 = any(${wanted})`.execute(db);
  return rows.rows.map((r) => r.sha256);
}

/**
 * `chunks/check`: which of `hashes` the caller holds, and attaches held chunks at the given indexes without
 * resending bytes — a few set-based statements whatever the list sizes (each bounded by `maxCheckEntries`).
 */
export async function checkAndAttach(
  deps: UploadDeps,
  principal: Principal,
  uploadId: string,
  hashes: string[],
  attach: { index: number; sha256: string }[],
): Promise<{ known: string[]; attached: number[] }> {
  const session = await getOwnSession(deps.db, principal, uploadId);
  assertWritable(session);
  const known = await checkChunks(deps.db, principal, hashes);
  // The last entry for an index wins, as sequential attaches would.
  const wanted = [...new Map(attach.map((a) => [a.index, { index: a.index, sha256: a.sha256.toLowerCase() }])).values()];
  const held = new Set(await checkChunks(deps.db, principal, wanted.map((a) => a.sha256)));
  const usable = wanted.filter((a) => held.has(a.sha256));
  if (usable.length === 0) return { known, attached: [] };
  const sizes = new Map(
    (await deps.db.selectFrom('chunks').select(['sha256', 'size']).where('tenant_id', '=', session.tenant_id).where('sha256', 'in', [...new Set(usable.map((a) => a.sha256))]).execute()).map((r) => [r.sha256, r.size]),
  );
  const chunks = usable.filter((a) => sizes.has(a.sha256)).map((a) => ({ ...a, size: sizes.get(a.sha256)! }));
  for (const chunk of chunks) {
    if (chunk.index < 0 || chunk.index >= session.chunk_count || chunk.size !== expectedChunkSize(session, chunk.index)) {
      throw badRequest(`Chunk ${chunk.index} must be ${chunk.index < session.chunk_count ? expectedChunkSize(session, chunk.index) : 0} bytes`, 'CHUNK_SIZE_MISMATCH', { index: chunk.index });
    }
  }
  if (chunks.length === 0) return { known, attached: [] };
  // Touched first, under the registry row lock the sweep takes: a chunk we rely on is kept.
  await deps.db.updateTable('chunks').set({ last_seen_at: sql`now()` }).where('tenant_id', '=', session.tenant_id).where('sha256', 'in', [...new Set(chunks.map((c) => c.sha256))]).execute();
  await recordChunks(deps.db, session.id, chunks);
  for (let i = 0; i < chunks.length; i++) deps.onDeduplicated?.();
  return { known, attached: chunks.map((c) => c.index).sort((a, b) => a - b) };
}

/**
 * Aborts a session: ONE conditional DELETE (only while not finalizing or completed) decides, and the
 * reservation it held is released in the same transaction — so abort, finalize and expiry release at most once.
 */
export async function abortUpload(db: Db, principal: Principal, uploadId: string): Promise<void> {
  const userId = requireUser(principal);
  await db.transaction().execute(async (trx) => {
    // Its chunk rows go with it; the chunk objects are left to the sweep (other uploads may share them).
    const deleted = await trx
      .deleteFrom('upload_sessions')
      .where('id', '=', uploadId)
      .where('tenant_id', '=', principal.tenantId)
      .where('user_id', '=', userId)
      .where('status', 'in', ['open', 'failed', 'expired'])
      .returning(['reserved_bytes', 'reserved_subjects'])
      .executeTakeFirst();
    if (!deleted) {
      const session = await getOwnSession(trx, principal, uploadId);
      if (session.status === 'completed') throw conflict('Upload session is already completed', 'UPLOAD_COMPLETED');
      throw conflict('Upload session is being finalized', 'UPLOAD_FINALIZING');
    }
    await releaseReservations(trx, [{ subjects: deleted.reserved_subjects, bytes: deleted.reserved_bytes }]);
  });
}

/** The caller's session with the chunk indexes received so far, and whether it has expired (GET /uploads/{id}). */
export async function describeOwnSession(db: Db, principal: Principal, uploadId: string): Promise<{ session: UploadSession; receivedChunks: number[]; expired: boolean }> {
  const session = await getOwnSession(db, principal, uploadId);
  return { session, receivedChunks: await receivedChunks(db, session), expired: isExpired(session) };
}

/**
 * Whether finalize can go ahead with the caller's session: an earlier commit is answered as it was; an
 * expired session is 410, a failed one 409; and the caller must still be allowed to write into the folder
 * (a share grant may have been removed since the session was opened).
 */
export async function sessionToFinalize(
  db: Db,
  principal: Principal,
  uploadId: string,
): Promise<{ committed: { fileId: string; versionId: string } } | { session: UploadSession }> {
  const session = await getOwnSession(db, principal, uploadId);
  if (session.status === 'completed') return { committed: { fileId: session.file_id!, versionId: session.version_id! } };
  if (isExpired(session)) throw gone('Upload session has expired', 'UPLOAD_EXPIRED');
  if (session.status === 'failed') throw conflict(`Upload session failed: ${session.error_detail ?? ''}`, 'UPLOAD_FAILED');
  const held = await openConflictOfUpload(db, session.id);
  if (held) throw versionConflict('This upload is held by an open sync conflict: resolve it (POST /sync/conflicts/{id}/resolve)', { base_version_id: held.base_version_id, current_version_id: held.server_version_id }, held);
  await accessNode(db, principal, session.parent_id, 'write', { kind: 'folder' });
  // The last chunks are usually still being hashed by the session's hash owner (this process or another): letting
  // it finish spares the worker hashing the whole file (bounded: while it makes progress, at most 10 s; past that,
  // finalize simply hashes the file).
  if (session.status === 'open') await sessionHashSettled(db, session.id);
  return { session };
}
