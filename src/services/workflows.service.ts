// Operators' view of a tenant's workflows (spec §12): list them from Temporal visibility by ScaiTenantId,
// and retry a finished one as a new run with the same input (activities are idempotent, so that is safe).
import { WorkflowExecutionAlreadyStartedError, type Client } from '@temporalio/client';
import { executionInfoFromRaw } from '@temporalio/client/lib/helpers.js';
import { defaultPayloadConverter, WorkflowNotFoundError } from '@temporalio/common';
import proto from '@temporalio/proto';
import { sql } from 'kysely';
import type { Db } from '../db/database';
import { AppError, badRequest, notFound } from '../errors';
import { ScaiTenantId } from '../temporal/search-attributes';
import { workflowKindOf, workflowTypeOfKind, type WorkflowKind } from '../temporal/workflow-ids';

export const workflowStatuses = ['running', 'completed', 'failed', 'timed_out', 'canceled', 'terminated'] as const;
export type WorkflowStatus = (typeof workflowStatuses)[number];

const visibilityStatus: Record<WorkflowStatus, string> = {
  running: 'Running',
  completed: 'Completed',
  failed: 'Failed',
  timed_out: 'TimedOut',
  canceled: 'Canceled',
  terminated: 'Terminated',
};

export interface WorkflowSummary {
  workflow_id: string;
  run_id: string;
  kind: string;
  status: string;
  start_time: string;
  close_time: string | null;
  failure_message: string | null;
  temporal_ui_url: string;
}

export interface WorkflowsContext {
  db: Db;
  temporal: Client;
  namespace: string;
  uiUrl: string;
}

export function temporalUiUrl(ctx: Pick<WorkflowsContext, 'namespace' | 'uiUrl'>, workflowId: string, runId: string): string {
  return `${ctx.uiUrl}/namespaces/${encodeURIComponent(ctx.namespace)}/workflows/${encodeURIComponent(workflowId)}/${encodeURIComponent(runId)}/history`;
}

/** Visibility values are quoted by us, never by the caller: only known statuses, kinds and our tenant ids get in. */
function visibilityQuery(tenantId: string, filter: { status?: WorkflowStatus; kind?: WorkflowKind }): string {
  const clauses = [`ScaiTenantId = "${tenantId.replace(/[^A-Za-z0-9_]/g, '')}"`];
  if (filter.status) clauses.push(`ExecutionStatus = "${visibilityStatus[filter.status]}"`);
  if (filter.kind) clauses.push(`WorkflowType = "${workflowTypeOfKind(filter.kind)}"`);
  return clauses.join(' AND ');
}

/** Why a closed run ended, from its close event only (not the whole history). */
async function failureMessage(ctx: WorkflowsContext, workflowId: string, runId: string): Promise<string | null> {
  const response = await ctx.temporal.workflowService.getWorkflowExecutionHistory({
    namespace: ctx.namespace,
    execution: { workflowId, runId },
    historyEventFilterType: proto.temporal.api.enums.v1.HistoryEventFilterType.HISTORY_EVENT_FILTER_TYPE_CLOSE_EVENT,
  });
  const event = response.history?.events?.[0];
  const failure = event?.workflowExecutionFailedEventAttributes?.failure;
  if (failure) return failure.cause?.message ? `${failure.message}: ${failure.cause.message}` : (failure.message ?? null);
  if (event?.workflowExecutionTimedOutEventAttributes) return 'Workflow execution timed out';
  if (event?.workflowExecutionTerminatedEventAttributes) return event.workflowExecutionTerminatedEventAttributes.reason || 'Terminated';
  return null;
}

export async function listTenantWorkflows(
  ctx: WorkflowsContext,
  tenantId: string,
  filter: { status?: WorkflowStatus; kind?: WorkflowKind; limit: number; pageToken?: string },
): Promise<{ items: WorkflowSummary[]; nextPageToken: string | null }> {
  let response;
  try {
    response = await ctx.temporal.workflowService.listWorkflowExecutions({
      namespace: ctx.namespace,
      pageSize: filter.limit,
      nextPageToken: filter.pageToken ? Buffer.from(filter.pageToken, 'base64') : undefined,
      query: visibilityQuery(tenantId, filter),
    });
  } catch (error) {
    // A page token Temporal no longer accepts (it is signed by us, so only an expired one gets here).
    if ((error as { code?: number }).code === 3) throw badRequest('The cursor is no longer valid; list again from the start', 'INVALID_CURSOR');
    throw error;
  }
  const items = await Promise.all(
    (response.executions ?? []).map(async (raw) => {
      const info = await executionInfoFromRaw(raw, ctx.temporal.options.loadedDataConverter, raw, ctx.namespace);
      const status = info.status.name.toLowerCase();
      const closedBadly = status === 'failed' || status === 'timed_out' || status === 'terminated';
      return {
        workflow_id: info.workflowId,
        run_id: info.runId,
        kind: workflowKindOf(info.workflowId),
        status,
        start_time: info.startTime.toISOString(),
        close_time: info.closeTime?.toISOString() ?? null,
        failure_message: closedBadly ? await failureMessage(ctx, info.workflowId, info.runId) : null,
        temporal_ui_url: temporalUiUrl(ctx, info.workflowId, info.runId),
      };
    }),
  );
  const token = response.nextPageToken && response.nextPageToken.length > 0 ? Buffer.from(response.nextPageToken).toString('base64') : null;
  return { items, nextPageToken: token };
}

