// Turns vectorization queue entries into workflows (issue #11). It LISTENs for the NOTIFY a commit sends (so a
// fresh upload starts indexing at once) and also looks every few seconds (a missed notification, an entry whose
// start failed, Temporal back after an outage). Runs next to the search workers; several replicas may run it:
// entries are claimed with SKIP LOCKED and a workflow id is started only once while it runs.
import pg from 'pg';
import { WorkflowExecutionAlreadyStartedError, type Client } from '@temporalio/client';
import type { Db } from '../db/database';
import type { Logger } from '../logger';
import type { TaskQueues } from '../temporal/task-queues';
import { scaiSearchAttributes } from '../temporal/search-attributes';
import type { SearchBackends } from '../search/search-backends';
import { requeuedSignal, vectorizeWorkflow, vectorizeWorkflowId } from '../workflows/vectorize.workflow';
import { claimForDispatch, pendingRemovals, releaseClaims, removalsDone, searchQueueChannel, type QueueEntry } from './search-queue.service';

export interface SearchDispatcherDeps {
  db: Db;
  databaseUrl: string;
  temporal: Client;
  taskQueues: TaskQueues;
  search: SearchBackends;
  logger: Logger;
  /**
   * Dispatch only these tenants' entries. For test stacks sharing one database (each with its own task queues and
   * Weaviate), so one stack never starts another's work; a deployment dispatches every tenant.
   */
  onlyTenants?: () => readonly string[];
}

const batchSize = 100;

export class SearchDispatcher {
  private listener: pg.Client | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;

  constructor(
    private readonly deps: SearchDispatcherDeps,
    private readonly intervalMs = 5_000,
  ) {}

  async start(): Promise<void> {
    await this.listen();
    this.timer = setInterval(() => this.wake(), this.intervalMs);
    this.wake();
  }

  private async listen(): Promise<void> {
    const client = new pg.Client({ connectionString: this.deps.databaseUrl });
    client.on('notification', () => this.wake());
    client.on('error', (error) => {
      // The next tick of the interval still dispatches; the listener is set up again.
      this.deps.logger.warn({ err: error }, 'search dispatcher: notification connection lost');
      this.listener = undefined;
      if (!this.stopped) setTimeout(() => void this.listen().catch(() => undefined), this.intervalMs).unref();
    });
    await client.connect();
    await client.query(`listen ${searchQueueChannel}`);
    this.listener = client;
  }

  /** Runs a pass now, or right after the one running. */
  wake(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.pass()
      .catch((error: unknown) => this.deps.logger.warn({ err: error }, 'search dispatcher pass failed'))
      .finally(() => {
        this.running = undefined;
        if (this.again) {
          this.again = false;
          this.wake();
        }
      });
  }

  private async pass(): Promise<void> {
    const onlyTenants = this.deps.onlyTenants?.();
    for (;;) {
      const entries = await claimForDispatch(this.deps.db, batchSize, { onlyTenants });
      const failed = await this.startAll(entries);
      await releaseClaims(this.deps.db, failed);
      // Temporal refused: leave the rest to the next tick instead of spinning.
      if (entries.length < batchSize || failed.length > 0 || this.stopped) break;
    }
    // Entries started long ago and still pending: one batch per pass (a long backlog in Temporal is normal, and
    // starting a running workflow again is a no-op, so there is no hurry).
    const stale = await claimForDispatch(this.deps.db, batchSize, { stale: true, onlyTenants });
    await releaseClaims(this.deps.db, await this.startAll(stale));
    await this.removeVanishedFiles();
  }

  /** Starts a workflow per entry; returns the version ids whose start failed. */
  private async startAll(entries: QueueEntry[]): Promise<string[]> {
    const failed: string[] = [];
    await Promise.all(
      entries.map(async (entry) => {
        try {
          // Signal-with-start: a run still going (even past its last status write) runs once more for this entry.
          await this.deps.temporal.workflow.signalWithStart(vectorizeWorkflow, {
            signal: requeuedSignal,
            signalArgs: [],
            workflowId: vectorizeWorkflowId(entry.file_id, entry.version_id),
            taskQueue: entry.priority === 'high' ? this.deps.taskQueues['search-high'] : this.deps.taskQueues['search-low'],
            args: [{ tenantId: entry.tenant_id, fileId: entry.file_id, versionId: entry.version_id }],
            typedSearchAttributes: scaiSearchAttributes({ tenantId: entry.tenant_id, fileId: entry.file_id }),
            // A finished run may be followed by another (a re-index, a move to another space).
            workflowIdReusePolicy: 'ALLOW_DUPLICATE',
          });
        } catch (error) {
          if (error instanceof WorkflowExecutionAlreadyStartedError) return;
          failed.push(entry.version_id);
          this.deps.logger.warn({ err: error, version_id: entry.version_id }, 'search dispatcher: workflow start failed');
        }
      }),
    );
    return failed;
  }

  /** Deleted files' passages leave Weaviate (the rows stay queued while Weaviate is unreachable). */
  private async removeVanishedFiles(): Promise<void> {
    const removals = await pendingRemovals(this.deps.db, batchSize, this.deps.onlyTenants?.());
    if (removals.length === 0) return;
    if (!this.deps.search.vectorStoreConfigured) {
      // No vector store, no passages to remove.
      await removalsDone(this.deps.db, removals.map((r) => r.id));
      return;
    }
    const store = await this.deps.search.passages();
    for (const removal of removals) await store.deleteFile(removal.tenant_id, removal.file_id);
    await removalsDone(this.deps.db, removals.map((r) => r.id));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.running;
    await this.listener?.end().catch(() => undefined);
  }
}
