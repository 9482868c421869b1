// Named activity option sets — the only ones workflows use: short database/storage I/O, long transfers that
// heartbeat, hashing a whole upload, and long maintenance passes.
import type { ActivityOptions, LocalActivityOptions } from '@temporalio/workflow';

export const shortIo: ActivityOptions = {
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '30 seconds', maximumAttempts: 20 },
};

/**
 * Short database/storage steps run as local activities: in the worker, inside the workflow task, without a round
 * trip through the task queue per step (what made a finalize with nothing left to hash take ~0.8 s).
 */
export const shortLocalIo: LocalActivityOptions = {
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '30 seconds', maximumAttempts: 20 },
};

export const longTransfer: ActivityOptions = {
  startToCloseTimeout: '6 hours',
  heartbeatTimeout: '60 seconds',
  retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: 10 },
};

/** Hashing an upload: long, but with a short heartbeat so a killed worker is noticed and another takes over. */
export const uploadHashing: ActivityOptions = {
  startToCloseTimeout: '6 hours',
  heartbeatTimeout: '15 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '30 seconds', maximumAttempts: 20 },
};

/** A maintenance pass over a whole tenant or the whole store (recalculation, trash cleanup, sweeps). */
export const maintenancePass: ActivityOptions = {
  startToCloseTimeout: '1 hour',
  heartbeatTimeout: '2 minutes',
  retry: { initialInterval: '5 seconds', backoffCoefficient: 2, maximumInterval: '5 minutes', maximumAttempts: 10 },
};

/** One long statement over a tenant (quota recalculation): no heartbeat possible mid-statement. */
export const tenantRecalculation: ActivityOptions = {
  startToCloseTimeout: '30 minutes',
  retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumAttempts: 10 },
};

/**
 * Connector sync: one page of a source directory (list, diff, import its files). Heartbeats per file, so a
 * killed worker is noticed within the heartbeat timeout; an unreachable source is retried a few times, then
 * the job fails with 502 semantics.
 */
export const connectorPage: ActivityOptions = {
  startToCloseTimeout: '2 hours',
  heartbeatTimeout: '30 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '10 seconds', maximumAttempts: 4 },
};

/** Connector job bookkeeping (start, finish, trash vanished files): database only. */
export const connectorBookkeeping: ActivityOptions = {
  startToCloseTimeout: '10 minutes',
  heartbeatTimeout: '1 minute',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '30 seconds', maximumAttempts: 20 },
};

/**
 * The longest a finalization can take (hashing's start-to-close plus slack): a session still `finalizing`
 * this long after it expired has no workflow left working on it, and expiry may take it.
 */
export const finalizationGraceHours = 7;

/**
 * Indexing one file version: extraction and embedding take a while for a big document; the activity heartbeats
 * every few seconds, so a killed worker is noticed within 20 s.
 * An unreachable Weaviate or embedding provider is retried with backoff for about an hour before the version is
 * marked failed (an admin re-index queues it again).
 */
export const searchIndexing: ActivityOptions = {
  startToCloseTimeout: '30 minutes',
  heartbeatTimeout: '20 seconds',
  retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '5 minutes', maximumAttempts: 15 },
};
