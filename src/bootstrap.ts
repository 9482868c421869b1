// Builds the shared clients (database, storage, Temporal, token verification, metrics) from the config.
import type { Config } from './config';
import { createDb } from './db/database';
import { createLogger } from './logger';
import { createBlobStorage } from './storage/blob-storage';
import { createTemporalClient } from './temporal/client';
import { taskQueues } from './temporal/task-queues';
import { loadDevIssuer } from './auth/dev-issuer';
import { createTokenVerifier } from './auth/token-verifier';
import { createMetrics } from './api/metrics';
import type { AppDeps } from './api/context';

export interface Services extends AppDeps {
  close(): Promise<void>;
}

export async function createServices(config: Config, component = 'api'): Promise<Services> {
  const logger = createLogger(config.logLevel, { component });
  const db = createDb(config.database.url, config.database.poolSize);
  const storage = createBlobStorage(config.storage);
  const temporal = createTemporalClient(config);
  const devIssuer = config.auth.devIssuer ? await loadDevIssuer(config.dataDir, config.publicUrl, config.auth.audience) : undefined;
  const tokenVerifier = createTokenVerifier(config, devIssuer);
  return {
    config,
    logger,
    db,
    storage,
    temporal,
    taskQueues: taskQueues(config.temporal.taskQueuePrefix),
    devIssuer,
    tokenVerifier,
    metrics: createMetrics(),
    async close() {
      await temporal.connection.close().catch(() => undefined);
      await db.destroy();
    },
  };
}
