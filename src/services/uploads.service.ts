// Upload sessions (spec §6): creation with early checks, chunk PUTs (idempotent per index, any order),
// status, abort, dedup check, streaming hash of the whole upload, and the direct streaming upload.
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { sql, type Transaction } from 'kysely';
import type { Database, Db, UploadSession } from '../db/database';
import { AppError, badRequest, conflict, gone, notFound, payloadTooLarge } from '../errors';
import { newId } from '../ids';
import type { BlobStorage } from '../storage/blob-storage';
import { accessNode } from './access.service';
import { chunkKey, sha256Hex, storeChunk } from './chunk-store';
import { getTenant } from './identity.service';
import type { Principal } from './principal';
import { chargeSubjects } from './quota.service';
import { releaseReservations, reserve } from './quota-reservations.service';
import { bodyParts, withBufferBudget, withChunkSlot, type UploadLimits } from './upload-limits';
import { findLiveSibling, holdLiveFolder, validName } from './tree.service';
import { finalizationGraceHours } from '../temporal/activity-options';
import { commitVersion, manifestFingerprint, type CommitResult } from './versions.service';

export const defaultChunkSize = 8 * 1024 * 1024;
export const minChunkSize = 64 * 1024;
export const maxChunkSize = 64 * 1024 * 1024;
/** Chunk reads kept in flight while hashing an upload. */
const hashPrefetch = 4;
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
}

function requireUser(principal: Principal): string {
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
  options: { maxOpenSessionsPerUser?: number } = {},
): Promise<UploadSession> {
  const userId = requireUser(principal);
  const name = validName(input.name);
  const { space } = await accessNode(db, principal, input.parentId, 'write', { kind: 'folder' });
  const tenant = await getTenant(db, principal.tenantId);
  if (input.size > tenant.settings.max_file_size_bytes) {
    throw payloadTooLarge(`File of ${input.size} bytes exceeds the tenant's ${tenant.settings.max_file_size_bytes}-byte limit`);
  }
  const sibling = await findLiveSibling(db, input.parentId, name);
  if (sibling?.kind === 'folder') throw conflict(`A folder named "${name}" already exists here`, 'NAME_CONFLICT');
  if (input.baseVersionId && sibling?.current_version_id !== input.baseVersionId) {
    throw conflict('base_version_id is not the current version of the file', 'VERSION_CONFLICT', {
      base_version_id: input.baseVersionId,
      current_version_id: sibling?.current_version_id ?? null,
    });
  }
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

/**
 * Reads a chunk body of exactly `expected` bytes into one buffer (a single copy); more → 413, before
 * buffering the excess; fewer → the caller's size check; a body stalling for `idleMs` → 408.
 */
export async function readBounded(body: Readable, expected: number, idleMs?: number): Promise<Buffer> {
  const data = Buffer.allocUnsafe(expected);
  let total = 0;
  for await (const part of bodyParts(body, idleMs)) {
    const piece = part as Buffer;
    if (total + piece.length > expected) {
      throw payloadTooLarge(`Chunk body exceeds the ${expected} bytes this chunk must have`);
    }
    piece.copy(data, total);
    total += piece.length;
  }
  return total === expected ? data : data.subarray(0, total);
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
  body: Readable,
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
    withBufferBudget(deps.limits, expected, async () => {
      const data = await readBounded(body, expected, deps.limits?.bodyIdleTimeoutMs);
      deps.onBytesReceived?.(data.length);
      if (data.length !== expected) throw badRequest(`Chunk ${index} must be ${expected} bytes, got ${data.length}`, 'CHUNK_SIZE_MISMATCH');
      const sha256 = sha256Hex(data);
      if (declared.sha256 && declared.sha256.toLowerCase() !== sha256) {
        throw badRequest(`Chunk ${index} does not match X-Chunk-Sha256`, 'CHECKSUM_MISMATCH', { expected: declared.sha256.toLowerCase(), actual: sha256 });
      }
      // Skipping the write (and saying so) only for chunks the caller's own uploads hold: for anyone else the
      // bytes are written as if new, so the answer never reveals what other users store.
      const ownsChunk = (await checkChunks(deps.db, principal, [sha256])).length > 0;
      const deduplicated = (await storeChunk(deps.db, deps.storage, session.tenant_id, sha256, data, { skipWhenStored: ownsChunk })) && ownsChunk;
      if (deduplicated) deps.onDeduplicated?.();
      await recordChunks(deps.db, session.id, [{ index, sha256, size: data.length }]);
      return { index, size: data.length, sha256, deduplicated };
    }),
  );
}

/**
 * Records chunks in a session's manifest in ONE statement that holds a share lock on the session row and
 * only matches while the session is open and unexpired: a finalize that froze the session (open →
 * finalizing) either waits for this write or makes it fail, so what is hashed is what is committed.
 * Throws the session's state (409/410) when it is no longer writable.
 */
