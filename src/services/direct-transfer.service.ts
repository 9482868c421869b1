// Direct-to-storage chunk uploads (spec §6 "transfer": "direct"; issue #13 item 2). The client asks for a
// presigned PUT URL per chunk, sends the bytes straight to the store, then says the chunk is complete; the API
// never handles those bytes. The store enforces the declared SHA-256 (x-amz-checksum-sha256 is signed into the
// URL) and records which session and index wrote the object (signed metadata), so `complete` knows the client
// really sent the bytes — finding an object someone else stored under that hash proves nothing (it would grant
// their content to anyone who knows its hash).
import { sql } from 'kysely';
import type { Db, UploadSession } from '../db/database';
import { badRequest, conflict } from '../errors';
import { S3Storage } from '../storage/s3-storage';
import { accessNode } from './access.service';
import { chunkKey } from './chunk-store';
import type { Principal } from './principal';
import { assertWritable, checkAndAttach, expectedChunkSize, getOwnSession, recordChunks, type ChunkReceipt, type UploadDeps } from './upload-sessions.service';

export interface ChunkUploadTicket {
  index: number;
  sha256: string;
  size: number;
  /** True when the caller's own uploads hold this chunk: it is attached already, nothing to send. */
  deduplicated: boolean;
  /** Where to PUT the bytes (null when deduplicated), with exactly `headers`; valid until `expires_at`. */
  url: string | null;
  method: 'PUT';
  headers: Record<string, string>;
  expires_at: Date | null;
}

/** The tag a chunk's object must carry to count as written by this session at this index. */
const uploadTag = (session: UploadSession, index: number) => `${session.id}/${index}`;

/** The caller's direct session, writable, with the chunk index in range; the caller may still write there. */
async function directSession(deps: UploadDeps, principal: Principal, uploadId: string, index: number): Promise<{ session: UploadSession; storage: S3Storage }> {
  const session = await getOwnSession(deps.db, principal, uploadId);
  assertWritable(session);
  if (session.transfer !== 'direct') throw conflict('This session sends its chunks through the API (create it with "transfer": "direct")', 'UPLOAD_NOT_DIRECT');
  if (!(deps.storage instanceof S3Storage)) throw badRequest('Direct transfer needs the S3 storage driver', 'DIRECT_TRANSFER_UNSUPPORTED');
  await accessNode(deps.db, principal, session.parent_id, 'write', { kind: 'folder' });
  if (!Number.isInteger(index) || index < 0 || index >= session.chunk_count) {
    throw badRequest(`Chunk index must be between 0 and ${session.chunk_count - 1}`, 'CHUNK_INDEX_OUT_OF_RANGE');
  }
  return { session, storage: deps.storage };
}

/**
 * A presigned PUT for one chunk, or `deduplicated` when the caller's own uploads already hold it (attached at
 * once). The chunk's registry row is created or touched first: it keeps an object already there from the sweep
 * while the client uploads, and makes an object whose upload is never completed an ordinary unreferenced chunk
 * that the sweep removes after its grace period.
 */
export async function chunkUploadUrl(deps: UploadDeps & { directUrlTtlSeconds: number }, principal: Principal, uploadId: string, index: number, declared: { sha256: string; size: number }): Promise<ChunkUploadTicket> {
  const { session, storage } = await directSession(deps, principal, uploadId, index);
  const sha256 = declared.sha256.toLowerCase();
  const size = expectedChunkSize(session, index);
  if (declared.size !== size) throw badRequest(`Chunk ${index} must be ${size} bytes, not ${declared.size}`, 'CHUNK_SIZE_MISMATCH');
  const { attached } = await checkAndAttach(deps, principal, uploadId, [], [{ index, sha256 }]);
  if (attached.includes(index)) {
    deps.onDeduplicated?.();
    return { index, sha256, size, deduplicated: true, url: null, method: 'PUT', headers: {}, expires_at: null };
  }
  await sql`
    insert into chunks (tenant_id, sha256, size) values (${session.tenant_id}, ${sha256}, ${size})
    on conflict (tenant_id, sha256) do update set last_seen_at = now()`.execute(deps.db);
  const put = await storage.presignPut(chunkKey(session.tenant_id, sha256), sha256, size, uploadTag(session, index), deps.directUrlTtlSeconds);
  return { index, sha256, size, deduplicated: false, url: put.url, method: 'PUT', headers: put.headers, expires_at: new Date(Date.now() + deps.directUrlTtlSeconds * 1000) };
}

/**
 * Records a chunk the client PUT to its presigned URL, once the store shows it: this session's tag, the
 * declared SHA-256 (verified by the store on write) and the chunk's size. Idempotent per index.
 */
export async function completeDirectChunk(deps: UploadDeps, principal: Principal, uploadId: string, index: number, declaredSha256: string): Promise<ChunkReceipt> {
  const { session, storage } = await directSession(deps, principal, uploadId, index);
  const sha256 = declaredSha256.toLowerCase();
  const size = expectedChunkSize(session, index);
  // Touched under the row's lock before looking: a sweep either removed the object already (then it is not
  // found below) or sees it was just used and keeps it.
  await sql`update chunks set last_seen_at = now() where tenant_id = ${session.tenant_id} and sha256 = ${sha256}`.execute(deps.db);
  const object = await storage.headChecked(chunkKey(session.tenant_id, sha256));
  if (!object || object.uploadTag !== uploadTag(session, index)) {
    throw conflict(`Chunk ${index} was not uploaded to its URL (or another upload wrote it since): PUT it again`, 'CHUNK_NOT_UPLOADED');
  }
  if (object.sha256 !== sha256 || object.size !== size) {
    throw badRequest(`Chunk ${index} in storage does not match: ${object.size} bytes with SHA-256 ${object.sha256 ?? 'unknown'}`, 'CHECKSUM_MISMATCH', { expected: sha256, actual: object.sha256 });
  }
  // The verified size replaces whatever a ticket's declaration put in the registry.
  await sql`
    insert into chunks (tenant_id, sha256, size) values (${session.tenant_id}, ${sha256}, ${object.size})
    on conflict (tenant_id, sha256) do update set last_seen_at = now(), size = excluded.size`.execute(deps.db);
  await recordChunks(deps.db, session.id, [{ index, sha256, size }]);
  return { index, size, sha256, deduplicated: false };
}
