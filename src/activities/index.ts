// All activities, built once per worker process from shared clients.
import type { Config } from '../config';
import type { Db } from '../db/database';
import type { Logger } from '../logger';
import type { BlobStorage } from '../storage/blob-storage';
import { createIdentityActivities } from './identity.activities';
import { createUploadActivities } from './upload.activities';
import { createMaintenanceActivities } from './maintenance.activities';
import { createConnectorActivities } from './connector.activities';
import { createSearchActivities } from './search.activities';
import type { SearchBackends } from '../search/search-backends';

export interface ActivityDeps {
  config: Config;
  db: Db;
  storage: BlobStorage;
  logger: Logger;
  /** 32 bytes derived from SCAIDRIVE_SECRET_KEY: opens connector secrets. */
  secretKey: Buffer;
  /** Weaviate and the embedding provider. */
  search: SearchBackends;
}

export function createActivities(deps: ActivityDeps) {
  return {
    ...createIdentityActivities(deps),
    ...createUploadActivities(deps),
    ...createMaintenanceActivities(deps),
    ...createConnectorActivities(deps),
    ...createSearchActivities(deps),
  };
}
