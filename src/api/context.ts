// What every handler can reach: the app's dependencies and the per-request state.
import type { ParameterizedContext } from 'koa';
import type { Client } from '@temporalio/client';
import type { OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';
import type { Config } from '../config';
import type { Db } from '../db/database';
import type { Logger } from '../logger';
import type { BlobStorage } from '../storage/blob-storage';
import type { TokenVerifier } from '../auth/token-verifier';
import type { DevIssuer } from '../auth/dev-issuer';
import type { Principal } from '../services/principal';
import type { Metrics } from './metrics';
import type { HashingGate } from '../services/hashing-gate';
import type { TaskQueues } from '../temporal/task-queues';
import type { RateLimiter } from '../services/rate-limiter';
import type { Clock } from '../services/clock';
import type { SearchBackends } from '../search/search-backends';
import type { ChangeNotifier } from '../services/change-notifier';

export interface AppDeps {
  config: Config;
  db: Db;
  logger: Logger;
  temporal: Client;
  taskQueues: TaskQueues;
  storage: BlobStorage;
  tokenVerifier: TokenVerifier;
  devIssuer?: DevIssuer;
  metrics: Metrics;
  rateLimiter: RateLimiter;
  /** Time source of windowed limits (replaceable in tests). */
  clock: Clock;
  /** 32 bytes derived from SCAIDRIVE_SECRET_KEY: signs download URLs. */
  secretKey: Buffer;
  /** Bounds concurrent link-password hashing in this process (scrypt shares libuv's pool with file I/O). */
  passwordHashing: HashingGate;
  /** Weaviate and the embedding provider (search). */
  search: SearchBackends;
  /** Wakes long polls and WebSocket hints on commits (LISTEN/NOTIFY, so across replicas). */
  changes: ChangeNotifier;
}

export interface RequestState {
  requestId: string;
  log: Logger;
  principal?: Principal;
  input: { params: any; query: any; body: any };
}

export type AppContext = ParameterizedContext<RequestState> & { deps: AppDeps; openapi: OpenAPIRegistry };