async function recordChunks(db: Db, uploadId: string, chunks: { index: number; sha256: string; size: number }[]): Promise<void> {
  if (chunks.length === 0) return;
  const written = await sql<{ index: number }>`
    insert into upload_chunks (upload_id, index, tenant_id, user_id, sha256, size)
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

/**
 * Marks sessions past expires_at as expired (all of them, or one user's) and releases their reservations in
 * the same transaction. The status change and the zeroing of reserved_bytes are one statement over rows
 * locked for it, so each reservation is released exactly once; rows locked by a concurrent abort or commit
 * are skipped (that one decides).
 */
export async function expireOverdueSessions(trx: Transaction<Database>, userId?: string): Promise<string[]> {
  const expired = await sql<{ id: string; reserved_bytes: number; reserved_subjects: UploadSession['reserved_subjects'] }>`
    with due as (
      select id, reserved_bytes, reserved_subjects from upload_sessions
      where (status in ('open', 'failed') and expires_at < now()
          or status = 'finalizing' and expires_at < now() - make_interval(hours => ${finalizationGraceHours}))
        ${userId ? sql`and user_id = ${userId}` : sql``}
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

/** Deletes a direct upload's own session after a failure, releasing what it reserved. */
async function discardSession(db: Db, uploadId: string): Promise<void> {
  await db.transaction().execute(async (trx) => {
    const deleted = await trx.deleteFrom('upload_sessions').where('id', '=', uploadId).where('status', '!=', 'completed').returning(['reserved_bytes', 'reserved_subjects']).executeTakeFirst();
    if (deleted) await releaseReservations(trx, [{ subjects: deleted.reserved_subjects, bytes: deleted.reserved_bytes }]);
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

/**
 * Streams the session's chunks in order through SHA-256, reading the manifest a page at a time so memory
 * stays flat whatever the file size. `onProgress` gets the number of chunks hashed so far.
 */
export async function hashUpload(deps: Pick<UploadDeps, 'db' | 'storage'>, uploadId: string, onProgress?: (chunksDone: number, bytesDone: number) => void): Promise<string> {
  const hash = createHash('sha256');
  let nextIndex = 0;
  let bytes = 0;
  for (;;) {
    const page = await deps.db.selectFrom('upload_chunks').select(['index', 'tenant_id', 'sha256']).where('upload_id', '=', uploadId).where('index', '>=', nextIndex).orderBy('index').limit(500).execute();
    if (page.length === 0) break;
    // Keep a few chunk reads in flight while hashing in order: storage latency and throughput overlap with
    // hashing (bounded memory: at most `prefetch` chunks buffered).
    const fetchChunk = (row: (typeof page)[number]) => {
      const read = (async () => {
        const parts: Buffer[] = [];
        for await (const part of await deps.storage.get(chunkKey(row.tenant_id, row.sha256))) parts.push(part as Buffer);
        return parts;
      })();
      read.catch(() => undefined); // awaited in order below; a read failing early must not be "unhandled"
      return read;
    };
    const inFlight = page.slice(0, hashPrefetch).map(fetchChunk);
    for (let i = 0; i < page.length; i++) {
      const parts = await inFlight[i]!;
      if (i + hashPrefetch < page.length) inFlight.push(fetchChunk(page[i + hashPrefetch]!));
      for (const part of parts) {
        hash.update(part);
        bytes += part.length;
      }
      inFlight[i] = Promise.resolve([]);
      onProgress?.(page[i]!.index + 1, bytes);
    }
    nextIndex = page[page.length - 1]!.index + 1;
  }
  return hash.digest('hex');
}

/** Direct upload: streams the body into chunks while hashing the whole, then commits via the one commit path. */
export async function directUpload(
  deps: UploadDeps,
  principal: Principal,
  input: { parentId: string; name: string; contentLength?: number; checksumSha256?: string; baseVersionId?: string; body: Readable },
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
    { maxOpenSessionsPerUser: deps.limits?.maxOpenSessionsPerUser },
  );
  try {
    // At most one chunk of this body is buffered at a time: that much is taken from the process budget.
    return await withBufferBudget(deps.limits, Math.min(input.contentLength ?? defaultChunkSize, defaultChunkSize), () => streamDirectUpload(deps, session, userId, limit, input));
  } catch (error) {
    await discardSession(deps.db, session.id);
    throw error;
  }
}

async function streamDirectUpload(
  deps: UploadDeps,
  session: UploadSession,
  userId: string,
  limit: number,
  input: { contentLength?: number; checksumSha256?: string; baseVersionId?: string; body: Readable },
): Promise<CommitResult> {
  {
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
    for await (const part of bodyParts(input.body, deps.limits?.bodyIdleTimeoutMs)) {
      let piece = part as Buffer;
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
    await deps.db.updateTable('upload_sessions').set({ size: total, chunk_count: index, status: 'finalizing' }).where('id', '=', session.id).execute();
    return await commitVersion(deps.db, {
      tenantId: session.tenant_id,
      userId,
      parentId: session.parent_id,
      name: session.name,
      size: total,
      checksumSha256: checksum,
      baseVersionId: input.baseVersionId,
      source: { uploadId: session.id },
    });
  }
}
