// Indexing one file version for search (spec §11), the body of the vectorization workflow's activity:
// extract its text (stored per version for keyword search and snippets) → split into overlapping passages →
// embed in batches → upsert into Weaviate under the tenant → mark indexed → remove the file's other versions'
// passages. Every step is idempotent (passage ids derive from the version and the passage index; status writes
// are conditional), so a retry or a replay never duplicates anything. Only the file's current version is indexed.
import { createHash } from 'node:crypto';
import { sql } from 'kysely';
import type { Transaction } from 'kysely';
import type { Database, Db, SearchStatus } from '../db/database';
import type { BlobStorage } from '../storage/blob-storage';
import type { EmbeddingProvider } from '../search/embeddings';
import { extractText, defaultExtractionLimits, type ExtractionLimits } from '../search/extraction';
import type { PassageStore } from '../search/passage-store';
import { defaultPassageOptions, splitPassages, type PassageOptions } from '../search/passages';
import { openVersionStream } from './content.service';

export interface SearchIndexDeps {
  db: Db;
  storage: BlobStorage;
  /** Null when no vector store is configured: the text is still extracted for keyword search. */
  passages: PassageStore | null;
  embeddings: EmbeddingProvider;
  limits?: { extraction?: ExtractionLimits; passages?: PassageOptions };
}

export type IndexOutcome = { status: SearchStatus; passages: number; reason?: string } | { status: 'superseded' };

