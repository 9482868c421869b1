// The one commit path: every new version (upload, direct upload, copy, version restore, later connector
// imports) is created here, in one transaction with its quota charges and change-log entry; and versions are
// looked up by id here (loadVersion), for every route that serves or reuses one.
import { sql, type Transaction } from 'kysely';
import type { Database, Db, Node, QuotaCharge, SearchPriority, Version } from '../db/database';
import { AppError, conflict, gone, notFound } from '../errors';
import { newId } from '../ids';
import { accessNode, assertNotLockedByOther } from './access.service';
import { appendChange } from './changelog.service';
import type { Principal } from './principal';
import { chargeSubjects } from './quota.service';
import { chargeReserved } from './quota-reservations.service';
import { queueForIndexing } from './search-queue.service';
import { lockTree } from './tree-lock';
import { findLiveSibling, lockLiveFolder } from './tree.service';

export interface CommitInput {
  tenantId: string;
  userId: string;
  parentId: string;
  name: string;
  size: number;
  checksumSha256: string;
  /** When given, the file's current version must be this one (409 otherwise). */
  baseVersionId?: string | null;
  /**
   * Where the chunk manifest comes from: an upload session's chunks, or an existing version's. With
   * `manifestSha256`, the session's manifest must still be the one that was hashed (409 otherwise).
   */
  source: { uploadId: string; manifestSha256?: string | null } | { versionId: string } | { chunks: StoredChunk[] };
  /** Commit into this existing file (version restore) instead of resolving by name. */
  fileId?: string;
  /** A live sibling of that name is a 409 instead of getting a new version (copy). */
  createOnly?: boolean;
  /** The vectorization queue this version goes to: `high` (default) for users' commits, `low` for connector imports. */
  indexPriority?: SearchPriority;
  /** Runs in the commit's transaction after the version exists: a caller's own record commits with it or not at all. */
  alongside?: (trx: Transaction<Database>, committed: { file: Node; version: Version }) => Promise<void>;
}

/** A chunk already in the chunk store (written moments ago: the sweep spares chunks touched within its grace period). */
export interface StoredChunk {
  sha256: string;
  size: number;
}

export interface CommitResult {
  file: Node;
  version: Version;
  /** True when the upload had been committed before (a retried activity or repeated finalize). */
  alreadyCommitted: boolean;
}

