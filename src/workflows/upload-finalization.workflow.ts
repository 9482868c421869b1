// Upload finalization (`upload-finalize/{upload_id}`): verify every chunk is there, hash the whole upload
// in order, compare with the declared checksum, then commit once. Payloads are ids and small summaries only.
import { proxyActivities, upsertSearchAttributes } from '@temporalio/workflow';
import { ScaiFileId } from '../temporal/search-attributes';
import type { UploadActivities } from '../activities/upload.activities';
import { shortIo } from '../temporal/activity-options';

const { prepareFinalization, commitUpload, reopenUpload } = proxyActivities<UploadActivities>(shortIo);
const { hashUploadedContent } = proxyActivities<UploadActivities>({
  startToCloseTimeout: '6 hours',
  // Short, so a worker killed mid-hash is noticed quickly and the hash restarts on another worker.
  heartbeatTimeout: '15 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '30 seconds', maximumAttempts: 20 },
});

export type FinalizationResult =
  | { outcome: 'completed'; fileId: string; versionId: string }
  | { outcome: 'rejected'; status: number; code: string; detail: string; details?: Record<string, unknown> };

export async function uploadFinalizationWorkflow(uploadId: string): Promise<FinalizationResult> {
  const prepared = await prepareFinalization(uploadId);
  if (prepared.kind === 'completed') return { outcome: 'completed', fileId: prepared.fileId, versionId: prepared.versionId };
  if (prepared.kind === 'rejected') return { outcome: 'rejected', status: prepared.status, code: prepared.code, detail: prepared.detail, details: prepared.details };

  const { checksum: actual, manifestSha256 } = await hashUploadedContent(uploadId);
  if (prepared.declaredChecksum && prepared.declaredChecksum !== actual) {
    const detail = 'The uploaded content does not match checksum_sha256; re-send the wrong chunks and finalize again';
    await reopenUpload(uploadId, 'CHECKSUM_MISMATCH', detail);
    return { outcome: 'rejected', status: 400, code: 'CHECKSUM_MISMATCH', detail, details: { expected: prepared.declaredChecksum, actual } };
  }

  // The commit verifies the manifest is still the one hashed, so the version's checksum is its bytes'.
  const committed = await commitUpload(uploadId, actual, manifestSha256);
  if (committed.kind === 'rejected') return { outcome: 'rejected', status: committed.status, code: committed.code, detail: committed.detail, details: committed.details };
  // A new file's id is known only now: make the run findable by it in the Temporal UI.
  upsertSearchAttributes([{ key: ScaiFileId, value: committed.fileId }]);
  return { outcome: 'completed', fileId: committed.fileId, versionId: committed.versionId };
}