/**
 * Starts a new run of a finished workflow with the input of its latest run. Parallel retries of the same run
 * race for its row in workflow_retries (one conditional insert): the winner starts the new run, the others get
 * 409. Temporal alone does not decide this: a retry that described the old run before another retry's new run
 * had started and finished would otherwise start a second one.
 */
export async function retryTenantWorkflow(ctx: WorkflowsContext, tenantId: string, workflowId: string, requestId: string) {
  const handle = ctx.temporal.workflow.getHandle(workflowId);
  let description;
  try {
    description = await handle.describe();
  } catch (error) {
    if (error instanceof WorkflowNotFoundError) throw notFound('Workflow');
    throw error;
  }
  // Another tenant's (or a system) workflow is invisible, not forbidden.
  if (description.typedSearchAttributes.get(ScaiTenantId) !== tenantId) throw notFound('Workflow');
  if (description.status.name === 'RUNNING') throw new AppError(409, 'WORKFLOW_RUNNING', 'The workflow is still running; only a finished workflow can be retried');
  const history = await ctx.temporal.workflowService.getWorkflowExecutionHistory({
    namespace: ctx.namespace,
    execution: { workflowId, runId: description.runId },
    maximumPageSize: 1,
  });
  const started = history.history?.events?.[0]?.workflowExecutionStartedEventAttributes;
  if (!started) throw new AppError(409, 'WORKFLOW_HISTORY_UNAVAILABLE', 'The workflow history is no longer available (past retention)');
  const args = (started.input?.payloads ?? []).map((payload) => defaultPayloadConverter.fromPayload(payload));

  const claim = { db: ctx.db, workflowId, previousRunId: description.runId, requestId };
  if (!(await claimRetry(claim, tenantId))) {
    throw new AppError(409, 'WORKFLOW_RUNNING', 'This run was already retried by another request; its new run is the latest');
  }
  let runId: string;
  try {
    const run = await ctx.temporal.workflow.start(description.type, {
      workflowId,
      taskQueue: description.taskQueue,
      args,
      typedSearchAttributes: description.typedSearchAttributes,
      memo: { request_id: requestId, retry_of_run_id: description.runId },
      workflowIdReusePolicy: 'ALLOW_DUPLICATE',
      workflowIdConflictPolicy: 'FAIL',
    });
    runId = run.firstExecutionRunId;
  } catch (error) {
    // Nothing started: give the claim back so the run can be retried again.
    await releaseRetry(claim);
    if (error instanceof WorkflowExecutionAlreadyStartedError) throw new AppError(409, 'WORKFLOW_RUNNING', 'The workflow is already running again');
    throw error;
  }
  await ctx.db.updateTable('workflow_retries').set({ run_id: runId }).where('workflow_id', '=', workflowId).where('previous_run_id', '=', description.runId).where('request_id', '=', requestId).execute();
  return { workflow_id: workflowId, run_id: runId, previous_run_id: description.runId, temporal_ui_url: temporalUiUrl(ctx, workflowId, runId) };
}

/** A claim left by a request that died between claiming and starting is taken over after this long. */
const abandonedClaimSeconds = 60;

interface RetryClaim {
  db: Db;
  workflowId: string;
  previousRunId: string;
  requestId: string;
}

/** True when this request now holds the right to start the run that follows `previousRunId`. */
async function claimRetry(claim: RetryClaim, tenantId: string): Promise<boolean> {
  const row = await sql<{ request_id: string }>`
    insert into workflow_retries (workflow_id, previous_run_id, tenant_id, request_id)
    values (${claim.workflowId}, ${claim.previousRunId}, ${tenantId}, ${claim.requestId})
    on conflict (workflow_id, previous_run_id) do update set request_id = excluded.request_id, claimed_at = now()
      where workflow_retries.run_id is null and workflow_retries.claimed_at < now() - make_interval(secs => ${abandonedClaimSeconds})
    returning request_id`.execute(claim.db);
  return row.rows.length === 1;
}

async function releaseRetry(claim: RetryClaim): Promise<void> {
  await claim.db
    .deleteFrom('workflow_retries')
    .where('workflow_id', '=', claim.workflowId)
    .where('previous_run_id', '=', claim.previousRunId)
    .where('request_id', '=', claim.requestId)
    .where('run_id', 'is', null)
    .execute();
}