/** A UUID derived from the version and the passage index: the same passage always gets the same id. */
export function passageId(versionId: string, index: number): string {
  const hex = createHash('sha256').update(`${versionId}\u0000${index}`).digest('hex');
  // Shaped as a version-5-style UUID (Weaviate wants UUIDs).
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-5${hex.slice(13, 16)}-${((parseInt(hex[16]!, 16) & 0x3) | 0x8).toString(16)}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

/** Thrown inside a run when its entry was queued again meanwhile (a move, a re-index): the run starts over. */
class Requeued extends Error {}

/**
 * Writes the entry's status, only while it is still the entry this run started from (`queued_at` unchanged: a move
 * to another space or a re-index queues it anew, and this run's space or text may be stale).
 */
async function setStatus(db: Db | Transaction<Database>, versionId: string, queuedAt: string, status: SearchStatus, extra: { reason?: string | null; passages?: number; vector_space?: string | null } = {}): Promise<void> {
  const written = await db
    .updateTable('search_documents')
    .set({ status, updated_at: sql`now()`, ...extra })
    .where('version_id', '=', versionId)
    .where(sql<boolean>`queued_at::text = ${queuedAt}`)
    .returning('version_id')
    .executeTakeFirst();
  if (!written) throw new Requeued();
}

/** Progress callback: the activity heartbeats with it. */
export type IndexProgress = (step: { status: SearchStatus; passages?: number }) => void;

export async function indexVersion(deps: SearchIndexDeps, versionId: string, progress: IndexProgress = () => undefined): Promise<IndexOutcome> {
  // A move to another space while this run embeds puts the entry back to `pending` (the passages carry the space):
  // the run sees its final status write refused and indexes again, with the new space.
  for (let round = 1; ; round++) {
    try {
      return await indexOnce(deps, versionId, progress);
    } catch (error) {
      // Past a few rounds, the activity's retry (with backoff) takes over.
      if (!(error instanceof Requeued) || round >= 3) throw error instanceof Requeued ? new Error('The file was queued again while it was indexed (moved or re-indexed)') : error;
    }
  }
}

async function indexOnce(deps: SearchIndexDeps, versionId: string, progress: IndexProgress): Promise<IndexOutcome> {
  const { db } = deps;
  const version = await db
    .selectFrom('versions')
    .innerJoin('nodes', 'nodes.id', 'versions.file_id')
    .select(['versions.id', 'versions.tenant_id', 'versions.file_id', 'versions.size', 'versions.number', 'nodes.name', 'nodes.space_id', 'nodes.current_version_id'])
    .where('versions.id', '=', versionId)
    .executeTakeFirst();
  // Gone or no longer the current version: nothing to index (a newer version has its own entry), and the entry
  // leaves the queue. A file in the trash is indexed all the same (searches skip it; a restore finds it indexed).
  if (!version || version.current_version_id !== versionId) {
    await db.deleteFrom('search_documents').where('version_id', '=', versionId).execute();
    return { status: 'superseded' };
  }
  const space = deps.embeddings.space;

  await db
    .insertInto('search_documents')
    .values({ version_id: versionId, tenant_id: version.tenant_id, file_id: version.file_id })
    .onConflict((oc) => oc.column('version_id').doNothing())
    .execute();
  const existing = await db
    .selectFrom('search_documents')
    .selectAll()
    // As text: microseconds, where a JS Date would keep milliseconds and never compare equal again.
    .select(sql<string>`queued_at::text`.as('queued_at_text'))
    .where('version_id', '=', versionId)
    .executeTakeFirstOrThrow();
  const queuedAt = existing.queued_at_text;
  if (existing.status === 'indexed' && existing.vector_space === space) return { status: 'indexed', passages: existing.passages };
  if (existing.status === 'unsupported') return { status: 'unsupported', passages: 0, reason: existing.reason ?? undefined };

  // Extract (again only if an earlier attempt did not get that far).
  let text = existing.text;
  if (text === null) {
    await setStatus(db, versionId, queuedAt, 'extracting');
    progress({ status: 'extracting' });
    const extraction = await extractText(version.name, version.size, openVersionStream(db, deps.storage, versionId), deps.limits?.extraction ?? defaultExtractionLimits);
    if (extraction.status === 'unsupported') {
      return finish(deps, version, queuedAt, { status: 'unsupported', reason: extraction.reason, passages: 0 });
    }
    text = extraction.text;
    await db.updateTable('search_documents').set({ text, format: extraction.format, truncated: extraction.truncated }).where('version_id', '=', versionId).execute();
  }

  if (!deps.passages) {
    await setStatus(db, versionId, queuedAt, 'indexed', { passages: 0, vector_space: null, reason: 'keyword only: no vector store is configured' });
    return { status: 'indexed', passages: 0, reason: 'keyword only' };
  }
  const store = deps.passages;
  await setStatus(db, versionId, queuedAt, 'embedding');
  const passages = splitPassages(`${version.name}\n${text}`, deps.limits?.passages ?? defaultPassageOptions);
  const batch = 64;
  for (let i = 0; i < passages.length; i += batch) {
    const slice = passages.slice(i, i + batch);
    const vectors = await deps.embeddings.embed(slice.map((p) => p.text));
    await store.upsert(
      version.tenant_id,
      slice.map((p, j) => ({
        id: passageId(versionId, p.index),
        vector: vectors[j]!,
        properties: { file_id: version.file_id, version_id: versionId, space_id: version.space_id, passage_index: p.index, text: p.text },
      })),
    );
    progress({ status: 'embedding', passages: i + slice.length });
  }
  return finish(deps, version, queuedAt, { status: 'indexed', passages: passages.length, vector_space: space, reason: null });
}

/**
 * The last step of a run, one at a time per file (an advisory lock): still the current version → the passages of
 * older versions go (never a newer one's: its run may be upserting right now) and the status is written (only if
 * the entry was not queued again meanwhile, see setStatus); no longer current → this version's own passages go too
 * and its entry leaves the queue.
 */
async function finish(
  deps: SearchIndexDeps,
  version: { id: string; tenant_id: string; file_id: string; number: number },
  queuedAt: string,
  result: { status: 'indexed' | 'unsupported'; passages: number; reason: string | null; vector_space?: string },
): Promise<IndexOutcome> {
  return deps.db.transaction().execute(async (trx) => {
    await sql`select pg_advisory_xact_lock(hashtext(${`search-finish:${version.file_id}`}))`.execute(trx);
    const node = await trx.selectFrom('nodes').select('current_version_id').where('id', '=', version.file_id).executeTakeFirst();
    const newer = await trx.selectFrom('versions').select('id').where('file_id', '=', version.file_id).where('number', '>', version.number).execute();
    const keep = newer.map((v) => v.id);
    if (node?.current_version_id !== version.id) {
      await deps.passages?.deleteFileExcept(version.tenant_id, version.file_id, keep);
      await trx.deleteFrom('search_documents').where('version_id', '=', version.id).execute();
      return { status: 'superseded' as const };
    }
    await setStatus(trx, version.id, queuedAt, result.status, { passages: result.passages, reason: result.reason, vector_space: result.vector_space ?? null });
    await deps.passages?.deleteFileExcept(version.tenant_id, version.file_id, [version.id, ...keep]);
    return { status: result.status, passages: result.passages, ...(result.reason ? { reason: result.reason } : {}) };
  });
}
