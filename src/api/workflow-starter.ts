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
      workflowIdReusePolicy: 'REJECT_DUPLICATE',
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

/** Waits up to `seconds` for the result; `undefined` when the workflow is still running. */
export async function resultWithin<W extends Workflow>(ctx: AppContext, handle: WorkflowHandle<W>, seconds: number): Promise<Awaited<ReturnType<W>> | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), seconds * 1000);
  });
  try {
    return await Promise.race([handle.result() as Promise<Awaited<ReturnType<W>>>, timeout]);
  } catch (error) {
    if (error instanceof WorkflowFailedError) ctx.deps.metrics.workflowFailures.inc({ workflow: handle.workflowId.split('/')[0] });
    throw error;
  } finally {
    clearTimeout(timer);
  }
}