export async function commitVersion(db: Db, input: CommitInput): Promise<CommitResult> {
  // Names are stored in NFC (the sibling lookup compares by the database's name key either way).
  const name = input.name.normalize('NFC');
  return db.transaction().execute(async (trx) => {
    // First, before any row lock (see tree-lock.ts): a trash of the target folder runs wholly before this
    // commit (which then gets 410 IN_TRASH) or after it (and takes the new file along).
    await lockTree(trx, input.tenantId, 'shared');
    // What the upload session holds against the quotas; converted into the charge below.
    let reservation: { subjects: QuotaCharge[]; bytes: number } = { subjects: [], bytes: 0 };
    if ('uploadId' in input.source) {
      // The session row lock makes a repeated commit of the same upload wait, then find it done.
      const session = await trx.selectFrom('upload_sessions').selectAll().where('id', '=', input.source.uploadId).forUpdate().executeTakeFirstOrThrow();
      if (session.status === 'completed' && session.version_id) {
        const version = await trx.selectFrom('versions').selectAll().where('id', '=', session.version_id).executeTakeFirstOrThrow();
        const file = await trx.selectFrom('nodes').selectAll().where('id', '=', version.file_id).executeTakeFirstOrThrow();
        return { file, version, alreadyCommitted: true };
      }
      // Only a session frozen for finalization commits: chunk writes are refused from then on.
      if (session.status !== 'finalizing') throw conflict(`Upload session is ${session.status}, not finalizing`, 'UPLOAD_NOT_FINALIZING');
      if (input.source.manifestSha256 !== undefined) {
        const current = await trx.selectNoFrom(manifestFingerprint('upload_chunks', 'upload_id', session.id).as('fingerprint')).executeTakeFirstOrThrow();
        if (current.fingerprint !== input.source.manifestSha256) {
          throw conflict('The upload\'s chunks changed after they were hashed; finalize again', 'UPLOAD_CHANGED');
        }
      }
      reservation = { subjects: session.reserved_subjects, bytes: session.reserved_bytes };
    }

    const parent = await lockLiveFolder(trx, input.parentId);
    let file: Node | undefined;
    if (input.fileId) {
      file = await trx.selectFrom('nodes').selectAll().where('id', '=', input.fileId).forUpdate().executeTakeFirst();
      if (!file) throw notFound('File');
      if (file.deleted_at) throw gone('File is in the trash', 'IN_TRASH');
    } else {
      const sibling = await findLiveSibling(trx, parent.id, name);
      if (sibling?.kind === 'folder' || (sibling && input.createOnly)) throw conflict(`An item named "${name}" already exists here`, 'NAME_CONFLICT');
      if (sibling) file = await trx.selectFrom('nodes').selectAll().where('id', '=', sibling.id).forUpdate().executeTakeFirstOrThrow();
    }
    if (input.baseVersionId && file?.current_version_id !== input.baseVersionId) {
      throw conflict('The file changed since base_version_id: it is not the current version', 'VERSION_CONFLICT', {
        base_version_id: input.baseVersionId,
        current_version_id: file?.current_version_id ?? null,
      });
    }
    if (file?.lock_user_id && file.lock_expires_at && file.lock_expires_at.getTime() > Date.now() && file.lock_user_id !== input.userId) {
      throw new AppError(423, 'LOCKED', 'The file is locked by another user', { locked_by: file.lock_user_id, locked_at: file.locked_at?.toISOString() ?? null });
    }

    const isNewFile = !file;
    file ??= await trx
      .insertInto('nodes')
      .values({ id: newId('file'), tenant_id: input.tenantId, space_id: parent.space_id, parent_id: parent.id, kind: 'file', name, created_by: input.userId })
      .returningAll()
      .executeTakeFirstOrThrow();

    const subjects = await chargeSubjects(trx, input.tenantId, input.userId, file.space_id);
    await chargeReserved(trx, input.tenantId, reservation, subjects, input.size);

    const previous = await trx.selectFrom('versions').select(sql<number>`coalesce(max(number), 0)`.as('n')).where('file_id', '=', file.id).executeTakeFirstOrThrow();
    const versionId = newId('version');
    let version = await trx
      .insertInto('versions')
      .values({
        id: versionId,
        tenant_id: input.tenantId,
        file_id: file.id,
        number: Number(previous.n) + 1,
        size: input.size,
        checksum_sha256: input.checksumSha256,
        chunk_count: 0,
        created_by: input.userId,
        upload_id: 'uploadId' in input.source ? input.source.uploadId : null,
        charged: JSON.stringify(subjects),
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    const chunkCount = await copyManifest(trx, versionId, input);
    version = await trx
      .updateTable('versions')
      .set({ chunk_count: chunkCount, manifest_sha256: manifestFingerprint('version_chunks', 'version_id', versionId) })
      .where('id', '=', versionId)
      .returningAll()
      .executeTakeFirstOrThrow();
    file = await trx
      .updateTable('nodes')
      .set({ current_version_id: versionId, size: input.size, checksum_sha256: input.checksumSha256, updated_at: sql`now()` })
      .where('id', '=', file.id)
      .returningAll()
      .executeTakeFirstOrThrow();
    await appendChange(trx, isNewFile ? 'created' : 'updated', file, { versionId, actorId: input.userId });
    await queueForIndexing(trx, version, input.indexPriority ?? 'high');
    await input.alongside?.(trx, { file, version });

    if ('uploadId' in input.source) {
      // The version's manifest references the chunks from now on; the session's rows are no longer needed.
      await trx.deleteFrom('upload_chunks').where('upload_id', '=', input.source.uploadId).execute();
      await trx
        .updateTable('upload_sessions')
        .set({ status: 'completed', file_id: file.id, version_id: versionId, reserved_bytes: 0, reserved_subjects: '[]', error_code: null, error_detail: null, updated_at: sql`now()` })
        .where('id', '=', input.source.uploadId)
        .execute();
    }
    return { file, version, alreadyCommitted: false };
  });
}

/** SQL for the SHA-256 over a manifest's ordered chunk hashes (null for an empty manifest). */
export function manifestFingerprint(table: 'version_chunks' | 'upload_chunks', column: 'version_id' | 'upload_id', id: string) {
  return sql<string | null>`(select encode(sha256(convert_to(string_agg(sha256, '' order by index), 'UTF8')), 'hex') from ${sql.table(table)} where ${sql.ref(column)} = ${id})`;
}

/** Copies the chunk manifest in SQL (never through the application: a 100 GiB file has 12,800 rows). */
async function copyManifest(trx: Transaction<Database>, versionId: string, input: CommitInput): Promise<number> {
  const { source } = input;
  if ('chunks' in source) {
    if (source.chunks.length === 0) return 0;
    let offset = 0;
    const rows = source.chunks.map((chunk, index) => {
      const row = { version_id: versionId, index, tenant_id: input.tenantId, sha256: chunk.sha256, offset, size: chunk.size };
      offset += chunk.size;
      return row;
    });
    await trx.insertInto('version_chunks').values(rows).execute();
    return rows.length;
  }
  const result =
    'uploadId' in source
      ? await sql`insert into version_chunks (version_id, index, tenant_id, sha256, "offset", size)
          select ${versionId}, index, tenant_id, sha256, coalesce(sum(size) over (order by index rows between unbounded preceding and 1 preceding), 0), size
          from upload_chunks where upload_id = ${source.uploadId}`.execute(trx)
      : await sql`insert into version_chunks (version_id, index, tenant_id, sha256, "offset", size)
          select ${versionId}, index, tenant_id, sha256, "offset", size from version_chunks where version_id = ${source.versionId}`.execute(trx);
  return Number(result.numAffectedRows ?? 0);
}

/**
 * One of a file's versions by id — the one lookup every route uses (content, restore, copy, links, signed
 * downloads). Missing, or a version of another file: 404 "`what` not found".
 */
export async function loadVersion(db: Db, fileId: string, versionId: string | null, what = 'Version'): Promise<Version> {
  if (!versionId) throw notFound(what);
  const version = await db.selectFrom('versions').selectAll().where('id', '=', versionId).where('file_id', '=', fileId).executeTakeFirst();
  if (!version) throw notFound(what);
  return version;
}

/** A file the caller may read, with one of its versions (the current one unless `versionId` is given). */
export async function readableFileVersion(db: Db, principal: Principal, fileId: string, versionId?: string): Promise<{ file: Node; version: Version }> {
  const { node } = await accessNode(db, principal, fileId, 'read', { kind: 'file' });
  return { file: node, version: await loadVersion(db, node.id, versionId ?? node.current_version_id) };
}

/** A file the caller may read, with all its versions, newest first. */
export async function listFileVersions(db: Db, principal: Principal, fileId: string): Promise<{ file: Node; versions: Version[] }> {
  const { node } = await accessNode(db, principal, fileId, 'read', { kind: 'file' });
  const versions = await db.selectFrom('versions').selectAll().where('file_id', '=', node.id).orderBy('number', 'desc').execute();
  return { file: node, versions };
}

/** A committed file and version by id (an upload session that completed points at both). */
export async function loadCommit(db: Db, fileId: string, versionId: string): Promise<{ file: Node; version: Version }> {
  const file = await db.selectFrom('nodes').selectAll().where('id', '=', fileId).executeTakeFirstOrThrow();
  const version = await db.selectFrom('versions').selectAll().where('id', '=', versionId).executeTakeFirstOrThrow();
  return { file, version };
}

/** Versions are created by users only; to anything else the file does not exist. */
function committerId(principal: Principal): string {
  if (principal.kind !== 'user') throw notFound('Node');
  return principal.userId;
}

/** Copies a file's current version into a folder as a new file (a live sibling of that name is 409). */
export async function copyFile(db: Db, principal: Principal, fileId: string, target: { parentId: string; name?: string }): Promise<CommitResult> {
  const userId = committerId(principal);
  const { node } = await accessNode(db, principal, fileId, 'read', { kind: 'file' });
  await accessNode(db, principal, target.parentId, 'write', { kind: 'folder' });
  const version = await loadVersion(db, node.id, node.current_version_id);
  return commitVersion(db, {
    tenantId: principal.tenantId,
    userId,
    parentId: target.parentId,
    name: target.name ?? node.name,
    size: version.size,
    checksumSha256: version.checksum_sha256,
    source: { versionId: version.id },
    createOnly: true,
  });
}

/** Makes an old version current again, as a new version with the same content. */
export async function restoreVersion(db: Db, principal: Principal, fileId: string, versionId: string): Promise<CommitResult> {
  const userId = committerId(principal);
  const { node } = await accessNode(db, principal, fileId, 'write', { kind: 'file' });
  assertNotLockedByOther(node, principal);
  const version = await loadVersion(db, node.id, versionId);
  return commitVersion(db, {
    tenantId: principal.tenantId,
    userId,
    parentId: node.parent_id!,
    name: node.name,
    size: version.size,
    checksumSha256: version.checksum_sha256,
    source: { versionId: version.id },
    fileId: node.id,
  });
}
