// Every workflow, for the worker bundle. Workflow code is deterministic: no I/O, no clocks, no randomness.
export { identityEventWorkflow } from './identity-event.workflow';
export { uploadFinalizationWorkflow } from './upload-finalization.workflow';
export { trashCleanupWorkflow } from './trash-cleanup.workflow';
export { quotaRecalculationWorkflow } from './quota-recalculation.workflow';
export { connectorSyncWorkflow, connectorScheduledSyncWorkflow } from './connector-sync.workflow';
export { vectorizeWorkflow } from './vectorize.workflow';
