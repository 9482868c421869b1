// Business workflow ids: a repeated request for the same thing attaches to the same run. The id's first
// segment is the workflow's kind, which operators filter by (GET /admin/workflows?kind=).
export const workflowIds = {
  identityEvent: (eventId: string) => `identity-event/${eventId}`,
  uploadFinalize: (uploadId: string) => `upload-finalize/${uploadId}`,
  quotaRecalc: (tenantId: string) => `quota-recalc/${tenantId}`,
  trashCleanup: 'trash-cleanup',
  connectorSync: (connectorId: string, jobId: string) => `connector-sync/${connectorId}/${jobId}`,
  /** A connector's Temporal Schedule; each firing runs `connector-schedule/{connector_id}-{time}`, which starts a sync job. */
  connectorSchedule: (connectorId: string) => `connector-schedule/${connectorId}`,
};

/** Each kind and the workflow type (function name) that runs it. */
export const workflowKinds = {
  'identity-event': 'identityEventWorkflow',
  'upload-finalize': 'uploadFinalizationWorkflow',
  'quota-recalc': 'quotaRecalculationWorkflow',
  'trash-cleanup': 'trashCleanupWorkflow',
  'connector-sync': 'connectorSyncWorkflow',
  'connector-schedule': 'connectorScheduledSyncWorkflow',
} as const;

export type WorkflowKind = keyof typeof workflowKinds;

export const workflowKindNames = Object.keys(workflowKinds) as [WorkflowKind, ...WorkflowKind[]];

export const workflowTypeOfKind = (kind: WorkflowKind): string => workflowKinds[kind];

export const workflowKindOf = (workflowId: string): string => workflowId.split('/')[0]!;
