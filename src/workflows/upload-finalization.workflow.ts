// Upload finalization (`upload-finalize/{upload_id}`): verify every chunk is there, hash the whole upload
// in order, compare with the declared checksum, then commit once. Payloads are ids and small summaries only.
// A failure no retry can fix ends the session `failed` (reservation released) and fails the run, so operators
// see it in GET /admin/workflows?status=failed.
import { ActivityFailure, ApplicationFailure, patched, proxyActivities, proxyLocalActivities, upsertSearchAttributes } from '@temporalio/workflow';
import { ScaiFileId } from '../temporal/search-attributes';
import type { UploadActivities } from '../activities/upload.activities';
import { shortIo, shortLocalIo, uploadHashing } from '../temporal/activity-options';

const { prepareFinalization, commitUpload, reopenUpload, failUpload } = proxyActivities<UploadActivities>(shortIo);
const { hashUploadedContent } = proxyActivities<UploadActivities>(uploadHashing);
// The short steps as local activities (see shortLocalIo).
const local = proxyLocalActivities<UploadActivities>(shortLocalIo);

/** Domain outcomes; the API maps a rejection's `reason` (a stable error code) to HTTP once. */
export type FinalizationResult =
  | { outcome: 'completed'; fileId: string; versionId: string }
  | { outcome: 'rejected'; reason: string; detail: string; details?: Record<string, unknown> };

export async function uploadFinalizationWorkflow(uploadId: string): Promise<FinalizationResult> {
  try {
    return await finalize(uploadId);
  } catch (error) {
    // An activity fails as an ActivityFailure whose cause is the ApplicationFailure it threw; a local activity's
    // ApplicationFailure arrives as it was thrown.
    if (!(error instanceof ActivityFailure) && !(error instanceof ApplicationFailure)) throw error;
    // Out of retries, or a permanent failure: record why on the session, then fail the run with the same reason.
    const cause = error instanceof ApplicationFailure ? error : error.cause instanceof ApplicationFailure ? error.cause : undefined;
    const reason = cause?.type ?? 'FINALIZATION_FAILED';
    const detail = cause?.message ?? error.cause?.message ?? error.message;
    await failUpload(uploadId, reason, detail);
    throw ApplicationFailure.create({ nonRetryable: true, type: reason, message: detail });
  }
}

async function finalize(uploadId: string): Promise<FinalizationResult> {
  // Runs started before local activities replay the activities they recorded.
  const runLocally = patched('finalize-local-activities');
  const prepared = await (runLocally ? local.prepareFinalization : prepareFinalization)(uploadId);
  if (prepared.kind === 'completed') return { outcome: 'completed', fileId: prepared.fileId, versionId: prepared.versionId };
  if (prepared.kind === 'rejected') return { outcome: 'rejected', reason: prepared.reason, detail: prepared.detail, details: prepared.details };

  // A checksum known without reading a byte (a re-upload of a stored manifest, or hashed by the API as the chunks
  // arrived) is found locally; otherwise the bytes are hashed by a regular, heartbeating activity.
  const known = runLocally ? await local.checksumWithoutReading(uploadId) : null;
  const { checksum: actual, manifestSha256 } = known ?? (await hashUploadedContent(uploadId));
  if (prepared.declaredChecksum && prepared.declaredChecksum !== actual) {
    const detail = 'The uploaded content does not match checksum_sha256; re-send the wrong chunks and finalize again';
    await reopenUpload(uploadId, 'CHECKSUM_MISMATCH', detail);
    return { outcome: 'rejected', reason: 'CHECKSUM_MISMATCH', detail, details: { expected: prepared.declaredChecksum, actual } };
  }

  // The commit verifies the manifest is still the one hashed, so the version's checksum is its bytes'.
  const committed = await (runLocally ? local.commitUpload : commitUpload)(uploadId, actual, manifestSha256);
  if (committed.kind === 'rejected') return { outcome: 'rejected', reason: committed.reason, detail: committed.detail, details: committed.details };
  // A new file's id is known only now: make the run findable by it in the Temporal UI.
  upsertSearchAttributes([{ key: ScaiFileId, value: committed.fileId }]);
  return { outcome: 'completed', fileId: committed.fileId, versionId: committed.versionId };
}
