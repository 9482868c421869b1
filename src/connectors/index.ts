// Opens a connector's source by kind: the one place a new source kind is registered.
import type { ConnectorKind } from '../db/database';
import type { ConnectorSource } from './source';
import { SmbSource, type SmbSourceSettings } from './smb/smb-source';

export async function openSource(kind: ConnectorKind, settings: Record<string, unknown>, secret: Record<string, string>, timeoutMs?: number): Promise<ConnectorSource> {
  if (kind === 'smb') return SmbSource.open(settings as unknown as SmbSourceSettings, secret.password ?? '', timeoutMs);
  throw new Error(`No source adapter for connector kind ${kind}`);
}
