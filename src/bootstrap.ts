// Builds the shared clients (database, storage, Temporal, token verification, metrics) from the config.
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Config } from './config';
import { createDb } from './db/database';
import { createLogger } from './logger';
import { createBlobStorage } from './storage/create-blob-storage';
import { createTemporalClient } from './temporal/client';
import { taskQueues } from './temporal/task-queues';
import { loadDevIssuer } from './auth/dev-issuer';
import { createTokenVerifier } from './auth/token-verifier';
import { createMetrics } from './api/metrics';
import { createRateLimiter } from './services/rate-limiter';
import { createSystemClock } from './services/clock';
import type { AppDeps } from './api/context';
import { HashingGate } from './services/hashing-gate';
import { SearchBackends } from './search/search-backends';
import { ChangeNotifier } from './services/change-notifier';

export interface Services extends AppDeps {
  close(): Promise<void>;
}

/**
 * The server secret: SCAIDRIVE_SECRET_KEY, or outside production a random one kept in the data dir so
 * every process of a dev stack agrees.
 */
async function loadSecretKey(config: Config): Promise<Buffer> {
  if (config.secretKey) return createHash('sha256').update(config.secretKey).digest();
  const file = path.join(config.dataDir, 'secret-key');
  try {
    return Buffer.from(await readFile(file, 'utf8'), 'hex');
  } catch {
    const key = randomBytes(32);
    await mkdir(config.dataDir, { recursive: true });
    await writeFile(file, key.toString('hex'), { mode: 0o600, flag: 'wx' }).catch(() => undefined);
    return Buffer.from(await readFile(file, 'utf8'), 'hex');
  }
}

export async function createServices(config: Config, component = 'api'): Promise<Services> {
  const logger = createLogger(config.logLevel, { component });
  // A worker-only process runs long maintenance statements; everything serving requests gets the short bound.
  const statementTimeoutSeconds = component === 'worker' ? config.database.workerStatementTimeoutSeconds : config.database.statementTimeoutSeconds;
  const db = createDb(config.database.url, { poolSize: config.database.poolSize, statementTimeoutMs: statementTimeoutSeconds * 1000 });
  const storage = createBlobStorage(config.storage);
  const temporal = createTemporalClient(config);
  const devIssuer = config.auth.devIssuer ? await loadDevIssuer(config.dataDir, config.publicUrl, config.auth.audience) : undefined;
  const tokenVerifier = createTokenVerifier(config, devIssuer);
  const secretKey = await loadSecretKey(config);
  const passwordHashing = new HashingGate(config.passwordHashing);
  const rateLimiter = createRateLimiter(config.redisUrl);
  const search = SearchBackends.fromConfig(config);
  const changes = new ChangeNotifier(config.database.url, logger.child({ component: 'change-notifier' }));
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
    secretKey,
    passwordHashing,
    rateLimiter,
    clock: createSystemClock(),
    search,
    changes,
    async close() {
      await changes.close();
      await search.close();
      await passwordHashing.close();
      await rateLimiter.close();
      await temporal.connection.close().catch(() => undefined);
      await db.destroy();
    },
  };
}
