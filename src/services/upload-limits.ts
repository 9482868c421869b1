// Per-process limits on upload bodies (spec §13 "per-process budgets for buffered bytes"): a byte budget for
// chunk bytes held in memory and a per-user cap on concurrent chunk PUTs (the stalled-body timeout is applied
// where bodies are read, in src/api/request-body.ts).
import { AppError } from '../errors';
import type { ChunkBufferPool } from './chunk-buffers';

/** Seconds a client is told to wait when the budget or its concurrency cap is exhausted. */
const retryAfterSeconds = '2';

/** Bytes that may be buffered at once. A request larger than the whole budget is admitted only alone, so it can still progress. */
export class ByteBudget {
  private used = 0;
  private highWater = 0;
  constructor(readonly capacity: number) {}

  get inUse(): number {
    return this.used;
  }

  /** The most ever held at once (tests and diagnostics). */
  get peak(): number {
    return this.highWater;
  }

  tryTake(bytes: number): boolean {
    if (this.used + bytes > this.capacity && !(this.used === 0 && bytes > this.capacity)) return false;
    this.used += bytes;
    this.highWater = Math.max(this.highWater, this.used);
    return true;
  }

  give(bytes: number): void {
    this.used = Math.max(0, this.used - bytes);
  }
}

/** Counts requests in flight per key (a user id) against a cap. */
export class ConcurrencyLimiter {
  private readonly counts = new Map<string, number>();
  constructor(readonly limit: number) {}

  inFlight(key: string): number {
    return this.counts.get(key) ?? 0;
  }

  tryEnter(key: string): boolean {
    const current = this.counts.get(key) ?? 0;
    if (current >= this.limit) return false;
    this.counts.set(key, current + 1);
    return true;
  }

  leave(key: string): void {
    const current = this.counts.get(key) ?? 0;
    if (current <= 1) this.counts.delete(key);
    else this.counts.set(key, current - 1);
  }
}

export interface UploadLimits {
  buffer: ByteBudget;
  /** Chunk-sized buffers handed out again once a request is done with them. */
  chunkBuffers?: ChunkBufferPool;
  chunksPerUser: ConcurrencyLimiter;
  /** A body that sends nothing for this long is answered 408. */
  bodyIdleTimeoutMs: number;
  maxOpenSessionsPerUser: number;
}

/** What `work` under withBufferBudget may do with its reservation (and its pooled buffer) instead of releasing it. */
export interface BudgetLease {
  /** A buffer of the reserved size from the pool (with a pool; the caller reads the bytes into it). */
  buffer?: Buffer;
  /** The bytes stay in memory (e.g. held for hashing): whoever took them over gives them back to the budget later. */
  handOver(): void;
  /** `buffer` is no longer referenced: back to the pool with the reservation (or released when the pool is full). */
  recycle(): void;
}

/**
 * Runs `work` holding `bytes` of the buffer budget (503 when it is exhausted); released on every exit path, unless
 * `work` hands the reservation over or recycles its buffer. Spare pooled buffers count against the budget too and
 * are let go to make room when it is full. With `buffer` (and a pool), `work` gets a buffer of `bytes`: a spare one
 * of that size comes with its share of the budget, so spare buffers never turn a request away.
 */
export async function withBufferBudget<T>(
  limits: UploadLimits | undefined,
  bytes: number,
  work: (lease: BudgetLease) => Promise<T>,
  options: { buffer?: boolean } = {},
): Promise<T> {
  if (!limits) return work({ handOver: () => undefined, recycle: () => undefined });
  const pool = options.buffer ? limits.chunkBuffers : undefined;
  let buffer = pool?.takeReserved(bytes);
  if (!buffer) {
    if (!limits.buffer.tryTake(bytes)) {
      limits.chunkBuffers?.makeRoom(bytes);
      if (!limits.buffer.tryTake(bytes)) {
        throw new AppError(503, 'SERVICE_UNAVAILABLE', 'The server is buffering too many upload bytes right now; retry shortly', { reason: 'upload_buffer_budget' }, { 'Retry-After': retryAfterSeconds });
      }
    }
    buffer = pool ? (bytes >= pool.minSize ? Buffer.allocUnsafeSlow(bytes) : Buffer.allocUnsafe(bytes)) : undefined;
  }
  let released = false;
  try {
    return await work({
      buffer,
      handOver: () => void (released = true),
      recycle: () => void (released = buffer !== undefined && pool !== undefined && pool.keep(buffer)),
    });
  } finally {
    if (!released) limits.buffer.give(bytes);
  }
}

/** Runs `work` as one of the user's concurrent chunk uploads (429 beyond the cap); released on every exit path. */
export async function withChunkSlot<T>(limits: UploadLimits | undefined, userId: string, work: () => Promise<T>): Promise<T> {
  if (!limits) return work();
  if (!limits.chunksPerUser.tryEnter(userId)) {
    throw new AppError(
      429,
      'TOO_MANY_CONCURRENT_UPLOADS',
      `At most ${limits.chunksPerUser.limit} chunk uploads per user at a time; retry when one has finished`,
      { limit: limits.chunksPerUser.limit },
      { 'Retry-After': retryAfterSeconds },
    );
  }
  try {
    return await work();
  } finally {
    limits.chunksPerUser.leave(userId);
  }
}
