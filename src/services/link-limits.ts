// Fixed-window limits of the public link endpoints (password checks, email codes): a slot is reserved with ONE
// conditional upsert before the work it pays for, so parallel requests can never take more than the limit.
import { sql } from 'kysely';
import type { Db } from '../db/database';
import { AppError } from '../errors';

export interface LinkLimit {
  /** What is counted (a row key, e.g. 'password_check'). */
  scope: string;
  max: number;
  windowMs: number;
}

/** Per link and client address: password evaluations (right or wrong) a minute — bounds scrypt work per client. */
export const passwordCheckLimit: LinkLimit = { scope: 'password_check', max: 30, windowMs: 60 * 1000 };
/** Per link and client address: verify-email requests (allowed addresses or not, so a 429 reveals nothing). */
export const emailRequestLimit: LinkLimit = { scope: 'email_request', max: 10, windowMs: 15 * 60 * 1000 };
/** Per link, all addresses together: code mails queued (no mail bombing through one link). */
export const emailMailLimit: LinkLimit = { scope: 'email_mail', max: 10, windowMs: 15 * 60 * 1000 };
/** Per link and client address: code confirmations (beyond the 5 attempts each code has). */
export const emailConfirmLimit: LinkLimit = { scope: 'email_confirm', max: 10, windowMs: 15 * 60 * 1000 };

/** The subject of a budget shared by every client of a link. */
export const wholeLink = '*';

export const windowStartOf = (now: number, windowMs: number) => new Date(Math.floor(now / windowMs) * windowMs);

/** Seconds until the window holding `now` ends (at least 1). */
export const secondsLeftInWindow = (now: number, windowMs: number) => Math.max(1, Math.ceil((windowStartOf(now, windowMs).getTime() + windowMs - now) / 1000));

export function linkRateLimited(detail: string, retryAfterSeconds: number, code = 'LINK_RATE_LIMITED'): AppError {
  return new AppError(429, code, detail, { retry_after_seconds: retryAfterSeconds }, { 'Retry-After': String(retryAfterSeconds) });
}

export interface Reservation {
  /** Slots taken in this window, this one included. */
  count: number;
  windowStart: Date;
}

/**
 * Takes one slot of `limit` for (link, subject) in the current window, or returns null when none is left. The
 * upsert's `WHERE count < max` is evaluated under the row lock, so N racing requests get at most `max` slots.
 */
export async function reserveLinkSlot(db: Db, linkId: string, subject: string, limit: LinkLimit, now = Date.now()): Promise<Reservation | null> {
  const windowStart = windowStartOf(now, limit.windowMs);
  const row = await db
    .insertInto('link_rate_counters')
    .values({ link_id: linkId, scope: limit.scope, subject, window_start: windowStart, count: 1 })
    .onConflict((oc) =>
      oc
        .columns(['link_id', 'scope', 'subject', 'window_start'])
        .doUpdateSet({ count: sql`link_rate_counters.count + 1` })
        .where('link_rate_counters.count', '<', limit.max),
    )
    .returning('count')
    .executeTakeFirst();
  if (!row) return null;
  // The first slot of a window is the moment to drop this link's past windows of the scope (dead weight).
  if (row.count === 1) {
    await db.deleteFrom('link_rate_counters').where('link_id', '=', linkId).where('scope', '=', limit.scope).where('window_start', '<', windowStart).execute();
  }
  return { count: row.count, windowStart };
}

/** Gives a slot back (the work it paid for did not happen, or must not count). Never goes below zero. */
export async function releaseLinkSlot(db: Db, linkId: string, subject: string, limit: LinkLimit, reservation: Reservation): Promise<void> {
  await db
    .updateTable('link_rate_counters')
    .set({ count: sql`count - 1` })
    .where('link_id', '=', linkId)
    .where('scope', '=', limit.scope)
    .where('subject', '=', subject)
    .where('window_start', '=', reservation.windowStart)
    .where('count', '>', 0)
    .execute();
}

/** True when (link, subject) has no slot left in the current window (a read, for answers that must not reserve). */
export async function linkLimitExhausted(db: Db, linkId: string, subject: string, limit: LinkLimit, now = Date.now()): Promise<boolean> {
  const row = await db
    .selectFrom('link_rate_counters')
    .select('count')
    .where('link_id', '=', linkId)
    .where('scope', '=', limit.scope)
    .where('subject', '=', subject)
    .where('window_start', '=', windowStartOf(now, limit.windowMs))
    .executeTakeFirst();
  return row !== undefined && row.count >= limit.max;
}
