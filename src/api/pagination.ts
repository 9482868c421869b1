// Keyset pagination: `?limit=&cursor=`, cursors are opaque (base64url of the last sort key).
import { createHmac, timingSafeEqual } from 'node:crypto';
import { badRequest } from '../errors';
import { z } from './openapi';
import { findUnsafeValue } from './input-safety';

export const pageQuery = z.object({
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  cursor: z.string().max(512).optional(),
});

export function encodeCursor(key: unknown): string {
  return Buffer.from(JSON.stringify(key)).toString('base64url');
}

type CursorCheck<T> = ((value: unknown) => value is T) | z.ZodType<T>;

/**
 * The key a cursor carries, or undefined without a cursor. Anything that is not a cursor this list handed
 * out — bad base64, bad JSON, NUL or unpaired surrogates, non-finite or unsafe numbers, the wrong shape —
 * is 400 INVALID_CURSOR before it gets near SQL.
 */
export function decodeCursor<T>(cursor: string | undefined, check: CursorCheck<T>): T | undefined {
  if (cursor === undefined || cursor === '') return undefined;
  let value: unknown;
  try {
    if (!/^[A-Za-z0-9_-]+$/.test(cursor)) throw new Error('not base64url');
    value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw invalidCursor();
  }
  if (findUnsafeValue(value, 4)) throw invalidCursor();
  if (typeof check === 'function') {
    if (check(value)) return value;
    throw invalidCursor();
  }
  const parsed = check.safeParse(value);
  if (!parsed.success) throw invalidCursor();
  return parsed.data;
}

const invalidCursor = () => badRequest('Malformed cursor: pass back a next_cursor exactly as this list returned it', 'INVALID_CURSOR');

/** Building blocks for cursor schemas: ids, sequence numbers and timestamps as lists hand them out. */
export const cursorParts = {
  id: z.string().min(1).max(64),
  sequence: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  timestamp: z.iso.datetime({ offset: true }),
};

export const isString = (value: unknown): value is string => typeof value === 'string';

/** Takes `limit + 1` rows, returns the page and the cursor of its last row when there are more. */
export function toPage<T>(rows: T[], limit: number, keyOf: (row: T) => unknown) {
  const items = rows.slice(0, limit);
  const next_cursor = rows.length > limit && items.length > 0 ? encodeCursor(keyOf(items[items.length - 1]!)) : null;
  return { items, next_cursor };
}

export const pageSchema = <T extends z.ZodType>(item: T) => z.object({ items: z.array(item), next_cursor: z.string().nullable() });

/**
 * A tamper-evident cursor for keys we must not take back on trust (e.g. a Temporal page token): the key and
 * the scope it belongs to (a tenant) are MACed with the server secret, so a cursor edited by hand, or carried
 * to another tenant, is 400 INVALID_CURSOR.
 */
export function encodeSignedCursor(secretKey: Buffer, scope: string, key: string): string {
  const payload = Buffer.from(key, 'utf8').toString('base64url');
  return `${payload}.${cursorMac(secretKey, scope, payload)}`;
}

export function decodeSignedCursor(secretKey: Buffer, scope: string, cursor: string | undefined): string | undefined {
  if (cursor === undefined || cursor === '') return undefined;
  const [payload, mac, extra] = cursor.split('.');
  if (!payload || !mac || extra !== undefined) throw invalidCursor();
  const expected = Buffer.from(cursorMac(secretKey, scope, payload));
  const given = Buffer.from(mac);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw invalidCursor();
  return Buffer.from(payload, 'base64url').toString('utf8');
}

const cursorMac = (secretKey: Buffer, scope: string, payload: string) =>
  createHmac('sha256', secretKey).update(`cursor\0${scope}\0${payload}`).digest('base64url').slice(0, 32);
