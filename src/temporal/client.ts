// The Temporal client used by the API and the CLI. The connection is lazy so the API starts (and reports
// "not ready") while Temporal is down, instead of refusing to start.
import { Client, Connection } from '@temporalio/client';
import type { Config } from '../config';

export function createTemporalClient(config: Config): Client {
  // No gRPC retry interceptor: its retries run on timers that outlive a closed connection and then throw
  // ("Channel has been shut down") as an uncaught exception. A Temporal outage surfaces at once instead, as
  // 503 SERVICE_UNAVAILABLE, which clients retry (seed 001).
  const connection = Connection.lazy({ address: config.temporal.address, connectTimeout: '3 seconds', interceptors: [] });
  return new Client({ connection, namespace: config.temporal.namespace });
}

/** Resolves when Temporal answers within `timeoutMs`; rejects otherwise. */
export async function pingTemporal(client: Client, timeoutMs = 3000): Promise<void> {
  // Abort (not just a deadline) so the SDK's retries stop too: nothing is left running after we answer.
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new Error(`Temporal did not answer within ${timeoutMs} ms`)), timeoutMs);
  try {
    await client.connection.withAbortSignal(controller.signal, () =>
      client.connection.withDeadline(Date.now() + timeoutMs, () => client.workflowService.describeNamespace({ namespace: client.options.namespace })),
    );
  } catch (error) {
    throw controller.signal.aborted ? (controller.signal.reason as Error) : error;
  } finally {
    clearTimeout(timer);
  }
}

export function temporalUiWorkflowUrl(config: Config, workflowId: string, runId?: string): string {
  const base = `${config.temporal.uiUrl}/namespaces/${encodeURIComponent(config.temporal.namespace)}/workflows/${encodeURIComponent(workflowId)}`;
  return runId ? `${base}/${runId}` : base;
}

/** Polls until the namespace answers (the dev server opens its port before the namespace is registered). */
export async function waitForTemporal(client: Client, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await pingTemporal(client, 2000);
      return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((r) => setTimeout(r, 300));
    }
  }
}
