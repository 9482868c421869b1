// Upload sessions (spec §6): creation with early checks, chunk PUTs (idempotent per index, any order),
// status, abort, dedup check, streaming hash of the whole upload, and the direct streaming upload.
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { sql } from 'kysely';
import type { Db, UploadSession } from '../db/database';
import { AppError, badRequest, conflict, gone, notFound, payloadTooLarge } from '../errors';
import { newId } from '../ids';
import type { BlobStorage } from '../storage/blob-storage';
import { accessNode } from './access.service';
import { chunkKey, sha256Hex, storeChunk } from './chunk-store';
import { getTenant } from './identity.service';
import type { Principal } from './principal';
import { assertFits, chargeSubjects } from './quota.service';
import { assertValidName, findLiveSibling } from './tree.service';
import { commitVersion, manifestFingerprint, type CommitResult } from './versions.service';

export const defaultChunkSize = 8 * 1024 * 1024;
export const minChunkSize = 64 * 1024;
export const maxChunkSize = 64 * 1024 * 1024;
/** Chunk reads kept in flight while hashing an upload. */
const hashPrefetch = 4;

export interface UploadDeps {
  db: Db;
  storage: BlobStorage;
  onDeduplicated?: () => void;
  onBytesReceived?: (bytes: number) => void;
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

export async function createUploadSession(db: Db, principal: Principal, input: CreateSessionInput): Promise<UploadSession> {
  const userId = requireUser(principal);
  assertValidName(input.name);
  const { space } = await accessNode(db, principal, input.parentId, 'write', { kind: 'folder' });
  const tenant = await getTenant(db, principal.tenantId);
  if (input.size > tenant.settings.max_file_size_bytes) {
    throw payloadTooLarge(`File of ${input.size} bytes exceeds the tenant's ${tenant.settings.max_file_size_bytes}-byte limit`);
  }
  const sibling = await findLiveSibling(db, input.parentId, input.name);
  if (sibling?.kind === 'folder') throw conflict(`A folder named "${input.name}" already exists here`, 'NAME_CONFLICT');
  if (input.baseVersionId && sibling?.current_version_id !== input.baseVersionId) {
    throw conflict('base_version_id is not the current version of the file', 'VERSION_CONFLICT', {
      base_version_id: input.baseVersionId,
      current_version_id: sibling?.current_version_id ?? null,
    });
  }
  await assertFits(db, principal.tenantId, await chargeSubjects(db, principal.tenantId, userId, space.id), input.size);
  const chunkSize = input.chunkSize ?? defaultChunkSize;
  return db
    .insertInto('upload_sessions')
    .values({
      id: newId('upload'),
      tenant_id: principal.tenantId,
      user_id: userId,
      space_id: space.id,
      parent_id: input.parentId,
      name: input.name,
      size: input.size,
      chunk_size: chunkSize,
      chunk_count: Math.ceil(input.size / chunkSize),
      checksum_sha256: input.checksumSha256?.toLowerCase() ?? null,
      base_version_id: input.baseVersionId ?? null,
      expires_at: new Date(Date.now() + tenant.settings.upload_session_ttl_hours * 3600 * 1000),
    })
    .returningAll()
    .executeTakeFirstOrThrow();
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
 * Iterates a request body without destroying it when we stop early: the socket must survive so the 413
 * response reaches the client (the error renderer then closes the connection).
 */
function requestChunks(body: Readable): AsyncIterable<unknown> {
  return body.iterator({ destroyOnReturn: false });
}

/**
 * Reads a chunk body of exactly `expected` bytes into one buffer (a single copy); more → 413, before
 * buffering the excess; fewer → the caller's size check.
 */
export async function readBounded(body: Readable, expected: number): Promise<Buffer> {
  const data = Buffer.allocUnsafe(expected);
  let total = 0;
  for await (const part of requestChunks(body)) {
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
  const data = await readBounded(body, expected);
  deps.onBytesReceived?.(data.length);
  if (data.length !== expected) throw badRequest(`Chunk ${index} must be ${expected} bytes, got ${data.length}`, 'CHUNK_SIZE_MISMATCH');
  const sha256 = sha256Hex(data);
  if (declared.sha256 && declared.sha256.toLowerCase() !== sha256) {
    throw badRequest(`Chunk ${index} does not match X-Chunk-Sha256`, 'CHECKSUM_MISMATCH', { expected: declared.sha256.toLowerCase(), actual: sha256 });
  }
  const deduplicated = await storeChunk(deps.db, deps.storage, session.tenant_id, sha256, data);
  if (deduplicated) deps.onDeduplicated?.();
  await deps.db
    .insertInto('upload_chunks')
    .values({ upload_id: session.id, index, tenant_id: session.tenant_id, user_id: session.user_id, sha256, size: data.length })
    .onConflict((oc) => oc.columns(['upload_id', 'index']).doUpdateSet({ sha256, size: data.length, created_at: sql`now()` }))
    .execute();
  return { index, size: data.length, sha256, deduplicated };
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

/** Registers a chunk the caller already holds (from `chunks/check`) at an index without resending it. */
export async function reuseChunk(deps: UploadDeps, principal: Principal, uploadId: string, index: number, sha256: string): Promise<ChunkReceipt | null> {
  const session = await getOwnSession(deps.db, principal, uploadId);
  assertWritable(session);
  const [held] = await checkChunks(deps.db, principal, [sha256]);
  if (!held) return null;
  const chunk = await deps.db.selectFrom('chunks').select('size').where('tenant_id', '=', session.tenant_id).where('sha256', '=', held).executeTakeFirstOrThrow();
  if (index < 0 || index >= session.chunk_count || chunk.size !== expectedChunkSize(session, index)) {
    throw badRequest(`Chunk ${index} must be ${expectedChunkSize(session, index)} bytes`, 'CHUNK_SIZE_MISMATCH');
  }
  await deps.db.updateTable('chunks').set({ last_seen_at: sql`now()` }).where('tenant_id', '=', session.tenant_id).where('sha256', '=', held).execute();
  await deps.db
    .insertInto('upload_chunks')
    .values({ upload_id: session.id, index, tenant_id: session.tenant_id, user_id: session.user_id, sha256: held, size: chunk.size })
    .onConflict((oc) => oc.columns(['upload_id', 'index']).doUpdateSet({ sha256: held, size: chunk.size }))
    .execute();
  deps.onDeduplicated?.();
  return { index, size: chunk.size, sha256: held, deduplicated: true };
}

export async function abortUpload(db: Db, principal: Principal, uploadId: string): Promise<void> {
  const session = await getOwnSession(db, principal, uploadId);
  if (session.status === 'completed') throw conflict('Upload session is already completed', 'UPLOAD_COMPLETED');
  if (session.status === 'finalizing') throw conflict('Upload session is being finalized', 'UPLOAD_FINALIZING');
  // Its chunk rows go with it; the chunk objects are left to the sweep (other uploads may share them).
  await db.deleteFrom('upload_sessions').where('id', '=', uploadId).execute();
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
  const session = await createUploadSession(deps.db, principal, {
    parentId: input.parentId,
    name: input.name,
    size: input.contentLength ?? 0,
    chunkSize: defaultChunkSize,
    baseVersionId: input.baseVersionId,
  });
  try {
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
    for await (const part of requestChunks(input.body)) {
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
  } catch (error) {
    await deps.db.deleteFrom('upload_sessions').where('id', '=', session.id).where('status', '!=', 'completed').execute();
    throw error;
  }
}
