// `vectorize/{file_id}/{version_id}` (spec §11): indexes one committed version for search, on the high (fresh
// user commits) or low (connector imports, re-index) search task queue. A final failure leaves the version
// marked `failed` with the reason, never stuck in `extracting`/`embedding`.
import { ApplicationFailure, defineSignal, proxyActivities, setHandler } from '@temporalio/workflow';
import type { SearchActivities } from '../activities/search.activities';
import type { IndexOutcome } from '../services/search-index.service';
import { searchIndexing, shortIo } from '../temporal/activity-options';

const { indexFileVersion } = proxyActivities<SearchActivities>(searchIndexing);
const { markIndexFailed } = proxyActivities<SearchActivities>(shortIo);

export interface VectorizeInput {
  tenantId: string;
  fileId: string;
  versionId: string;
}

export function vectorizeWorkflowId(fileId: string, versionId: string): string {
  return `vectorize/${fileId}/${versionId}`;
}

/**
 * The dispatcher signals-with-start: a version queued again (a re-index, a move to another space) while its run is
 * still going — even past its last status write — makes the run go once more instead of being lost.
 */
export const requeuedSignal = defineSignal('requeued');

export async function vectorizeWorkflow(input: VectorizeInput): Promise<IndexOutcome> {
  let requeued = false;
  setHandler(requeuedSignal, () => {
    requeued = true;
  });
  for (;;) {
    // The signal that started this run (delivered when the handler is set) is this run.
    requeued = false;
    let outcome: IndexOutcome;
    try {
      outcome = await indexFileVersion({ versionId: input.versionId });
    } catch (error) {
      const cause = (error as { cause?: unknown }).cause;
      const reason = cause instanceof ApplicationFailure || cause instanceof Error ? cause.message : String(error);
      await markIndexFailed({ versionId: input.versionId, reason });
      throw error;
    }
    if (!requeued) return outcome;
  }
}
