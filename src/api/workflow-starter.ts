// Starting workflows from a request: business id, search attributes, the request id in the memo, metrics,
// and waiting a bounded time for the result.
import { WorkflowExecutionAlreadyStartedError, WorkflowFailedError, type WorkflowHandle, type WorkflowStartOptions } from '@temporalio/client';
import type { Workflow } from '@temporalio/common';
import { scaiSearchAttributes, type ScaiAttributes } from '../temporal/search-attributes';
import type { AppContext } from './context';

export interface StartOptions<W extends Workflow> {
  workflowId: string;
  taskQueue: string;
  args: Parameters<W>;
  attributes: ScaiAttributes;
  /**
   * `once` (default): the id can never run again, a repeat attaches to the first run (webhook events).
   * `attach-or-rerun`: a running workflow is attached to; a finished one may run again (finalize after a
   * checksum mismatch was fixed).
   */
  reuse?: 'once' | 'attach-or-rerun';
}

/**
 * Starts the workflow, or attaches to the run already using that id (a repeated request is not a new job).
 * `alreadyStarted` tells the caller which case it was.
 */
export async function startOrAttach<W extends Workflow>(ctx: AppContext, workflow: W, options: StartOptions<W>): Promise<{ handle: WorkflowHandle<W>; alreadyStarted: boolean }> {
  const client = ctx.deps.temporal;
  try {
    const startOptions = {
      args: options.args,
      workflowId: options.workflowId,
      taskQueue: options.taskQueue,
      typedSearchAttributes: scaiSearchAttributes(options.attributes),
      memo: { request_id: ctx.state.requestId },
      workflowIdReusePolicy: options.reuse === 'attach-or-rerun' ? 'ALLOW_DUPLICATE' : 'REJECT_DUPLICATE',
      workflowIdConflictPolicy: options.reuse === 'attach-or-rerun' ? 'USE_EXISTING' : 'FAIL',
    } as const;
    // The generic args type cannot be narrowed here; callers are typed by StartOptions<W>.
    const handle = await client.workflow.start(workflow, startOptions as unknown as WorkflowStartOptions<W>);
    ctx.deps.metrics.workflowStarts.inc({ workflow: workflow.name });
    return { handle, alreadyStarted: false };
  } catch (error) {
    if (!(error instanceof WorkflowExecutionAlreadyStartedError)) throw error;
    return { handle: client.workflow.getHandle<W>(options.workflowId), alreadyStarted: true };
  }
}

/**
 * Waits up to `seconds` for the result; `undefined` when the workflow is still running. The long-poll is
 * cancelled at the bound, so nothing keeps polling (or retrying) after the request is answered.
 */
export async function resultWithin<W extends Workflow>(ctx: AppContext, handle: WorkflowHandle<W>, seconds: number): Promise<Awaited<ReturnType<W>> | undefined> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), seconds * 1000);
  try {
    return await ctx.deps.temporal.connection.withAbortSignal(controller.signal, () => handle.result() as Promise<Awaited<ReturnType<W>>>);
  } catch (error) {
    if (controller.signal.aborted) return undefined;
    if (error instanceof WorkflowFailedError) ctx.deps.metrics.workflowFailures.inc({ workflow: handle.workflowId.split('/')[0] });
    throw error;
  } finally {
    clearTimeout(timer);
  }
}
