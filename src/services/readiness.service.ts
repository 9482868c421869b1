// Dependency checks shared by GET /health/ready and `scaidrive doctor`.
import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import type { AppDeps } from '../api/context';
import { pendingMigrations } from '../db/migrator';
import { pingTemporal } from '../temporal/client';

export interface CheckResult {
  status: 'ok' | 'error' | 'not_configured';
  latency_ms?: number;
  code?: string;
  error?: string;
  info?: Record<string, unknown>;
}

export async function timed(code: string, timeoutMs: number, check: () => Promise<Record<string, unknown> | void>): Promise<CheckResult> {
  const started = Date.now();
  let timer: NodeJS.Timeout | undefined;
  try {
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs);
    });
    const info = await Promise.race([check(), timeout]);
    return { status: 'ok', latency_ms: Date.now() - started, ...(info ? { info } : {}) };
  } catch (error) {
    return { status: 'error', latency_ms: Date.now() - started, code, error: (error as Error).message || String(error) };
  } finally {
    clearTimeout(timer);
  }
}

export const checkDatabase = (deps: Pick<AppDeps, 'db'>) =>
  timed('DATABASE_UNAVAILABLE', 3000, async () => {
    await sql`select 1`.execute(deps.db);
    const pending = await pendingMigrations(deps.db);
    if (pending.length > 0) throw new Error(`migrations pending: ${pending.join(', ')}`);
  });

export const checkTemporal = (deps: Pick<AppDeps, 'temporal'>) => timed('TEMPORAL_UNAVAILABLE', 3500, () => pingTemporal(deps.temporal, 3000));

export const checkStorage = (deps: Pick<AppDeps, 'storage'>) =>
  timed('STORAGE_UNAVAILABLE', 5000, async () => {
    const key = `_health/${randomUUID()}`;
    const payload = Buffer.from('scaidrive readiness probe');
    await deps.storage.put(key, payload);
    const stream = await deps.storage.get(key);
    const chunks: Buffer[] = [];
    for await (const chunk of stream) chunks.push(chunk as Buffer);
    await deps.storage.delete(key);
    if (!Buffer.concat(chunks).equals(payload)) throw new Error('read back different bytes');
    return { driver: deps.storage.driver };
  });

export const checkWeaviate = (deps: Pick<AppDeps, 'config'>): Promise<CheckResult> => {
  const url = deps.config.weaviateUrl;
  if (!url) return Promise.resolve({ status: 'not_configured' });
  return timed('WEAVIATE_UNAVAILABLE', 3000, async () => {
    const response = await fetch(`${url}/v1/.well-known/ready`, { signal: AbortSignal.timeout(2500) });
    if (!response.ok) throw new Error(`answered ${response.status}`);
  });
};

/** The embedding provider answers a small request (at most every 30 s; the local provider always does). */
export const checkEmbedding = (deps: Pick<AppDeps, 'search'>) =>
  timed('EMBEDDING_UNAVAILABLE', 5000, async () => {
    await deps.search.checkEmbeddings();
    return { space: deps.search.embeddings.space };
  });

/**
 * The dependencies whose failure makes the API not ready. Weaviate and the embedding provider are reported but
 * do not gate readiness: without them keyword search and everything else still work.
 */
export async function readiness(deps: AppDeps) {
  const [database, temporal, storage, weaviate, embedding] = await Promise.all([checkDatabase(deps), checkTemporal(deps), checkStorage(deps), checkWeaviate(deps), checkEmbedding(deps)]);
  const checks = { database, temporal, storage, weaviate, embedding };
  const failing = (['database', 'temporal', 'storage'] as const).filter((name) => checks[name].status === 'error');
  return { ready: failing.length === 0, failing, checks };
}
