// The custom search attributes every ScaiDrive workflow carries, so admins can filter in the Temporal UI.
import { defineSearchAttributeKey, SearchAttributeType, type TypedSearchAttributes } from '@temporalio/common';

export const ScaiTenantId = defineSearchAttributeKey('ScaiTenantId', SearchAttributeType.KEYWORD);
export const ScaiConnectorId = defineSearchAttributeKey('ScaiConnectorId', SearchAttributeType.KEYWORD);
export const ScaiJobId = defineSearchAttributeKey('ScaiJobId', SearchAttributeType.KEYWORD);
export const ScaiFileId = defineSearchAttributeKey('ScaiFileId', SearchAttributeType.KEYWORD);

export const scaiSearchAttributeNames = ['ScaiTenantId', 'ScaiConnectorId', 'ScaiJobId', 'ScaiFileId'] as const;

export type ScaiAttributes = { tenantId: string; connectorId?: string; jobId?: string; fileId?: string };

/** Builds the typed search attributes for a workflow start. */
export function scaiSearchAttributes(attributes: ScaiAttributes): TypedSearchAttributes {
  const pairs = [{ key: ScaiTenantId, value: attributes.tenantId }];
  if (attributes.connectorId) pairs.push({ key: ScaiConnectorId, value: attributes.connectorId });
  if (attributes.jobId) pairs.push({ key: ScaiJobId, value: attributes.jobId });
  if (attributes.fileId) pairs.push({ key: ScaiFileId, value: attributes.fileId });
  return pairs as unknown as TypedSearchAttributes;
}
