// What the upload handlers pass to the upload services: the app's db and storage, metrics callbacks, and the
// process-wide upload limits (one set per app, so every request shares the same buffer budget).
import type { AppContext, AppDeps } from './context';
import type { UploadDeps } from '../services/upload-sessions.service';
import { ChunkBufferPool } from '../services/chunk-buffers';
import { ByteBudget, ConcurrencyLimiter, type UploadLimits } from '../services/upload-limits';

const limitsByApp = new WeakMap<AppDeps, UploadLimits>();

/** The upload limits of this app (created on first use from its config). */
export function uploadLimits(deps: AppDeps): UploadLimits {
  let limits = limitsByApp.get(deps);
  if (!limits) {
    const config = deps.config.uploads;
    const buffer = new ByteBudget(config.bufferBudgetBytes);
    limits = {
      buffer,
      // Spare chunk buffers kept for reuse, within the same budget (see chunk-buffers.ts).
      chunkBuffers: new ChunkBufferPool(buffer),
      chunksPerUser: new ConcurrencyLimiter(config.maxConcurrentChunksPerUser),
      bodyIdleTimeoutMs: config.bodyTimeoutSeconds * 1000,
      maxOpenSessionsPerUser: config.maxOpenSessionsPerUser,
    };
    limitsByApp.set(deps, limits);
  }
  return limits;
}

export function uploadDeps(ctx: AppContext): UploadDeps {
  return {
    db: ctx.deps.db,
    storage: ctx.deps.storage,
    onDeduplicated: () => ctx.deps.metrics.chunksDeduplicated.inc(),
    onBytesReceived: (n) => ctx.deps.metrics.bytesUploaded.inc(n),
    limits: uploadLimits(ctx.deps),
    followHash: { onError: (error) => ctx.deps.logger.warn({ err: error }, 'keeping an upload hash up to date failed (finalize hashes the rest)') },
  };
}
