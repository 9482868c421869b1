// Activities of the connector-sync workflow. Each is idempotent: a retried page re-lists and finds imported
// files unchanged (or recovers an import cut short), and job transitions are conditional UPDATEs.
import { ApplicationFailure, Context, heartbeat } from '@temporalio/activity';
import type { Config } from '../config';
import type { Db } from '../db/database';
import type { Logger } from '../logger';
import type { BlobStorage } from '../storage/blob-storage';
import { openSource } from '../connectors';
import { SourceAuthError, SourceResyncRequiredError, SourceUnreachableError, type ConnectorSource } from '../connectors/source';
import { syncChangesPage } from '../services/connector-delta.service';
import { appendJobLog, connectorSecret, failJob } from '../services/connectors.service';
import { AppError } from '../errors';
import {
  beginJob,
  createScheduledJob,
  finishJob,
  loadRunningJob,
  markJobCanceled,
  saveSyncCursor,
  syncPage,
  syncPlan,
  trashVanished,
  type SyncPlan,
  type PageResult,
  type PendingDirectory,
} from '../services/connector-sync.service';

export interface BatchInput {
  jobId: string;
  /** The walk's stack: the last entry is walked next. */
  pending: PendingDirectory[];
  /** Stop after about this many entries (the run's continue-as-new threshold); capped by batchLimits.items. */
  maxItems?: number;
}

export interface BatchResult {
  /** The job is no longer running (canceled, connector deleted): the workflow stops. */
  stopped: boolean;
  pending: PendingDirectory[];
  /** Entries listed by this batch (continue-as-new counts them). */
  items: number;
}

export interface ChangesBatchInput {
  jobId: string;
  /** null: a full enumeration from the start; else a page link or the last run's resume cursor. */
  cursor: string | null;
  maxItems?: number;
}

export interface ChangesBatchResult {
  stopped: boolean;
  /** Where the enumeration continues; null when it reached its end (then resumeCursor is set) or must restart. */
  cursor: string | null;
  resumeCursor: string | null;
  items: number;
  /** The cursor expired: start again with a full enumeration. */
  resync: boolean;
}

/** Where a retried batch picks up: the state after the last page its previous attempt finished. */
interface WalkCheckpoint {
  pending: PendingDirectory[];
  items: number;
}

interface ChangesCheckpoint {
  cursor: string | null;
  items: number;
}

/** The checkpoint in the previous attempt's last heartbeat (Temporal hands it to the retry), if any. */
function checkpointOf<T>(): T | undefined {
  const details = Context.current().info.heartbeatDetails as { checkpoint?: T } | undefined;
  return details?.checkpoint;
}

/** One batch walks until it has listed this many entries or run this long (whichever first). */
const batchLimits = { items: 1000, milliseconds: 20_000 };

export interface ConnectorActivityDeps {
  config: Pick<Config, 'graph'>;
  db: Db;
  storage: BlobStorage;
  logger: Logger;
  secretKey: Buffer;
}

/** Failure types the workflow maps to job outcomes (HTTP semantics in the job row). */
export const connectorFailureTypes = {
  auth: 'CONNECTOR_AUTH_FAILED',
  unreachable: 'CONNECTOR_UNREACHABLE',
  secret: 'CONNECTOR_SECRET_KEY_MISMATCH',
  targetGone: 'CONNECTOR_TARGET_GONE',
} as const;

/**
 * Open source sessions per job in this worker, so the pages of one job reuse one connection (and a
 * directory's page tokens stay valid). Closed when the job ends or after a minute unused.
 */
const openSources = new Map<string, { source: ConnectorSource; timer: NodeJS.Timeout }>();

async function closeSource(jobId: string): Promise<void> {
  const open = openSources.get(jobId);
  if (!open) return;
  openSources.delete(jobId);
  clearTimeout(open.timer);
  await open.source.close().catch(() => undefined);
}

