// Runs the dated migrations (listed here, so the set is explicit and bundle-safe) up or down.
// kysely 0.28 (0.29 needs Node 22) exports the migrator from the package root.
import { Migrator, type Migration, type MigrationResultSet } from 'kysely';
import type { Db } from './database';
import * as identity from './migrations/2026_11_22_0001_identity';
import * as files from './migrations/2026_11_22_0002_files';
import * as sharing from './migrations/2026_11_22_0003_sharing';
import * as namesAndTree from './migrations/2026_12_03_0001_names_and_tree';
import * as uploadReservations from './migrations/2026_12_03_0002_upload_reservations';
import * as linkLimits from './migrations/2026_12_03_0003_link_limits';
import * as identityLimits from './migrations/2026_12_03_0004_identity_limits';
import * as connectors from './migrations/2026_12_03_0005_connectors';
import * as connectorDirectories from './migrations/2026_12_03_0006_connector_directories';
import * as connectorDelta from './migrations/2026_12_03_0007_connector_delta';
import * as searchDocuments from './migrations/2026_12_03_0008_search_documents';
import * as searchQueue from './migrations/2026_12_03_0009_search_queue';
import * as sync from './migrations/2026_12_03_0010_sync';
import * as syncConflicts from './migrations/2026_12_03_0011_sync_conflicts';
import * as directTransfer from './migrations/2026_12_03_0012_direct_transfer';
import * as liveUploadHash from './migrations/2026_12_03_0013_live_upload_hash';
import * as workflowRetries from './migrations/2026_12_04_0001_workflow_retries';

export const migrations: Record<string, Migration> = {
  '2026_11_22_0001_identity': identity,
  '2026_11_22_0002_files': files,
  '2026_11_22_0003_sharing': sharing,
  '2026_12_03_0001_names_and_tree': namesAndTree,
  '2026_12_03_0002_upload_reservations': uploadReservations,
  '2026_12_03_0003_link_limits': linkLimits,
  '2026_12_03_0004_identity_limits': identityLimits,
  '2026_12_03_0005_connectors': connectors,
  '2026_12_03_0006_connector_directories': connectorDirectories,
  '2026_12_03_0007_connector_delta': connectorDelta,
  '2026_12_03_0008_search_documents': searchDocuments,
  '2026_12_03_0009_search_queue': searchQueue,
  '2026_12_03_0010_sync': sync,
  '2026_12_03_0011_sync_conflicts': syncConflicts,
  '2026_12_03_0012_direct_transfer': directTransfer,
  '2026_12_03_0013_live_upload_hash': liveUploadHash,
  '2026_12_04_0001_workflow_retries': workflowRetries,
};

export function createMigrator(db: Db): Migrator {
  return new Migrator({ db, provider: { getMigrations: async () => migrations } });
}

function unwrap(result: MigrationResultSet): string[] {
  if (result.error) {
    const failed = result.results?.find((r) => r.status === 'Error');
    throw new Error(`Migration ${failed?.migrationName ?? ''} failed: ${String((result.error as Error).message ?? result.error)}`);
  }
  return (result.results ?? []).map((r) => `${r.direction} ${r.migrationName}`);
}

export async function migrateToLatest(db: Db): Promise<string[]> {
  return unwrap(await createMigrator(db).migrateToLatest());
}

export async function migrateDown(db: Db): Promise<string[]> {
  return unwrap(await createMigrator(db).migrateDown());
}

/** Names of migrations not yet applied (doctor and readiness report them). */
export async function pendingMigrations(db: Db): Promise<string[]> {
  const all = await createMigrator(db).getMigrations();
  return all.filter((m) => !m.executedAt).map((m) => m.name);
}
