// Vectorization activities (issue #11): index one file version (extract → passages → embed → upsert), and record a
// final failure. Idempotent: passage ids are derived, status writes conditional; a retry redoes at most one batch.
import { ApplicationFailure, heartbeat } from '@temporalio/activity';
import { sql } from 'kysely';
import type { ActivityDeps } from './index';
import { EmbeddingRejectedError } from '../search/embeddings';
import { indexVersion, type IndexOutcome } from '../services/search-index.service';

export const searchFailureTypes = { rejected: 'EMBEDDING_REJECTED' } as const;

export function createSearchActivities(deps: ActivityDeps) {
  return {
    async indexFileVersion(input: { versionId: string }): Promise<IndexOutcome> {
      const { search } = deps;
      let passages = null;
      if (search.vectorStoreConfigured) {
        // Unreachable: thrown, so Temporal retries with backoff until Weaviate is back (or the attempts run out).
        passages = await search.passages();
      }
      // Heartbeats on every step and every few seconds in between (a slow PDF or embedding batch): a killed worker
      // is noticed within the heartbeat timeout, however long one step takes.
      let lastStep: unknown = { status: 'pending' };
      const beat = setInterval(() => heartbeat(lastStep), 5_000);
      try {
        return await indexVersion({ db: deps.db, storage: deps.storage, passages, embeddings: search.embeddings }, input.versionId, (step) => {
          lastStep = step;
          heartbeat(step);
        });
      } catch (error) {
        if (error instanceof EmbeddingRejectedError) throw ApplicationFailure.create({ nonRetryable: true, type: searchFailureTypes.rejected, message: error.message });
        // Weaviate may have gone away: the retry connects afresh.
        if (/^Weaviate/.test((error as Error).name ?? '')) search.invalidate();
        throw error;
      } finally {
        clearInterval(beat);
      }
    },

    /** The workflow gave up: the entry says so (a version indexed or superseded meanwhile is left alone). */
    async markIndexFailed(input: { versionId: string; reason: string }): Promise<void> {
      await deps.db
        .updateTable('search_documents')
        .set({ status: 'failed', reason: input.reason.slice(0, 1000), updated_at: sql`now()` })
        .where('version_id', '=', input.versionId)
        .where('status', 'in', ['pending', 'extracting', 'embedding'])
        .execute();
    },
  };
}

export type SearchActivities = ReturnType<typeof createSearchActivities>;
