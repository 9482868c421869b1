// Connector sync (`connector-sync/{connector_id}/{job_id}`): walk the source depth first, page by page, in
// batches (each an activity that lists pages and imports what changed, up to ~1000 entries or 20 s),
// continue-as-new every N items so a huge share never bloats one history, then trash what vanished and finish the job. Credentials rejected → job failed (401);
// source unreachable after the retries → failed (502). A scheduled firing runs `connectorScheduledSyncWorkflow`,
// which creates the job and starts this workflow as an abandoned child.
import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  ParentClosePolicy,
  continueAsNew,
  isCancellation,
  proxyActivities,
  startChild,
  workflowInfo,
} from '@temporalio/workflow';
import type { BatchResult, ChangesBatchResult, ConnectorActivities } from '../activities/connector.activities';
import type { PendingDirectory } from '../services/connector-sync.service';
import { connectorBookkeeping, connectorPage } from '../temporal/activity-options';
import { ScaiConnectorId, ScaiJobId, ScaiTenantId } from '../temporal/search-attributes';

const { syncConnectorBatch, syncConnectorChanges } = proxyActivities<ConnectorActivities>(connectorPage);
const { beginConnectorJob, connectorSyncPlan, trashVanishedFiles, finishConnectorJob, failConnectorJob, cancelConnectorJob, createScheduledConnectorJob } =
  proxyActivities<ConnectorActivities>(connectorBookkeeping);

export interface ConnectorSyncInput {
  jobId: string;
  connectorId: string;
  tenantId: string;
  /** Items one run handles before continuing as new. */
  itemsPerRun: number;
  /** Set by continue-as-new: the walk's remaining stack. */
  pending?: PendingDirectory[];
  /** Set by continue-as-new of a change-feed job: where the feed continues, and whether it is a full enumeration. */
  changes?: ChangesPosition;
}

interface ChangesPosition {
  cursor: string | null;
  /** A full enumeration (first run, or resync): what it did not see is gone at the source. */
  full: boolean;
  /** Resyncs this job already started (a source that keeps expiring its cursor fails the job, not loops). */
  resyncs: number;
}

/** Full resyncs one job may start before it gives up. */
const maxResyncs = 3;

export interface ConnectorSyncResult {
  jobId: string;
  status: string | null;
}

/** Failure type → the job's error code and HTTP status. */
const failureSemantics: Record<string, number> = { CONNECTOR_AUTH_FAILED: 401, CONNECTOR_UNREACHABLE: 502, CONNECTOR_SECRET_KEY_MISMATCH: 409, CONNECTOR_TARGET_GONE: 410, CONNECTOR_RESYNC_LOOP: 502 };

export async function connectorSyncWorkflow(input: ConnectorSyncInput): Promise<ConnectorSyncResult> {
  try {
    let changes = input.changes;
    if (!input.pending && !changes) {
      if (!(await beginConnectorJob(input.jobId, workflowInfo().firstExecutionRunId))) return { jobId: input.jobId, status: 'canceled' };
      const plan = await connectorSyncPlan(input.jobId);
      if (!plan) return { jobId: input.jobId, status: null };
      if (plan.mode === 'changes') changes = { cursor: plan.cursor, full: plan.cursor === null, resyncs: 0 };
    }
    if (changes) return await followChanges(input, changes);
    let pending: PendingDirectory[] = input.pending ?? [{ directory: '', pageToken: null }];
    let items = 0;
    while (pending.length > 0) {
      const batch: BatchResult = await syncConnectorBatch({ jobId: input.jobId, pending, maxItems: input.itemsPerRun - items });
      if (batch.stopped) return { jobId: input.jobId, status: null };
      pending = batch.pending;
      items += batch.items;
      if (items >= input.itemsPerRun && pending.length > 0) {
        await continueAsNew<typeof connectorSyncWorkflow>({ ...input, pending });
      }
    }
    await trashVanishedFiles(input.jobId);
    return { jobId: input.jobId, status: await finishConnectorJob(input.jobId) };
  } catch (error) {
    if (isCancellation(error)) {
      await CancellationScope.nonCancellable(() => cancelConnectorJob(input.jobId));
      throw error;
    }
    // An activity's failure, or the workflow's own (a resync loop): the job fails with the failure's semantics.
    if (!(error instanceof ActivityFailure) && !(error instanceof ApplicationFailure)) throw error;
    const cause = error instanceof ApplicationFailure ? error : error.cause instanceof ApplicationFailure ? error.cause : undefined;
    const code = cause?.type && cause.type in failureSemantics ? cause.type : 'CONNECTOR_SYNC_FAILED';
    const detail = cause?.message ?? error.cause?.message ?? error.message;
    await failConnectorJob(input.jobId, code, failureSemantics[code] ?? 500, detail);
    throw ApplicationFailure.create({ nonRetryable: true, type: code, message: detail });
  }
}

/**
 * A change-feed job: pages from the stored cursor (or a full enumeration) in batches, continuing as new every N
 * items; a full enumeration ends with the vanished-file pass; the resume cursor is kept when the job is clean.
 */
async function followChanges(input: ConnectorSyncInput, start: ChangesPosition): Promise<ConnectorSyncResult> {
  const position = { ...start };
  let items = 0;
  for (;;) {
    const batch: ChangesBatchResult = await syncConnectorChanges({ jobId: input.jobId, cursor: position.cursor, maxItems: input.itemsPerRun - items });
    if (batch.stopped) return { jobId: input.jobId, status: null };
    items += batch.items;
    if (batch.resync) {
      if (position.resyncs >= maxResyncs) throw ApplicationFailure.create({ nonRetryable: true, type: 'CONNECTOR_RESYNC_LOOP', message: `The source expired its change cursor ${maxResyncs} times in one job` });
      Object.assign(position, { cursor: null, full: true, resyncs: position.resyncs + 1 });
      continue;
    }
    if (batch.resumeCursor !== null || batch.cursor === null) {
      if (position.full) await trashVanishedFiles(input.jobId);
      return { jobId: input.jobId, status: await finishConnectorJob(input.jobId, batch.resumeCursor) };
    }
    position.cursor = batch.cursor;
    if (items >= input.itemsPerRun) await continueAsNew<typeof connectorSyncWorkflow>({ ...input, changes: position });
  }
}

/** A schedule firing: one job (trigger `schedule`) unless one is already active, run as its own workflow. */
export async function connectorScheduledSyncWorkflow(input: { connectorId: string; tenantId: string; itemsPerRun?: number }): Promise<string | null> {
  const job = await createScheduledConnectorJob(input.connectorId);
  if (!job) return null;
  await startChild(connectorSyncWorkflow, {
    workflowId: job.workflowId,
    args: [{ jobId: job.jobId, connectorId: input.connectorId, tenantId: input.tenantId, itemsPerRun: input.itemsPerRun ?? 2000 }],
    parentClosePolicy: ParentClosePolicy.ABANDON,
    typedSearchAttributes: [
      { key: ScaiTenantId, value: input.tenantId },
      { key: ScaiConnectorId, value: input.connectorId },
      { key: ScaiJobId, value: job.jobId },
    ] as never,
  });
  return job.jobId;
}
