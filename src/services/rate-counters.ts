// Fixed-window rate counters in PostgreSQL for limits on actions (e.g. invitations per inviter): shared by every
// API replica without Redis, and counted in the action's transaction so a refused action is not counted. The
// per-request limits (rate-limiter.ts) are a different tool: cheap, Redis or memory, counted before the handler.
import type { Transaction } from 'kysely';
import { AppError } from '../errors';
import type { Database, Db } from '../db/database';

export interface RateLimit {
  /** What is counted for whom, e.g. `invitation:{user_id}`. */
  key: string;
  limit: number;
  windowSeconds: number;
}

/**
 * Counts one hit against `limit`. Returns null when it was allowed, otherwise the seconds until the window
 * ends. The upsert only increments while `count < limit`, so parallel hits can never overshoot; inside a
 * transaction the hit is undone when the transaction rolls back (a refused action does not use up the budget).
 */
export async function countHit(db: Db | Transaction<Database>, rule: RateLimit): Promise<number | null> {
  const windowMs = rule.windowSeconds * 1000;
  const now = Date.now();
  const windowStart = new Date(Math.floor(now / windowMs) * windowMs);
  const row = await db
    .insertInto('rate_counters')
    .values({ key: rule.key, window_start: windowStart, count: 1 })
    .onConflict((oc) =>
      oc
        .columns(['key', 'window_start'])
        .doUpdateSet((eb) => ({ count: eb('rate_counters.count', '+', 1) }))
        .where('rate_counters.count', '<', rule.limit),
    )
    .returning('count')
    .executeTakeFirst();
  if (row) {
    // Earlier windows of this key are spent; keep the table at one row per active key.
    await db.deleteFrom('rate_counters').where('key', '=', rule.key).where('window_start', '<', windowStart).execute();
    return null;
  }
  return Math.max(1, Math.ceil((windowStart.getTime() + windowMs - now) / 1000));
}

/** 429 RATE_LIMITED with Retry-After (spec §3, §12). */
export function rateLimited(detail: string, retryAfterSeconds: number): AppError {
  return new AppError(429, 'RATE_LIMITED', detail, { retry_after_seconds: retryAfterSeconds }, { 'Retry-After': String(retryAfterSeconds) });
}
