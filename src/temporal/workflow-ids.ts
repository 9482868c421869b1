// Business workflow ids: a repeated request for the same thing attaches to the same run.
export const workflowIds = {
  identityEvent: (eventId: string) => `identity-event/${eventId}`,
  uploadFinalize: (uploadId: string) => `upload-finalize/${uploadId}`,
  quotaRecalc: (tenantId: string) => `quota-recalc/${tenantId}`,
  trashCleanup: 'trash-cleanup',
};
