// Link passwords: scrypt hashes stored as `scrypt$N$r$p$salt$hash`, and the limit on wrong attempts per link
// and client address in fixed 15-minute windows (table link_password_failures, shared by API replicas).
import { randomBytes, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { sql } from 'kysely';
import type { Db } from '../db/database';
import type { HashingGate } from './hashing-gate';

const cost = { N: 2 ** 15, r: 8, p: 1 };
const keyLength = 32;

/** Hashing goes through the process's gate (bounded, low priority); `owner` is the tenant it is done for. */
function derive(gate: HashingGate, owner: string, password: string, salt: Buffer, options: { N: number; r: number; p: number }): Promise<Buffer> {
  // scrypt needs 128·N·r bytes; the default 32 MiB cap is exactly N=2^15, r=8, so leave room.
  const scryptOptions: ScryptOptions = { ...options, maxmem: 256 * options.N * options.r + 1024 * 1024 };
  return gate.scrypt(owner, password.normalize('NFC'), salt, keyLength, scryptOptions);
}

export async function hashLinkPassword(gate: HashingGate, owner: string, password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await derive(gate, owner, password, salt, cost);
  return ['scrypt', cost.N, cost.r, cost.p, salt.toString('base64url'), key.toString('base64url')].join('$');
}

export async function verifyLinkPassword(gate: HashingGate, owner: string, password: string, stored: string): Promise<boolean> {
  const [scheme, n, r, p, salt, hash] = stored.split('$');
  const options = { N: Number(n), r: Number(r), p: Number(p) };
  if (scheme !== 'scrypt' || !salt || !hash || !Number.isInteger(options.N) || options.N < 2 || options.N > 2 ** 20 || !(options.r >= 1 && options.r <= 32) || !(options.p >= 1 && options.p <= 16)) {
    throw new Error('Unreadable link password hash');
  }
  const expected = Buffer.from(hash, 'base64url');
  const actual = await derive(gate, owner, password, Buffer.from(salt, 'base64url'), options);
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}

export const passwordFailureLimit = 10;
export const passwordWindowMs = 15 * 60 * 1000;

const windowStartOf = (now: number) => new Date(Math.floor(now / passwordWindowMs) * passwordWindowMs);

export interface FailureReservation {
  /** Wrong attempts of the window, this reserved one included. */
  failures: number;
  windowStart: Date;
}

/**
 * Reserves one wrong-attempt slot for this link+address BEFORE the password is evaluated, with one conditional
 * upsert (`WHERE failures < limit`, checked under the row lock): however many guesses race, at most
 * `passwordFailureLimit` per window are ever evaluated. Null when the window's attempts are used up.
 */
export async function reservePasswordAttempt(db: Db, linkId: string, address: string, now = Date.now()): Promise<FailureReservation | null> {
  const windowStart = windowStartOf(now);
  const row = await db
    .insertInto('link_password_failures')
    .values({ link_id: linkId, address, window_start: windowStart, failures: 1 })
    .onConflict((oc) =>
      oc
        .columns(['link_id', 'address', 'window_start'])
        .doUpdateSet({ failures: sql`link_password_failures.failures + 1` })
        .where('link_password_failures.failures', '<', passwordFailureLimit),
    )
    .returning('failures')
    .executeTakeFirst();
  if (!row) return null;
  // Past windows of this link are dead weight.
  if (row.failures === 1) await db.deleteFrom('link_password_failures').where('link_id', '=', linkId).where('window_start', '<', windowStart).execute();
  return { failures: row.failures, windowStart };
}

/**
 * Gives a reserved attempt back (the password was right, or it could not be checked). A counter back at zero
 * is removed, so right passwords leave no trace; both statements are conditional, so a racing reservation
 * either sees the row (and the delete skips it) or inserts a fresh one.
 */
export async function releasePasswordAttempt(db: Db, linkId: string, address: string, reservation: FailureReservation): Promise<void> {
  const row = await db
    .updateTable('link_password_failures')
    .set({ failures: sql`failures - 1` })
    .where('link_id', '=', linkId)
    .where('address', '=', address)
    .where('window_start', '=', reservation.windowStart)
    .where('failures', '>', 0)
    .returning('failures')
    .executeTakeFirst();
  if (row?.failures !== 0) return;
  await db
    .deleteFrom('link_password_failures')
    .where('link_id', '=', linkId)
    .where('address', '=', address)
    .where('window_start', '=', reservation.windowStart)
    .where('failures', '=', 0)
    .execute();
}

/** Seconds until the current window of wrong attempts ends (the Retry-After of a 429). */
export const passwordRetryAfterSeconds = (now = Date.now()) => Math.max(1, Math.ceil((windowStartOf(now).getTime() + passwordWindowMs - now) / 1000));
