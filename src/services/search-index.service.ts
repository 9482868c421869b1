// Indexing one file version for search (spec §11), the body of the vectorization workflow's activity:
// extract its text (stored per version for keyword search and snippets) → split into overlapping passages →
// embed in batches → upsert into Weaviate under the tenant → mark indexed → remove the file's other versions'
// passages. Every step is idempotent (passage ids derive from the version and the passage index; status writes
// are conditional), so a retry or a replay never duplicates anything. Only the file's current version is indexed.
import { createHash } from 'node:crypto';
import { sql } from 'kysely';
import type { Db, SearchStatus } from '../db/database';
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

async function setStatus(db: Db, versionId: string, status: SearchStatus, extra: { reason?: string | null; passages?: number; vector_space?: string | null } = {}): Promise<void> {
  await db.updateTable('search_documents').set({ status, updated_at: sql`now()`, ...extra }).where('version_id', '=', versionId).execute();
}

/** Progress callback: the activity heartbeats with it. */
export type IndexProgress = (step: { status: SearchStatus; passages?: number }) => void;

export async function indexVersion(deps: SearchIndexDeps, versionId: string, progress: IndexProgress = () => undefined): Promise<IndexOutcome> {
  const { db } = deps;
  const version = await db
    .selectFrom('versions')
    .innerJoin('nodes', 'nodes.id', 'versions.file_id')
    .select(['versions.id', 'versions.tenant_id', 'versions.file_id', 'versions.size', 'nodes.name', 'nodes.space_id', 'nodes.current_version_id'])
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
  const existing = await db.selectFrom('search_documents').selectAll().where('version_id', '=', versionId).executeTakeFirstOrThrow();
  if (existing.status === 'indexed' && existing.vector_space === space) return { status: 'indexed', passages: existing.passages };
  if (existing.status === 'unsupported') return { status: 'unsupported', passages: 0, reason: existing.reason ?? undefined };

  // Extract (again only if an earlier attempt did not get that far).
  let text = existing.text;
  if (text === null) {
    await setStatus(db, versionId, 'extracting');
    progress({ status: 'extracting' });
    const extraction = await extractText(version.name, version.size, openVersionStream(db, deps.storage, versionId), deps.limits?.extraction ?? defaultExtractionLimits);
    if (extraction.status === 'unsupported') {
      await setStatus(db, versionId, 'unsupported', { reason: extraction.reason, passages: 0 });
      await deps.passages?.deleteFile(version.tenant_id, version.file_id);
      return { status: 'unsupported', passages: 0, reason: extraction.reason };
    }
    text = extraction.text;
    await db.updateTable('search_documents').set({ text, format: extraction.format, truncated: extraction.truncated }).where('version_id', '=', versionId).execute();
  }

  if (!deps.passages) {
    await setStatus(db, versionId, 'indexed', { passages: 0, vector_space: null, reason: 'keyword only: no vector store is configured' });
    return { status: 'indexed', passages: 0, reason: 'keyword only' };
  }
  const store = deps.passages;
  await setStatus(db, versionId, 'embedding');
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
  // The file's other versions' passages go once this version's are in (search never finds the file empty).
  await store.deleteOtherVersions(version.tenant_id, version.file_id, versionId);
  await setStatus(db, versionId, 'indexed', { passages: passages.length, vector_space: space, reason: null });
  return { status: 'indexed', passages: passages.length };
}
