// Every workflow, for the worker bundle. Workflow code is deterministic: no I/O, no clocks, no randomness.
export { identityEventWorkflow } from './identity-event.workflow';