export function createConnectorActivities(deps: ConnectorActivityDeps) {
  async function sourceFor(jobId: string, context: NonNullable<Awaited<ReturnType<typeof loadRunningJob>>>): Promise<ConnectorSource> {
    const open = openSources.get(jobId);
    if (open) {
      open.timer.refresh();
      return open.source;
    }
    let secret;
    try {
      secret = connectorSecret(deps.secretKey, context.connector);
    } catch (error) {
      if (error instanceof AppError) throw ApplicationFailure.create({ nonRetryable: true, type: connectorFailureTypes.secret, message: error.detail });
      throw error;
    }
    const source = await openSource(context.connector.kind, context.connector.settings, secret, {
      graph: deps.config.graph,
      // Waiting out a source's throttling (Retry-After) keeps the current activity alive.
      onWait: (waitMs, status) => {
        try {
          heartbeat({ phase: 'throttled by the source', status, wait_ms: waitMs });
        } catch {
          // not inside an activity (nothing to keep alive)
        }
      },
    });
    const timer = setTimeout(() => void closeSource(jobId), 60_000);
    timer.unref();
    openSources.set(jobId, { source, timer });
    return source;
  }

  /** Source errors as Temporal failures: rejected credentials are final; unreachable is retried by the policy. */
  function asFailure(error: unknown): unknown {
    if (error instanceof SourceAuthError) return ApplicationFailure.create({ nonRetryable: true, type: connectorFailureTypes.auth, message: error.message });
    if (error instanceof SourceUnreachableError) return ApplicationFailure.create({ nonRetryable: false, type: connectorFailureTypes.unreachable, message: error.message });
    return error;
  }

  return {
    /** queued → running; false when the job was canceled before it began. */
    async beginConnectorJob(jobId: string, runId: string): Promise<boolean> {
      return beginJob(deps.db, jobId, runId);
    },

    /**
     * Walks the pending directories page by page (depth first) for up to a batch's items or time, and returns
     * what is left: one activity per batch, not per directory, keeps the workflow's history and round trips
     * small. Heartbeat details carry the directory, the file and the counts. A retried batch starts again from
     * its input (pages it already did find their files unchanged).
     */
    async syncConnectorBatch(input: BatchInput): Promise<BatchResult> {
      const started = Date.now();
      // A retried attempt picks up after the last page the previous attempt finished (its heartbeat checkpoint).
      const resumed = checkpointOf<WalkCheckpoint>();
      const pending = [...(resumed?.pending ?? input.pending)];
      let items = resumed?.items ?? 0;
      let checkpoint: WalkCheckpoint = { pending: [...pending], items };
      if (resumed) await appendJobLog(deps.db, input.jobId, `attempt ${Context.current().info.attempt}: resumed after the last finished page (${pending.length} directories to go)`);
      // A retried attempt never trusts the connection an earlier attempt used (it may have broken or hung).
      if (Context.current().info.attempt > 1) await closeSource(input.jobId);
      const maxItems = Math.min(input.maxItems ?? batchLimits.items, batchLimits.items);
      while (pending.length > 0 && items < maxItems && Date.now() - started < batchLimits.milliseconds) {
        const context = await loadRunningJob(deps.db, input.jobId);
        if (!context) {
          await closeSource(input.jobId);
          return { stopped: true, pending: [], items };
        }
        // A target folder deleted or purged since the connector was set up fails the job once, not every file.
        const target = await deps.db.selectFrom('nodes').select(['deleted_at']).where('id', '=', context.connector.target_folder_id).executeTakeFirst();
        if (!target || target.deleted_at) {
          throw ApplicationFailure.create({ nonRetryable: true, type: connectorFailureTypes.targetGone, message: 'The target folder was deleted: choose another target_folder_id' });
        }
        const next = pending.pop()!;
        let page: PageResult;
        try {
          const source = await sourceFor(input.jobId, context);
          const cancelled = Context.current().cancellationSignal;
          page = await syncPage(
            deps,
            context,
            source,
            { jobId: input.jobId, directory: next.directory, pageToken: next.pageToken, deadline: next.deadline },
            (progress) => {
              if (!cancelled.aborted) heartbeat({ ...progress, pendingDirectories: pending.length, checkpoint });
            },
            () => cancelled.aborted,
          );
        } catch (error) {
          // A broken connection is not reused by the retry.
          await closeSource(input.jobId);
          throw asFailure(error);
        }
        if (page.stopped) return { stopped: true, pending: [], items };
        // Subdirectories below, the rest of this directory on top: a directory's pages run back to back.
        for (const directory of [...page.subdirectories].reverse()) pending.push({ directory, pageToken: null });
        if (page.nextPageToken) pending.push({ directory: next.directory, pageToken: page.nextPageToken, deadline: page.deadline });
        items += page.items;
        checkpoint = { pending: [...pending], items };
        if (!Context.current().cancellationSignal.aborted) heartbeat({ directory: next.directory || '/', pendingDirectories: pending.length, checkpoint });
      }
      return { stopped: false, pending, items };
    },

    /** How this job reads its source: a directory walk, or the change feed from the stored cursor. */
    async connectorSyncPlan(jobId: string): Promise<SyncPlan | null> {
      const context = await loadRunningJob(deps.db, jobId);
      return context ? syncPlan(context.connector) : null;
    },

    /**
     * Pages of the source's change feed from `cursor` for up to a batch's items or time. A cursor the source no
     * longer accepts comes back as `resync` (the workflow starts a full enumeration).
     */
    async syncConnectorChanges(input: ChangesBatchInput): Promise<ChangesBatchResult> {
      const started = Date.now();
      // A retried attempt picks up after the last page the previous attempt finished (its heartbeat checkpoint).
      const resumed = checkpointOf<ChangesCheckpoint>();
      let cursor = resumed ? resumed.cursor : input.cursor;
      let items = resumed?.items ?? 0;
      let checkpoint: ChangesCheckpoint = { cursor, items };
      if (resumed) await appendJobLog(deps.db, input.jobId, `attempt ${Context.current().info.attempt}: resumed after the last finished page of the change feed`);
      if (Context.current().info.attempt > 1) await closeSource(input.jobId);
      const maxItems = Math.min(input.maxItems ?? batchLimits.items, batchLimits.items);
      for (;;) {
        const context = await loadRunningJob(deps.db, input.jobId);
        if (!context) {
          await closeSource(input.jobId);
          return { stopped: true, cursor: null, resumeCursor: null, items, resync: false };
        }
        let page;
        try {
          const source = await sourceFor(input.jobId, context);
          const cancelled = Context.current().cancellationSignal;
          page = await syncChangesPage(deps, context, source, cursor, (progress) => {
            if (!cancelled.aborted) heartbeat({ ...progress, items, checkpoint });
          }, () => cancelled.aborted);
        } catch (error) {
          if (error instanceof SourceResyncRequiredError) {
            await appendJobLog(deps.db, input.jobId, 'the source asked for a full resync (its change cursor expired): enumerating everything again');
            return { stopped: false, cursor: null, resumeCursor: null, items, resync: true };
          }
          await closeSource(input.jobId);
          throw asFailure(error);
        }
        if (page.stopped) return { stopped: true, cursor: null, resumeCursor: null, items, resync: false };
        items += page.items;
        if (page.resumeCursor || !page.nextPage) return { stopped: false, cursor: null, resumeCursor: page.resumeCursor, items, resync: false };
        cursor = page.nextPage;
        checkpoint = { cursor, items };
        if (!Context.current().cancellationSignal.aborted) heartbeat({ items, checkpoint });
        if (items >= maxItems || Date.now() - started >= batchLimits.milliseconds) return { stopped: false, cursor, resumeCursor: null, items, resync: false };
      }
    },

    async trashVanishedFiles(jobId: string): Promise<number> {
      const context = await loadRunningJob(deps.db, jobId);
      if (!context) return 0;
      return trashVanished(deps, context, (done) => heartbeat({ phase: 'trash vanished files', deleted: done }));
    },

    /** Ends the job; a change-feed job also keeps where the next run continues (only when nothing failed). */
    async finishConnectorJob(jobId: string, resumeCursor?: string | null): Promise<string | null> {
      await closeSource(jobId);
      if (resumeCursor) await saveSyncCursor(deps.db, jobId, resumeCursor);
      return finishJob(deps.db, jobId);
    },

    async failConnectorJob(jobId: string, code: string, status: number, detail: string): Promise<void> {
      await closeSource(jobId);
      await failJob(deps.db, jobId, { code, status, detail });
    },

    async cancelConnectorJob(jobId: string): Promise<void> {
      await closeSource(jobId);
      await markJobCanceled(deps.db, jobId);
    },

    async createScheduledConnectorJob(connectorId: string): Promise<{ jobId: string; workflowId: string } | null> {
      return createScheduledJob(deps.db, connectorId);
    },
  };
}

export type ConnectorActivities = ReturnType<typeof createConnectorActivities>;
