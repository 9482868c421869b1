// Opens a connector's source by kind: the one place a new source kind is registered.
import type { ConnectorKind } from '../db/database';
import type { ConnectorSource } from './source';
import { SmbSource, type SmbSourceSettings } from './smb/smb-source';
import { SharePointSource, type GraphEndpoints, type SharePointSourceSettings } from './sharepoint/sharepoint-source';

export interface OpenSourceOptions {
  /** Per-request deadline (connect, answer). */
  timeoutMs?: number;
  /** Where Microsoft's identity platform and Graph are (SharePoint). */
  graph: GraphEndpoints;
  /** Called while the source waits on throttling (an activity heartbeats). */
  onWait?: (waitMs: number, status: number) => void;
}

export async function openSource(kind: ConnectorKind, settings: Record<string, unknown>, secret: Record<string, string>, options: OpenSourceOptions): Promise<ConnectorSource> {
  if (kind === 'smb') return SmbSource.open(settings as unknown as SmbSourceSettings, secret.password ?? '', options.timeoutMs);
  if (kind === 'sharepoint') {
    return SharePointSource.open(settings as unknown as SharePointSourceSettings, secret.client_secret ?? '', { ...options.graph, requestTimeoutMs: options.timeoutMs, onWait: options.onWait });
  }
  throw new Error(`No source adapter for connector kind ${kind}`);
}
