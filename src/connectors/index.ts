// Opens a connector's source by kind: the one place a new source kind is registered. Each adapter is loaded when
// a source of its kind is first opened, so an API process that never tests a connector does not carry the SMB and
// Microsoft Graph client code (the compiled build puts each in a chunk of its own).
import type { ConnectorKind } from '../db/database';
import type { ConnectorSource } from './source';
import type { SmbSourceSettings } from './smb/smb-source';
import type { GraphEndpoints, SharePointSourceSettings } from './sharepoint/sharepoint-source';

export interface OpenSourceOptions {
  /** Per-request deadline (connect, answer). */
  timeoutMs?: number;
  /** Where Microsoft's identity platform and Graph are (SharePoint). */
  graph: GraphEndpoints;
  /** Called while the source waits on throttling (an activity heartbeats). */
  onWait?: (waitMs: number, status: number) => void;
}

export async function openSource(kind: ConnectorKind, settings: Record<string, unknown>, secret: Record<string, string>, options: OpenSourceOptions): Promise<ConnectorSource> {
  if (kind === 'smb') {
    const { SmbSource } = await import('./smb/smb-source');
    return SmbSource.open(settings as unknown as SmbSourceSettings, secret.password ?? '', options.timeoutMs);
  }
  if (kind === 'sharepoint') {
    const { SharePointSource } = await import('./sharepoint/sharepoint-source');
    return SharePointSource.open(settings as unknown as SharePointSourceSettings, secret.client_secret ?? '', { ...options.graph, requestTimeoutMs: options.timeoutMs, onWait: options.onWait });
  }
  throw new Error(`No source adapter for connector kind ${kind}`);
}
