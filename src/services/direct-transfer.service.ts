// Direct-to-storage chunk uploads (spec §6 "transfer": "direct"; issue #13 item 2). The client asks for a
// presigned PUT URL per chunk, sends the bytes straight to the store, then says the chunk is complete; the API
// never handles those bytes. The store enforces the declared SHA-256 (x-amz-checksum-sha256 is signed into the
// URL) and records which session and index wrote the object (signed metadata), so `complete` knows the client
// really sent the bytes — finding an object someone else stored under that hash proves nothing (it would grant
// their content to anyone who knows its hash).
import { sql } from 'kysely';
import type { UploadSession } from '../db/database';
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

/** Most chunks one batch request may name (bounded work per request). */
export const maxChunksPerBatch = 100;

/** Chunk HEADs in flight while a batch is completed. */
const completeConcurrency = 16;

/** One entry per chunk index, the last one given winning (as sequential requests would). */
const lastPerIndex = <T extends { index: number }>(entries: T[]): T[] => [...new Map(entries.map((e) => [e.index, e])).values()];

/** The caller's direct session, writable, with every chunk index in range; the caller may still write there. */
async function directSession(deps: UploadDeps, principal: Principal, uploadId: string, indexes: number[]): Promise<{ session: UploadSession; storage: S3Storage }> {
  const session = await getOwnSession(deps.db, principal, uploadId);
  assertWritable(session);
  if (session.transfer !== 'direct') throw conflict('This session sends its chunks through the API (create it with "transfer": "direct")', 'UPLOAD_NOT_DIRECT');
  if (!(deps.storage instanceof S3Storage)) throw badRequest('Direct transfer needs the S3 storage driver', 'DIRECT_TRANSFER_UNSUPPORTED');
  await accessNode(deps.db, principal, session.parent_id, 'write', { kind: 'folder' });
  for (const index of indexes) {
    if (!Number.isInteger(index) || index < 0 || index >= session.chunk_count) {
      throw badRequest(`Chunk index must be between 0 and ${session.chunk_count - 1}`, 'CHUNK_INDEX_OUT_OF_RANGE', { index });
    }
  }
  return { session, storage: deps.storage };
}

/**
 * Presigned PUTs for chunks, or `deduplicated` for those the caller's own uploads already hold (attached at
 * once). Each chunk's registry row is created or touched first: it keeps an object already there from the sweep
 * while the client uploads, and makes an object whose upload is never completed an ordinary unreferenced chunk
 * that the sweep removes after its grace period.
 */
export async function chunkUploadUrls(
  deps: UploadDeps & { directUrlTtlSeconds: number },
  principal: Principal,
  uploadId: string,
  declared: { index: number; sha256: string; size: number }[],
): Promise<ChunkUploadTicket[]> {
  const { session, storage } = await directSession(deps, principal, uploadId, declared.map((d) => d.index));
  const wanted = lastPerIndex(declared).map((d) => ({ index: d.index, sha256: d.sha256.toLowerCase(), size: expectedChunkSize(session, d.index), declaredSize: d.size }));
  const wrongSize = wanted.find((w) => w.declaredSize !== w.size);
  if (wrongSize) throw badRequest(`Chunk ${wrongSize.index} must be ${wrongSize.size} bytes, not ${wrongSize.declaredSize}`, 'CHUNK_SIZE_MISMATCH', { index: wrongSize.index });
  const { attached } = await checkAndAttach(deps, principal, uploadId, [], wanted.map(({ index, sha256 }) => ({ index, sha256 })));
  const deduplicated = new Set(attached);
  for (let i = 0; i < deduplicated.size; i++) deps.onDeduplicated?.();
  const toSend = wanted.filter((w) => !deduplicated.has(w.index));
  if (toSend.length > 0) {
    await sql`
      insert into chunks (tenant_id, sha256, size)
      select ${session.tenant_id}, c.sha256, max(c.size)
      from unnest(${sql.val(toSend.map((w) => w.sha256))}::text[], ${sql.val(toSend.map((w) => w.size))}::bigint[]) as c(sha256, size)
      group by c.sha256
      on conflict (tenant_id, sha256) do update set last_seen_at = now()`.execute(deps.db);
  }
  const expiresAt = new Date(Date.now() + deps.directUrlTtlSeconds * 1000);
  return Promise.all(
    wanted.map(async ({ index, sha256, size }): Promise<ChunkUploadTicket> => {
      if (deduplicated.has(index)) return { index, sha256, size, deduplicated: true, url: null, method: 'PUT', headers: {}, expires_at: null };
      const put = await storage.presignPut(chunkKey(session.tenant_id, sha256), sha256, size, uploadTag(session, index), deps.directUrlTtlSeconds);
      return { index, sha256, size, deduplicated: false, url: put.url, method: 'PUT', headers: put.headers, expires_at: expiresAt };
    }),
  );
}

/** One chunk's presigned PUT (see chunkUploadUrls). */
export async function chunkUploadUrl(deps: UploadDeps & { directUrlTtlSeconds: number }, principal: Principal, uploadId: string, index: number, declared: { sha256: string; size: number }): Promise<ChunkUploadTicket> {
  return (await chunkUploadUrls(deps, principal, uploadId, [{ index, ...declared }]))[0]!;
}

/**
 * Records chunks the client PUT to their presigned URLs, once the store shows each: this session's tag, the
 * declared SHA-256 (verified by the store on write) and the chunk's size. The verified ones are recorded even when
 * others are not (409 `CHUNK_NOT_UPLOADED` naming those); idempotent per index.
 */
export async function completeDirectChunks(deps: UploadDeps, principal: Principal, uploadId: string, declared: { index: number; sha256: string }[]): Promise<ChunkReceipt[]> {
  const { session, storage } = await directSession(deps, principal, uploadId, declared.map((d) => d.index));
  const wanted = lastPerIndex(declared).map((d) => ({ index: d.index, sha256: d.sha256.toLowerCase(), size: expectedChunkSize(session, d.index) }));
  // Touched under the rows' locks before looking: a sweep either removed the object already (then it is not
  // found below) or sees it was just used and keeps it.
  await sql`update chunks set last_seen_at = now() where tenant_id = ${session.tenant_id} and sha256 = any(${sql.val([...new Set(wanted.map((w) => w.sha256))])}::text[])`.execute(deps.db);
  const verified: typeof wanted = [];
  const notUploaded: number[] = [];
  for (let i = 0; i < wanted.length; i += completeConcurrency) {
    await Promise.all(
      wanted.slice(i, i + completeConcurrency).map(async (chunk) => {
        const object = await storage.headChecked(chunkKey(session.tenant_id, chunk.sha256));
        if (!object || object.uploadTag !== uploadTag(session, chunk.index)) notUploaded.push(chunk.index);
        else if (object.sha256 !== chunk.sha256 || object.size !== chunk.size) {
          throw badRequest(`Chunk ${chunk.index} in storage does not match: ${object.size} bytes with SHA-256 ${object.sha256 ?? 'unknown'}`, 'CHECKSUM_MISMATCH', { index: chunk.index, expected: chunk.sha256, actual: object.sha256 });
        } else verified.push(chunk);
      }),
    );
  }
  if (verified.length > 0) {
    // The verified size replaces whatever a ticket's declaration put in the registry.
    await sql`
      insert into chunks (tenant_id, sha256, size)
      select ${session.tenant_id}, c.sha256, max(c.size)
      from unnest(${sql.val(verified.map((v) => v.sha256))}::text[], ${sql.val(verified.map((v) => v.size))}::bigint[]) as c(sha256, size)
      group by c.sha256
      on conflict (tenant_id, sha256) do update set last_seen_at = now(), size = excluded.size`.execute(deps.db);
    await recordChunks(deps.db, session.id, verified);
  }
  if (notUploaded.length > 0) {
    notUploaded.sort((a, b) => a - b);
    throw conflict(`Chunks ${notUploaded.join(', ')} were not uploaded to their URLs (or another upload wrote them since): PUT them again`, 'CHUNK_NOT_UPLOADED', { indexes: notUploaded });
  }
  return wanted.map(({ index, sha256, size }) => ({ index, size, sha256, deduplicated: false }));
}

/** One chunk's completion (see completeDirectChunks). */
export async function completeDirectChunk(deps: UploadDeps, principal: Principal, uploadId: string, index: number, sha256: string): Promise<ChunkReceipt> {
  return (await completeDirectChunks(deps, principal, uploadId, [{ index, sha256 }]))[0]!;
}
